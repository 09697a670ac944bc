"""Drift against the local AWS: one private rack, changed by hand with boto3 outside the collection
(an ingress rule added, the group's desired capacity raised, a NAT gateway deleted, bucket settings
changed, a tag removed), one change after the other. Each is read back as words by rack_info
(drift: true), printed by rack_status.yml (which fails with rack_fail_on_drift=true, naming the
count), counted by the inventory (drift: true), and repaired by update_rack.yml, after which the
drift is empty again. Reading drift writes nothing: through the recording proxy, only Describe, Get
and List calls reach AWS.

The rack lives in an account of its own of the local AWS (see test_inventory.py)."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from conftest import ROOT, InProcess
from inventory_cli import listed
from test_inventory import account_client, account_env, install, inventory, run_module

ACCOUNT = "595959595959"
RACK = "drift"
STATUS = os.path.join(ROOT, "playbooks", "rack_status.yml")
UPDATE = os.path.join(ROOT, "playbooks", "update_rack.yml")
READ = re.compile(r"^[a-z0-9-]+:(Describe|Get|List|Head)")
FILTER = [{"Name": "tag:Rack", "Values": [RACK]}]


@pytest.fixture(scope="module")
def rack(local_aws, direct):
    env = account_env(local_aws, ACCOUNT)
    install(direct, env, RACK, private=True)
    return env


class Aws:
    """boto3 clients of the rack's account, and the rack's resources as AWS has them now."""

    def __init__(self, local_aws, env):
        self.ec2, self.asg, self.s3 = (account_client(local_aws, env, s) for s in ("ec2", "autoscaling", "s3"))

    def router_group(self):
        return [g for g in self.ec2.describe_security_groups(Filters=FILTER)["SecurityGroups"]
                if g["GroupName"] == "convox-%s-router" % RACK][0]

    def group(self):
        return self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=["convox-" + RACK])["AutoScalingGroups"][0]

    def bucket(self):
        return [b["Name"] for b in self.s3.list_buckets()["Buckets"] if b["Name"].startswith("convox-%s-" % RACK)
                and not b["Name"].endswith("-logs")][0]  # the rack's bucket, not its log bucket

    def vpcs(self):
        return self.ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.0.0.0/16"]}])["Vpcs"]

    def of_index(self, items, index):
        return [i for i in items if {"Key": "convox:index", "Value": str(index)} in i.get("Tags", [])
                and {"Key": "Rack", "Value": RACK} in i.get("Tags", [])]

    def nat(self, index):
        return [n for n in self.of_index(self.ec2.describe_nat_gateways()["NatGateways"], index)
                if n["State"] == "available"]

    def zone_of_public(self, index):
        subnets = self.ec2.describe_subnets(Filters=FILTER + [{"Name": "tag:convox:tier", "Values": ["public"]}])
        return self.of_index(subnets["Subnets"], index)[0]["AvailabilityZone"]


# -- the five changes: each makes its change and returns the drift lines; `repaired` reads the repair back --------

def open_ssh(aws):
    group = aws.router_group()
    aws.ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return ["security group %s (rack router): ingress 0.0.0.0/0 port 22 added outside the rack" % group["GroupId"]]


def ssh_closed(aws):
    assert not [p for p in aws.router_group()["IpPermissions"] if p.get("FromPort") == 22]


def scale_out(aws):
    aws.asg.update_auto_scaling_group(AutoScalingGroupName="convox-" + RACK, MaxSize=3, DesiredCapacity=3)
    return ["Auto Scaling group convox-%s: maximum 3, recorded 1" % RACK,
            "Auto Scaling group convox-%s: desired 3, recorded 1" % RACK]


def scaled_back(aws):
    group = aws.group()
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (1, 1, 1)


def delete_nat(aws):
    nat = aws.nat(1)[0]
    aws.ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
    table = aws.of_index(aws.ec2.describe_route_tables(Filters=FILTER)["RouteTables"], 1)[0]
    return ["NAT gateway for %s: missing" % aws.zone_of_public(1),
            "route table %s (private 1): route 0.0.0.0/0 to %s (deleted), wanted to a NAT gateway an update makes"
            % (table["RouteTableId"], nat["NatGatewayId"])]


def nat_back(aws):
    nat = aws.nat(1)
    assert len(nat) == 1
    table = aws.of_index(aws.ec2.describe_route_tables(Filters=FILTER)["RouteTables"], 1)[0]
    default = [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"][0]
    assert default["NatGatewayId"] == nat[0]["NatGatewayId"]


def loosen_bucket(aws):
    bucket = aws.bucket()
    aws.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    aws.s3.delete_public_access_block(Bucket=bucket)
    aws.s3.delete_bucket_encryption(Bucket=bucket)
    return ["bucket %s: public access block none, wanted all four flags on" % bucket,
            "bucket %s: default encryption none, wanted aws:kms" % bucket,  # the rack's key, as the apps' buckets
            "bucket %s: versioning Suspended, wanted Enabled" % bucket]


def bucket_hardened(aws):
    bucket = aws.bucket()
    assert aws.s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert all(aws.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    rules = aws.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" and rules[0]["BucketKeyEnabled"]


def untag_vpc(aws):
    vpc = [v for v in aws.vpcs() if {"Key": "Rack", "Value": RACK} in v.get("Tags", [])][0]
    aws.ec2.delete_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": "Rack"}])
    return ["VPC %s: tag Rack removed" % vpc["VpcId"]]


def vpc_tagged(aws):
    # the same VPC, tagged again: no second one was made
    assert [v["VpcId"] for v in aws.vpcs() if {"Key": "Rack", "Value": RACK} in v.get("Tags", [])] == \
        [v["VpcId"] for v in aws.vpcs()]
    assert len(aws.vpcs()) == 1


CASES = {"ingress": (open_ssh, ssh_closed), "desired": (scale_out, scaled_back), "nat": (delete_nat, nat_back),
         "bucket": (loosen_bucket, bucket_hardened), "tag": (untag_vpc, vpc_tagged)}


def drift(direct, env):
    result = run_module(direct, env, {"name": RACK, "drift": True}, "rack_info")
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    return result


def test_a_rack_as_installed_has_no_drift(rack, direct):
    result = drift(direct, rack)
    assert (result["drift"], result["drift_count"]) == ([], 0)
    assert result["drift_racks"] == [{"rack": RACK, "count": 0, "error": False}]


def update(direct, env):
    """What update_rack.yml runs (convox.rack.rack, create: false, no parameter), in this process: the
    playbook itself runs in test_every_change_at_once_shows_in_status_and_inventory."""
    result = run_module(direct, env, {"name": RACK, "create": False})
    assert not result.get("failed"), result.get("msg")
    return result


@pytest.mark.parametrize("case", list(CASES))
def test_a_change_outside_the_rack_is_drift_that_an_update_repairs(case, rack, direct, local_aws):
    change, repaired = CASES[case]
    aws = Aws(local_aws, rack)
    assert drift(direct, rack)["drift"] == [], "the rack drifted before the change"
    expected = change(aws)

    result = drift(direct, rack)
    assert sorted(d["message"] for d in result["drift"]) == sorted(expected)
    assert result["drift_count"] == len(expected) and {d["rack"] for d in result["drift"]} == {RACK}
    assert result["drift_racks"] == [{"rack": RACK, "count": len(expected), "error": False}]

    assert update(direct, rack)["changed"] is True
    repaired(aws)
    after = drift(direct, rack)
    assert (after["drift"], after["drift_count"]) == ([], 0)


def test_every_change_at_once_shows_in_status_and_inventory(rack, runner, local_aws, aws_proxy, tmp_path):
    """The five changes together: rack_status.yml prints every line and, with rack_fail_on_drift, fails
    naming the count; reading drift (the module, the inventory) writes nothing; the inventory counts
    it; update_rack.yml repairs it all."""
    aws = Aws(local_aws, rack)
    expected = [line for change, _repaired in CASES.values() for line in change(aws)]

    proc = runner.playbook(STATUS, {"rack": RACK, "rack_fail_on_drift": True}, env=rack, expect_rc=2)
    count = "%d differences" % len(expected)
    assert '"Drift       %s from what the rack records (playbooks/update_rack.yml converges them back)"' % count \
        in proc.stdout, proc.stdout[-3000:]
    for line in expected:
        assert '"  %s"' % line in proc.stdout, line
    assert "rack %s drifted: %s" % (RACK, count) in proc.stdout
    # without rack_fail_on_drift the status is only a report
    assert '"  %s"' % expected[0] in runner.playbook(STATUS, {"rack": RACK}, env=rack).stdout

    # read only: the module and the inventory, through the recording proxy
    proxied = InProcess(local_aws, proxy=aws_proxy)
    result = run_module(proxied, rack, {"name": RACK, "drift": True}, "rack_info")
    assert sorted(d["message"] for d in result["drift"]) == sorted(expected)
    reads = sorted({r.name for r in aws_proxy.records})
    assert reads and not [name for name in reads if not READ.match(name)], reads
    # nor the run lock or generation (SSM parameters): reading takes no lock. The one SSM read is
    # GetParameter of the public ECS AMI parameter (rack_info's image check, one rack by name).
    assert [name for name in reads if name.startswith("ssm:")] in ([], ["ssm:GetParameter"]), reads
    config = {"regions": ["us-east-1"], "drift": True}
    aws_proxy.clear()
    out = listed(inventory(local_aws, dict(rack, AWS_ENDPOINT_URL=aws_proxy.url), config, tmp_path, "--list"))
    host = out["_meta"]["hostvars"]["local/%s" % RACK]
    assert host["rack_drift_count"] == len(expected) and sorted(host["rack_drift_lines"]) == sorted(expected)
    assert out["convox_drifted"]["hosts"] == ["local/%s" % RACK]
    assert aws_proxy.records and not [r.name for r in aws_proxy.records if not READ.match(r.name)]
    # off by default: no drift read, no variable, no group
    plain_out = listed(inventory(local_aws, rack, {"regions": ["us-east-1"]}, tmp_path, "--list"))
    assert "rack_drift_count" not in plain_out["_meta"]["hostvars"]["local/%s" % RACK]
    assert "convox_drifted" not in plain_out

    runner.playbook(UPDATE, {"rack": RACK}, env=rack)
    for _change, repaired in CASES.values():
        repaired(aws)
    out = listed(inventory(local_aws, rack, config, tmp_path, "--list"))
    assert out["_meta"]["hostvars"]["local/%s" % RACK]["rack_drift_count"] == 0 and "convox_drifted" not in out
    assert '"Drift       none"' in runner.playbook(STATUS, {"rack": RACK, "rack_fail_on_drift": True}, env=rack).stdout


def test_a_rack_a_run_holds_is_not_compared(rack, runner, direct, local_aws):
    """While a run installs, updates or uninstalls a rack (its recorded status not expired), its drift is
    what that run is changing: not read, said why, and no failure with rack_fail_on_drift."""
    aws = Aws(local_aws, rack)
    bucket = aws.bucket()
    saved = aws.s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    held = [t for t in saved if t["Key"] != "convox:status"] + [
        {"Key": "convox:status", "Value": "updating"}, {"Key": "convox:lease", "Value": "99999999999"}]
    aws.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": held})
    # ... and that run, on another host, holds the rack's run lock (a recorded run status holds only while a
    # live run holds the lock: holder.py)
    ssm = account_client(local_aws, rack, "ssm")
    ssm.put_parameter(Name="/convox/%s/lock" % RACK, Type="String", Overwrite=True, Value=json.dumps({
        "run": "r1", "host": "ci-runner-7.example", "pid": 4242, "operation": "install or update of rack " + RACK,
        "since": int(time.time()), "expires": int(time.time()) + 3600, "step": "updating Auto Scaling group"}))
    try:
        open_ssh(aws)
        result = drift(direct, rack)
        assert (result["drift"], result["drift_count"]) == ([], 0)
        assert result["drift_racks"] == [{"rack": RACK, "count": None, "error": False, "reason":
                                          "a run is updating the rack; its drift is read once the run ends"}]
        out = runner.playbook(STATUS, {"rack": RACK, "rack_fail_on_drift": True}, env=rack).stdout
        assert '"Drift       not read: a run is updating the rack; its drift is read once the run ends"' in out
    finally:
        aws.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": saved})
        ssm.delete_parameter(Name="/convox/%s/lock" % RACK)
    update(direct, rack)
    ssh_closed(aws)
