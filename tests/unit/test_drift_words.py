"""Drift in words (module_utils/_rack/drift.py): each kind of change an update's check-mode plan
records, said as a user can act on it. The plans here are the shapes the parts record
(tests/integration/test_drift.py makes the same changes in the local AWS and reads them back)."""

from __future__ import annotations

import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack import drift
from ansible_collections.convox.rack.plugins.module_utils._rack.naming import RackNames
from ansible_collections.convox.rack.plugins.module_utils._rack.plan import CHECK_MODE_ID
from ansible_collections.convox.rack.plugins.module_utils._rack.state import RackState


def _tags(**tags):
    return [{"Key": k.replace("__", ":"), "Value": v} for k, v in tags.items()]


@pytest.fixture()
def state():
    s = RackState(RackNames("production", "us-east-1", "123456789012"))
    s.security_groups = {"router": {"GroupId": "sg-0abc"}, "instances": {"GroupId": "sg-0def"}}
    s.subnets = [
        {"SubnetId": "subnet-a", "AvailabilityZone": "us-east-1a", "Tags": _tags(convox__tier="public", convox__index="0")},
        {"SubnetId": "subnet-b", "AvailabilityZone": "us-east-1b", "Tags": _tags(convox__tier="public", convox__index="1")},
    ]
    s.vpcs = [{"VpcId": "vpc-1", "Tags": _tags(Name="convox-production")}]
    s.nat_gateways = [{"NatGatewayId": "nat-0", "Tags": _tags(convox__index="0")}]
    table_tags = _tags(Name="convox-production-private-1", convox__tier="private", convox__index="1")
    s.route_tables = [{"RouteTableId": "rtb-1", "Tags": table_tags,
                       "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1", "State": "blackhole"}]}]
    return s


def messages(changes, state):
    return [d["message"] for d in drift.describe(changes, state)]


def test_an_ingress_rule_added_outside_the_rack(state):
    items = drift.describe([{"resource": "security_group", "name": "sg-0abc", "action": "update",
                             "changes": {"ingress_remove": ["('tcp', 22, 22, 'cidr', '0.0.0.0/0')",
                                                            "('-1', -1, -1, 'sg', 'sg-0def')"]}}], state)
    assert [i["message"] for i in items] == [
        "security group sg-0abc (rack router): ingress 0.0.0.0/0 port 22 added outside the rack",
        "security group sg-0abc (rack router): ingress sg-0def (rack instances) all traffic added outside the rack"]
    assert items[0]["id"] == "sg-0abc" and items[0]["name"] == "convox-production-router"
    assert (items[0]["resource"], items[0]["action"], items[0]["what"]) == ("security_group", "update", "ingress")


def test_an_ingress_rule_removed_and_port_ranges(state):
    assert messages([{"resource": "security_group", "name": "sg-0def", "action": "update",
                      "changes": {"ingress_add": ["('udp', 1000, 2000, 'cidr', '10.0.0.0/16')"]}}], state) == [
        "security group sg-0def (rack instances): ingress 10.0.0.0/16 udp ports 1000-2000 removed outside the rack"]


def test_the_group_sizes_against_the_recorded_count(state):
    items = drift.describe([{"resource": "autoscaling_group", "name": "convox-production", "action": "update",
                             "changes": {"MaxSize": {"before": 5, "after": 3},
                                         "DesiredCapacity": {"before": 5, "after": 3}}}], state)
    assert [i["message"] for i in items] == ["Auto Scaling group convox-production: maximum 5, recorded 3",
                                             "Auto Scaling group convox-production: desired 5, recorded 3"]
    assert (items[1]["what"], items[1]["before"], items[1]["after"]) == ("DesiredCapacity", 5, 3)


def test_a_missing_nat_gateway_is_named_by_its_zone(state):
    assert messages([{"resource": "nat_gateway", "name": "convox-production-nat-1", "action": "create"},
                     {"resource": "route_table", "name": "rtb-1", "action": "update",
                      "changes": {"route": {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": CHECK_MODE_ID}}}],
                    state) == [
        "NAT gateway for us-east-1b: missing",
        "route table rtb-1 (private 1): route 0.0.0.0/0 to nat-1 goes nowhere (blackhole), wanted to a NAT gateway"
        " an update makes"]


def test_a_route_to_a_deleted_gateway_not_yet_blackhole(state):
    state.route_tables[0]["Routes"][0].pop("State")
    assert messages([{"resource": "route_table", "name": "rtb-1", "action": "update",
                      "changes": {"route": {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-0"}}}], state) == [
        "route table rtb-1 (private 1): route 0.0.0.0/0 to nat-1 (deleted), wanted to nat-0"]


def test_bucket_settings_say_what_they_are_and_what_is_wanted(state):
    bucket = "convox-production-0123456789ab"
    flags = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    assert messages([
        {"resource": "bucket", "name": bucket, "action": "update",
         "changes": {"versioning": {"before": "Suspended", "after": "Enabled"}}},
        {"resource": "bucket", "name": bucket, "action": "update",
         "changes": {"public_access_block": {"before": None, "after": flags}}},
        {"resource": "bucket", "name": bucket, "action": "update",
         "changes": {"public_access_block": {"before": dict(flags, BlockPublicPolicy=False), "after": flags}}},
        {"resource": "bucket", "name": bucket, "action": "update",
         "changes": {"encryption": {"before": None, "after": "AES256"}}},
        {"resource": "bucket", "name": bucket, "action": "update", "changes": {"lifecycle": "logs expire after 7 days"}},
    ], state) == [
        "bucket %s: versioning Suspended, wanted Enabled" % bucket,
        "bucket %s: public access block none, wanted all four flags on" % bucket,
        "bucket %s: public access block BlockPublicPolicy off, wanted all four flags on" % bucket,
        "bucket %s: default encryption none, wanted AES256" % bucket,
        "bucket %s: lifecycle differs, wanted logs expire after 7 days" % bucket]


def test_tags_removed_changed_and_added(state):
    items = drift.describe([{"resource": "vpc", "name": "vpc-1", "action": "update",
                             "changes": {"tags": {"set": {"Rack": "production", "team": "a"}, "unset": ["owner"],
                                                  "before": {"team": "b"}}}}], state)
    assert [i["message"] for i in items] == ["VPC vpc-1: tag owner added outside the rack", "VPC vpc-1: tag Rack removed",
                                             "VPC vpc-1: tag team=b, wanted a"]
    tags = {("vpc-1", "convox-production", k) for k in ("owner", "Rack", "team")}
    assert {(i["id"], i["name"], i["tag"]) for i in items} == tags


def test_the_record_is_no_drift(state):
    """The run's own bookkeeping on the bucket (status, its expiry, the last error, the version) is rewritten by
    an update, but nothing outside the rack changed it; a user's tag on the bucket is drift."""
    assert messages([{"resource": "bucket", "name": "b", "action": "update", "changes": {"tags": {
        "set": {"convox:status": "running", "convox:version": "0.2.0"}, "unset": ["convox:error", "convox:lease"],
        "before": {"convox:status": "failed", "convox:version": "0.1.0"}}}}], state) == []
    assert messages([{"resource": "bucket", "name": "b", "action": "update", "changes": {"tags": {
        "set": {"convox:status": "running", "team": "a"}, "unset": []}}}], state) == ["bucket b: tag team removed"]


def test_missing_extra_and_outdated_resources(state):
    assert messages([
        {"resource": "security_group", "name": "convox-production-router", "action": "create"},
        {"resource": "vpc", "name": "vpc-2", "action": "delete", "changes": {"reason": "duplicate of vpc-1"}},
        {"resource": "instances", "name": "convox-production", "action": "replace",
         "changes": {"reason": "new instance type or image"}},
        {"resource": "launch_template", "name": "convox-production", "action": "update",
         "changes": {"InstanceType": {"before": "t3.large", "after": "t3.small"}}},
        {"resource": "vpc", "name": "vpc-1", "action": "update",
         "changes": {"attributes": {"EnableDnsSupport": True}, "reason": "last run unfinished"}},
    ], state) == [
        "security group convox-production-router: missing",
        "VPC vpc-2: not the rack's (duplicate of vpc-1); an update deletes it",
        "instances of convox-production: new instance type or image; an update replaces them",
        "launch template convox-production: InstanceType t3.large, wanted t3.small",
        "VPC vpc-1: EnableDnsSupport set again (last run unfinished)"]


def test_no_change_no_drift(state):
    assert not drift.describe([], state)


# -- a VPC that lost the rack's tag is found again by the rack's subnets (parts/network.py) ---------------------
def test_a_vpc_holding_the_racks_subnets_is_the_racks_whatever_its_tags(stubbed):
    from ansible_collections.convox.rack.plugins.module_utils._rack.parts import network

    subnets = [{"SubnetId": "subnet-a", "VpcId": "vpc-1"}, {"SubnetId": "subnet-b", "VpcId": "vpc-1"}]
    untagged = {"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16", "Tags": _tags(System="convox", Type="rack")}
    stubbed.ok("ec2", "describe_vpcs", {"Vpcs": [untagged]}, {"VpcIds": ["vpc-1"]})
    assert network.untagged_vpcs(stubbed.aws, "production", subnets, []) == [untagged]
    # found by its tags already: no call
    assert network.untagged_vpcs(stubbed.aws, "production", subnets, [untagged]) == []
    # tagged as another rack's: never taken
    other = dict(untagged, Tags=_tags(System="convox", Type="rack", Rack="staging"))
    stubbed.ok("ec2", "describe_vpcs", {"Vpcs": [other]}, {"VpcIds": ["vpc-1"]})
    assert network.untagged_vpcs(stubbed.aws, "production", subnets, []) == []
    # no subnet, nothing to look for
    assert network.untagged_vpcs(stubbed.aws, "production", [], []) == []
    stubbed.assert_all_used()
