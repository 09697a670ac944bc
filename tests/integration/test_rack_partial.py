"""A run that fails half-way leaves a rack that the next install finishes and that uninstall
removes completely, because everything is found again by its tags.

The failure is injected in-process: the rack service runs against the local AWS with an Aws
wrapper that fails the Nth AWS call, as a network error or a killed process would, leaving AWS in
whatever state the first N-1 calls made. The resume and the uninstall are then runs of the
module's main(), in this process too (conftest.InProcess), against the same local AWS: fault
permutations (a killed ansible-playbook and its real rerun are test_reliability_interrupt.py's)."""

from __future__ import annotations

import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack.aws import Aws, Deadline
from ansible_collections.convox.rack.plugins.module_utils._rack.errors import AWSCallError
from ansible_collections.convox.rack.plugins.module_utils._rack.service import RackService
from ansible_collections.convox.rack.plugins.module_utils._rack.spec import RACK_ARGUMENT_SPEC

from conftest import REGION, live_tagged


class FailingAws(Aws):
    """Fails the Nth call with an injected error, as if the run were cut there."""

    def __init__(self, factory, fail_at):
        super().__init__(factory, deadline=Deadline(900))
        self.fail_at = fail_at

    def _cut(self, service, operation, resource):
        if len(self.calls) + 1 == self.fail_at:
            self.calls.append("%s:%s (injected failure)" % (service, operation))
            raise AWSCallError(resource, operation, "InjectedFailure", "cut here by the test", "test")

    def call(self, service, operation, resource, **kwargs):
        self._cut(service, operation, resource)
        return super().call(service, operation, resource, **kwargs)

    def paginate(self, service, operation, resource, **kwargs):
        self._cut(service, operation, resource)
        return super().paginate(service, operation, resource, **kwargs)


def run_service(local_aws, fail_at, **params):
    full = {k: v.get("default") for k, v in RACK_ARGUMENT_SPEC.items()}
    full.update(params)
    aws = FailingAws(local_aws.client, fail_at)
    service = RackService(aws, REGION, full, check_mode=False)
    with pytest.raises(AWSCallError) as failure:
        service.absent() if full["state"] == "absent" else service.present()
    assert "InjectedFailure" in str(failure.value)
    return aws.calls


def vpcs_of(local_aws, rack):
    return local_aws.client("ec2").describe_vpcs(Filters=[{"Name": "tag:Rack", "Values": [rack]}])["Vpcs"]


# A changing run reads the rack's generation (call 1) and the rack, takes the run lock at its first
# write (call 19 of this install), reads the generation again (20) and writes from call 21 on
# (uninstall: lock at 24, writes from 26).
@pytest.mark.parametrize("fail_at", [4, 19, 27, 43, 61])
def test_partial_install_then_resume(local_aws, direct, fail_at):
    rack = "resume%d" % fail_at
    calls = run_service(local_aws, fail_at, name=rack, high_availability=False, private=True)
    # Reads run concurrently: other reads may finish after the injected failure.
    assert any(c.endswith("(injected failure)") for c in calls)
    resumed = direct.module({"name": rack, "high_availability": False, "private": True})
    assert not resumed.get("failed"), resumed.get("msg")
    assert resumed["changed"] is True
    assert resumed["rack"]["status"] == "running"
    assert len(vpcs_of(local_aws, rack)) == 1
    nats = local_aws.client("ec2").describe_nat_gateways(
        Filters=[{"Name": "tag:Rack", "Values": [rack]}, {"Name": "state", "Values": ["available", "pending"]}])
    assert len(nats["NatGateways"]) == 2, "a NAT gateway was duplicated or lost"
    assert len(resumed["rack"]["public_subnet_ids"]) == 2 and len(resumed["rack"]["private_subnet_ids"]) == 2
    assert direct.module({"name": rack})["changed"] is False
    gone = direct.module({"name": rack, "state": "absent"})
    assert not gone.get("failed"), gone.get("msg")
    assert live_tagged(local_aws, rack) == []


# Call numbers of a private install (its reads run concurrently, so their order varies, not their count):
# 49 the rack bucket's policy (the log bucket and the rack bucket made), 55 the instance profile's role,
# 64 the first subnet (the VPC and its flow log made). They were 39, 45 and 53 before the log bucket (7 calls),
# the rack bucket's logging, the flow log and two more reads.
@pytest.mark.parametrize("fail_at", [49, 55, 64])
def test_partial_install_then_uninstall(local_aws, direct, fail_at):
    rack = "halfgone%d" % fail_at
    run_service(local_aws, fail_at, name=rack, high_availability=False, private=True)
    assert live_tagged(local_aws, rack), "the injected failure came before anything was created"
    gone = direct.module({"name": rack, "state": "absent"})
    assert not gone.get("failed"), gone.get("msg")
    assert live_tagged(local_aws, rack) == []
    assert direct.module({"name": rack, "state": "absent"})["changed"] is False


@pytest.mark.parametrize("fail_at", [28, 31, 35, 43])  # call numbers of an uninstall: the run lock, the cluster, a NAT gateway, an address
def test_partial_uninstall_then_uninstall(local_aws, direct, fail_at):
    rack = "cutdown%d" % fail_at
    installed = direct.module({"name": rack, "high_availability": False, "private": True})
    assert not installed.get("failed"), installed.get("msg")
    calls = run_service(local_aws, fail_at, name=rack, state="absent")
    assert live_tagged(local_aws, rack)
    status = direct.module({"name": rack}, module_name="rack_info")
    marked = "s3:put_bucket_tagging" in calls
    # a run that failed after marking the rack says so (issue 13, finding 6): failed, with its step and error,
    # not `uninstalling` until the status expiry
    assert status["racks"][0]["status"] == ("failed" if marked else "running")
    if marked:
        assert status["racks"][0]["missing"][0].startswith("last run failed: "), status["racks"][0]["missing"]
    gone = direct.module({"name": rack, "state": "absent"})
    assert not gone.get("failed"), gone.get("msg")
    assert live_tagged(local_aws, rack) == []
