"""convox.rack.rack with create: false (what update_rack.yml runs): a rack that does not exist, or
whose bucket alone was kept by an uninstall, is refused after the options are validated and the rack
read, with no write, in check mode too; a rack that exists converges as with create: true. Through
the recording proxy, so that every request of a run is seen."""

from __future__ import annotations

import os
import re

import pytest

from conftest import ROOT, InProcess, live_tagged, put_object

RACK = "createfalse"
MISSING = "createfalse-none"
# Requests that change nothing (sts:GetCallerIdentity, s3:GetBucketTagging, ec2:DescribeVpcs, ...).
READ = re.compile(r"^[a-z0-9-]+:(Describe|Get|List|Head)")


def refusal(rack):
    return "could not find rack %s: install it with playbooks/install_rack.yml" % rack


@pytest.fixture()
def proxied(local_aws, aws_proxy):
    """conftest.InProcess, every AWS request through the recording proxy: module runs are the module's
    main() in this process (option permutations), playbook runs real ansible-playbook runs."""
    return InProcess(local_aws, proxy=aws_proxy)


def writes(proxy):
    return sorted({r.name for r in proxy.records if not READ.match(r.name)})


def ssm_parameters(local_aws, rack):
    """The run lock and generation of a rack (/convox/<rack>/...): a run that took the lock leaves its generation."""
    found = local_aws.client("ssm").describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": ["/convox/%s/" % rack]}])
    return [p["Name"] for p in found["Parameters"]]


@pytest.mark.parametrize("check", [True, False], ids=["check-mode", "run"])
def test_a_missing_rack_is_refused_and_nothing_is_written(proxied, aws_proxy, local_aws, check):
    result = proxied.module({"name": MISSING, "create": False, "high_availability": False}, check=check)
    assert result.get("failed") is True, result
    assert result["msg"].startswith(refusal(MISSING)), result["msg"]
    assert "region us-east-1" in result["msg"] and "nothing was changed" in result["msg"], result["msg"]
    assert result["changed"] is False
    assert aws_proxy.records, "the rack was not read"
    assert writes(aws_proxy) == []
    assert live_tagged(local_aws, MISSING) == []
    assert ssm_parameters(local_aws, MISSING) == []


def test_bad_input_with_create_false_is_refused_before_the_rack_is_read(proxied, aws_proxy):
    result = proxied.module({"name": MISSING, "create": False, "instance_count": 0})
    assert result.get("failed") is True
    assert result["msg"].startswith("instance_count: must be at least 1"), result["msg"]
    assert aws_proxy.records == [], sorted({r.name for r in aws_proxy.records})


def test_update_rack_playbook_refuses_a_missing_rack(proxied, aws_proxy, local_aws):
    playbook = os.path.join(ROOT, "playbooks", "update_rack.yml")
    for check in (True, False):
        aws_proxy.clear()
        proc = proxied.playbook(playbook, {"rack": MISSING, "rack_instance_count": 2, "rack_high_availability": False},
                                check=check, expect_rc=2)
        assert refusal(MISSING) in proc.stdout, proc.stdout[-3000:]
        assert writes(aws_proxy) == []
    assert live_tagged(local_aws, MISSING) == []
    assert ssm_parameters(local_aws, MISSING) == []


def test_an_existing_rack_converges_and_an_uninstalled_one_is_refused(direct, proxied, aws_proxy, local_aws):
    args = {"name": RACK, "high_availability": False}
    installed = direct.module(args)
    assert not installed.get("failed"), installed.get("msg")
    try:
        # An existing rack: create: false plans, changes and reruns as create: true does.
        planned = proxied.module(dict(args, create=False, instance_count=2), check=True, diff=True)
        assert not planned.get("failed"), planned.get("msg")
        assert planned["changed"] is True
        assert {(c["resource"], c["action"]) for c in planned["plan"]} == {
            ("autoscaling_group", "update"), ("bucket", "update")}
        updated = proxied.module(dict(args, create=False, instance_count=2))
        assert not updated.get("failed"), updated.get("msg")
        assert updated["changed"] is True and updated["rack"]["parameters"]["instance_count"] == 2
        assert updated["rack"]["status"] == "running"
        asg = local_aws.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=["convox-" + RACK])["AutoScalingGroups"][0]
        assert asg["DesiredCapacity"] == 2
        again = proxied.module({"name": RACK, "create": False})
        assert again["changed"] is False and again["plan"] == []

        # Uninstalled, its bucket kept (it holds data, tagged convox:status=uninstalled): no rack.
        put_object(local_aws, installed["rack"]["bucket"], "logs/app.log")
        gone = direct.module({"name": RACK, "state": "absent"})
        # and its log bucket, which holds the rack bucket's access logs (kept while the rack bucket is)
        assert sorted(gone["kept_buckets"]) == sorted([installed["rack"]["bucket"], installed["rack"]["bucket"] + "-logs"])
        kept = live_tagged(local_aws, RACK)
        assert kept == ["bucket " + installed["rack"]["bucket"]]
        generation = ssm_parameters(local_aws, RACK)
        for check in (True, False):
            aws_proxy.clear()
            refused = proxied.module(dict(args, create=False), check=check)
            assert refused.get("failed") is True, refused
            assert refused["msg"].startswith(refusal(RACK)), refused["msg"]
            assert writes(aws_proxy) == []
            assert live_tagged(local_aws, RACK) == kept
            assert ssm_parameters(local_aws, RACK) == generation
        tags = local_aws.client("s3").get_bucket_tagging(Bucket=installed["rack"]["bucket"])["TagSet"]
        assert {"Key": "convox:status", "Value": "uninstalled"} in tags
    finally:
        direct.module({"name": RACK, "state": "absent", "purge_data": True})
    assert live_tagged(local_aws, RACK) == []
