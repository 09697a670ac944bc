"""Duplicates of a rack's resources: which one is kept, and how an install moves off the others.

CreateVpc, CreateInternetGateway and AllocateAddress take no idempotency token: when AWS acts on
one and its answer is lost, botocore sends it again and a second resource exists, tagged as the
rack's (tests/integration/test_reliability_faults.py makes one through the fault proxy and checks
that the next run deletes it). The choice of the kept one is pure (parts/duplicates.py pick_*), tested here
on plain data. What the local AWS does not show, botocore's Stubber stands for: moto lets a
subnet be associated with a second route table and an internet gateway be attached to two VPCs,
both of which AWS refuses (Resource.AlreadyAssociated), so moving a subnet or a gateway off a
duplicate must use ReplaceRouteTableAssociation / DetachInternetGateway, checked here against
AWS's order; and moto ignores CreateRouteTable's ClientToken, whose sending is checked here.
"""

from __future__ import annotations

import types

import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack.context import Run
from ansible_collections.convox.rack.plugins.module_utils._rack.errors import RackError
from ansible_collections.convox.rack.plugins.module_utils._rack.naming import RackNames, system_tags
from ansible_collections.convox.rack.plugins.module_utils._rack.parts import duplicates, network
from ansible_collections.convox.rack.plugins.module_utils._rack.parts.duplicates import (
    pick_addresses, pick_igw, pick_route_tables, pick_vpc)
from ansible_collections.convox.rack.plugins.module_utils._rack.plan import Plan
from ansible_collections.convox.rack.plugins.module_utils._rack.state import RackState

ACCOUNT = "123456789012"
NAMES = RackNames("prod", "us-east-1", ACCOUNT)


def tags(**extra):
    return [{"Key": k, "Value": v} for k, v in dict(system_tags("prod"), **extra).items()]


def igw(igw_id, *vpcs):
    return {"InternetGatewayId": igw_id, "Attachments": [{"VpcId": v, "State": "available"} for v in vpcs],
            "Tags": tags()}


def table(rt_id, tier, subnets=(), index=None, default_route=True):
    extra = {"convox:tier": tier}
    if index is not None:
        extra["convox:index"] = str(index)
    return {"RouteTableId": rt_id, "VpcId": "vpc-1", "Tags": tags(**extra),
            "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1"}] if default_route else [],
            "Associations": [{"RouteTableAssociationId": "rtbassoc-%s-%s" % (rt_id, s), "RouteTableId": rt_id,
                              "SubnetId": s, "Main": False} for s in subnets]}


def address(alloc, index, association=None):
    a = {"AllocationId": alloc, "Domain": "vpc", "Tags": tags(**{"convox:index": str(index)})}
    if association:
        a["AssociationId"] = association
    return a


# -- which one is kept ----------------------------------------------------------------------------------------
def test_the_vpc_holding_the_subnets_is_kept_whatever_its_id():
    vpcs = [{"VpcId": "vpc-0aaa"}, {"VpcId": "vpc-0zzz"}]
    kept, extras = pick_vpc("prod", vpcs, [{"SubnetId": "subnet-1", "VpcId": "vpc-0zzz"}], [])
    assert kept["VpcId"] == "vpc-0zzz" and [v["VpcId"] for v in extras] == ["vpc-0aaa"]


def test_without_subnets_the_vpc_with_the_gateway_is_kept():
    vpcs = [{"VpcId": "vpc-0aaa"}, {"VpcId": "vpc-0zzz"}]
    kept, extras = pick_vpc("prod", vpcs, [], [igw("igw-1", "vpc-0zzz")])
    assert kept["VpcId"] == "vpc-0zzz" and len(extras) == 1


def test_one_vpc_has_no_extras_and_none_is_none():
    assert pick_vpc("prod", [{"VpcId": "vpc-1"}], [], []) == ({"VpcId": "vpc-1"}, [])
    assert pick_vpc("prod", [], [], []) == (None, [])


def test_two_vpcs_holding_subnets_are_refused_naming_both():
    vpcs = [{"VpcId": "vpc-0aaa"}, {"VpcId": "vpc-0zzz"}]
    subnets = [{"SubnetId": "subnet-1", "VpcId": "vpc-0aaa"}, {"SubnetId": "subnet-2", "VpcId": "vpc-0zzz"}]
    with pytest.raises(RackError) as e:
        pick_vpc("prod", vpcs, subnets, [])
    assert "vpc-0aaa, vpc-0zzz" in e.value.msg and "hold its subnets" in e.value.msg


def test_the_gateway_attached_to_the_racks_vpc_is_kept_then_an_unattached_one():
    kept, extras = pick_igw([igw("igw-0a"), igw("igw-0b", "vpc-other"), igw("igw-0c", "vpc-1")], "vpc-1")
    assert kept["InternetGatewayId"] == "igw-0c"
    assert [g["InternetGatewayId"] for g in extras] == ["igw-0a", "igw-0b"]
    kept, extras = pick_igw([igw("igw-0b", "vpc-other"), igw("igw-0z")], "vpc-1")
    assert kept["InternetGatewayId"] == "igw-0z"


def test_the_address_of_the_nat_gateway_is_kept_and_one_in_use_is_never_an_extra():
    nats = [{"NatGatewayId": "nat-0", "NatGatewayAddresses": [{"AllocationId": "eipalloc-0z"}]}]
    addresses = [address("eipalloc-0a", 0), address("eipalloc-0z", 0), address("eipalloc-1a", 1),
                 address("eipalloc-1b", 1, association="eipassoc-1"), address("eipalloc-1c", 1)]
    kept, extras = pick_addresses(addresses, nats)
    assert [a["AllocationId"] for a in kept] == ["eipalloc-0z", "eipalloc-1b"]
    assert [a["AllocationId"] for a in extras] == ["eipalloc-0a", "eipalloc-1a", "eipalloc-1c"]


def test_the_route_table_holding_the_subnets_is_kept_per_tier_and_index():
    tables = [table("rtb-0a", "public"), table("rtb-0b", "public", ["subnet-p0", "subnet-p1"]),
              table("rtb-1a", "private", ["subnet-q0"], index=0), table("rtb-1b", "private", [], index=1),
              table("rtb-1c", "private", [], index=1, default_route=False)]
    kept, extras = pick_route_tables(tables)
    assert sorted(t["RouteTableId"] for t in kept) == ["rtb-0b", "rtb-1a", "rtb-1b"]
    assert sorted(t["RouteTableId"] for t in extras) == ["rtb-0a", "rtb-1c"]


def test_resolve_duplicates_fills_the_state_and_counts_extras_as_existing():
    state = RackState(NAMES)
    state.vpcs = [{"VpcId": "vpc-1"}, {"VpcId": "vpc-2"}]
    state.igws = [igw("igw-1", "vpc-1"), igw("igw-2")]
    state.subnets = [{"SubnetId": "subnet-1", "VpcId": "vpc-1"}]
    duplicates.resolve(state)
    assert state.vpc["VpcId"] == "vpc-1" and state.igw["InternetGatewayId"] == "igw-1"
    assert {k: [list(x.values())[0] for x in v] for k, v in state.extras.items()} == {
        "vpc": ["vpc-2"], "internet_gateway": ["igw-2"], "elastic_ip": [], "route_table": []}
    only_extras = RackState(NAMES)
    only_extras.extras = {"vpc": [{"VpcId": "vpc-2"}]}
    assert only_extras.exists


# -- moving off a duplicate, in an order AWS accepts (Stubber) --------------------------------------------------
def builder(stubbed, state, check_mode=False, deadline=None):
    """An install's run context over `state`, as service.RackService makes it."""
    plan = Plan(check_mode)
    identity = types.SimpleNamespace(account=ACCOUNT, partition="aws")
    stubbed.aws.deadline = deadline
    return Run(stubbed.aws, "us-east-1", identity, NAMES, plan, state, {}, system_tags("prod")), plan


def test_a_subnet_on_a_duplicate_table_is_moved_by_replacing_its_association_then_the_table_is_deleted(stubbed, clock):
    state = RackState(NAMES)
    state.route_tables = [table("rtb-kept", "public", ["subnet-p0"])]
    state.route_tables[0]["Tags"] = tags(Name="%s-public" % NAMES.base, **{"convox:tier": "public"})
    state.extras = {"route_table": [table("rtb-dup", "public", ["subnet-p1"])]}
    b, plan = builder(stubbed, state, deadline=clock.deadline(60))
    # AWS refuses AssociateRouteTable for a subnet that already has a table: the association is replaced.
    stubbed.ok("ec2", "replace_route_table_association", {"NewAssociationId": "rtbassoc-new"},
               {"AssociationId": "rtbassoc-rtb-dup-subnet-p1", "RouteTableId": "rtb-kept"})
    stubbed.ok("ec2", "delete_route_table", {}, {"RouteTableId": "rtb-dup"})
    network.ensure_route_table(b, "vpc-1", "public", None, {"GatewayId": "igw-1"}, ["subnet-p0", "subnet-p1"])
    duplicates.remove_extras(b)
    stubbed.assert_all_used()
    assert {"resource": "route_table", "name": "rtb-dup", "action": "delete",
            "changes": {"reason": "duplicate of the rack's own (a create sent twice)"}} in plan.changes


def test_the_gateway_attached_to_a_duplicate_vpc_is_detached_before_it_is_attached_to_the_racks(stubbed):
    state = RackState(NAMES)
    state.igw = igw("igw-1", "vpc-dup")
    b, plan = builder(stubbed, state)
    stubbed.ok("ec2", "detach_internet_gateway", {}, {"InternetGatewayId": "igw-1", "VpcId": "vpc-dup"})
    stubbed.ok("ec2", "attach_internet_gateway", {}, {"InternetGatewayId": "igw-1", "VpcId": "vpc-1"})
    stubbed.ok("ec2", "create_tags", {})
    assert network.ensure_internet_gateway(b, "vpc-1") == "igw-1"
    stubbed.assert_all_used()
    assert plan.changes[0]["changes"] == {"attach": "vpc-1", "detach": ["vpc-dup"]}


def test_extras_are_deleted_tables_first_and_vpcs_last_and_check_mode_only_plans(stubbed, clock):
    state = RackState(NAMES)
    state.extras = {"route_table": [table("rtb-dup", "public")], "internet_gateway": [igw("igw-dup", "vpc-dup")],
                    "elastic_ip": [address("eipalloc-dup", 0)], "vpc": [{"VpcId": "vpc-dup"}]}
    b, plan = builder(stubbed, state, check_mode=True)
    duplicates.remove_extras(b)
    assert stubbed.log == []
    planned = [(c["resource"], c["name"], c["action"]) for c in plan.changes]
    assert planned == [("route_table", "rtb-dup", "delete"), ("internet_gateway", "igw-dup", "delete"),
                       ("elastic_ip", "eipalloc-dup", "delete"), ("vpc", "vpc-dup", "delete")]
    b, plan = builder(stubbed, state, deadline=clock.deadline(60))
    stubbed.ok("ec2", "delete_route_table", {}, {"RouteTableId": "rtb-dup"})
    stubbed.ok("ec2", "detach_internet_gateway", {}, {"InternetGatewayId": "igw-dup", "VpcId": "vpc-dup"})
    stubbed.ok("ec2", "delete_internet_gateway", {}, {"InternetGatewayId": "igw-dup"})
    stubbed.ok("ec2", "release_address", {}, {"AllocationId": "eipalloc-dup"})
    stubbed.ok("ec2", "delete_vpc", {}, {"VpcId": "vpc-dup"})
    duplicates.remove_extras(b)
    stubbed.assert_all_used()


def test_create_route_table_sends_a_client_token_of_the_run_and_the_table(stubbed):
    def created(b, name_suffix):
        stubbed.ok("ec2", "create_route_table", {"RouteTable": {"RouteTableId": "rtb-new"}})
        stubbed.ok("ec2", "create_route", {"Return": True})
        stubbed.ok("ec2", "associate_route_table", {"AssociationId": "rtbassoc-1"},
                   {"RouteTableId": "rtb-new", "SubnetId": "subnet-1"})
        network.ensure_route_table(b, "vpc-1", name_suffix[0], name_suffix[1], {"GatewayId": "igw-1"}, ["subnet-1"])
        return [p for op, p in stubbed.log if op == "ec2:create_route_table"][-1]["ClientToken"]
    first = builder(stubbed, RackState(NAMES))[0]
    public, private = created(first, ("public", None)), created(first, ("private", 0))
    other_run = builder(stubbed, RackState(NAMES))[0]
    assert public != private, "two tables of one run share a token"
    assert created(other_run, ("public", None)) != public, "a token outlived its run"
    assert public == first.token("%s-public" % NAMES.base), "the token is not the table's own"
    assert len(public) <= 64
    stubbed.assert_all_used()
