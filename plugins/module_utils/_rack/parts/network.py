# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network: the rack's VPC, its internet gateway, its subnets (public, and private when
`private`) and their route tables. AWS names none of them: all are found by the rack's tags
(convox:tier and convox:index tell them apart) and confirmed by them (tags.ours_only).
Subnet CIDRs come from naming.subnet_cidrs; zones are chosen once, at install.
NAT gateways and their addresses are in nat.py; duplicates of a lost answer in duplicates.py."""

from __future__ import annotations

from ..errors import RackError
from ..naming import subnet_cidrs
from ..plan import CHECK_MODE_ID
from ..tags import ec2_filters, ec2_tag_spec, ours_only, sync_ec2_tags, tag_dict

# Set right after the VPC is created (AWS takes no attributes at creation).
VPC_ATTRIBUTES = ("EnableDnsSupport", "EnableDnsHostnames")
# EC2 acknowledges a create before every reader sees it ("Eventual consistency in the Amazon EC2
# API", EC2 API reference): a call about a resource just made may answer Invalid*.NotFound for a
# moment, and is retried on these codes (as terraform-provider-aws's EC2 resources do).
NEW_VPC = ("InvalidVpcID.NotFound",)
NEW_GATEWAY = ("InvalidInternetGatewayID.NotFound", "InvalidVpcID.NotFound")
NEW_SUBNET = ("InvalidSubnetID.NotFound",)
NEW_TABLE = ("InvalidRouteTableID.NotFound", "InvalidSubnetID.NotFound", "InvalidGatewayID.NotFound",
             "InvalidNatGatewayID.NotFound")


def read(aws, state):
    """Every VPC, subnet, gateway and route table tagged as the rack's (duplicates.resolve keeps one of each)."""
    rack = state.names.rack

    def described(op, key, what):
        return ours_only(aws.call("ec2", op, "%s of rack %s" % (what, rack), Filters=ec2_filters(rack))[key], rack)
    state.vpcs = described("describe_vpcs", "Vpcs", "VPC")
    state.subnets = described("describe_subnets", "Subnets", "subnets")
    state.vpcs += untagged_vpcs(aws, rack, state.subnets, state.vpcs)
    state.igws = described("describe_internet_gateways", "InternetGateways", "internet gateway")
    state.route_tables = described("describe_route_tables", "RouteTables", "route tables")


def untagged_vpcs(aws, rack, subnets, vpcs):
    """The VPCs that hold the rack's subnets but lost a tag of the rack's (changed by hand: drift).

    A subnet lies in one VPC for its whole life (EC2 cannot move it), so the VPC that holds subnets
    whose tags confirm them as the rack's is the rack's VPC, whatever its own tags say now: it is
    found again through them (an update puts its tags back) rather than a second VPC being made. One
    call, only when such a VPC exists; a VPC tagged as another rack's is never taken."""
    missing = sorted({s["VpcId"] for s in subnets if s.get("VpcId")} - {v["VpcId"] for v in vpcs})
    if not missing:
        return []
    found = aws.call("ec2", "describe_vpcs", "VPC holding the subnets of rack %s" % rack, ignore=("InvalidVpcID.NotFound",),
                     VpcIds=missing) or {}
    return [v for v in found.get("Vpcs", []) if tag_dict(v.get("Tags")).get("Rack") in (None, rack)]


# -- VPC and internet gateway ------------------------------------------------------------------------------------
def _set_vpc_attributes(aws, vpc_id):
    for attr in VPC_ATTRIBUTES:
        aws.call("ec2", "modify_vpc_attribute", "VPC %s" % vpc_id, VpcId=vpc_id, retry_on=NEW_VPC,
                 **{attr: {"Value": True}})


def ensure_vpc(run):
    vpc, cidr, name = run.state.vpc, run.wanted["vpc_cidr"], run.names.base
    if vpc is None:
        def create():
            vpc_id = run.aws.call("ec2", "create_vpc", "VPC of rack %s" % run.names.rack, CidrBlock=cidr,
                                  TagSpecifications=ec2_tag_spec("vpc", run.res_tags(name)))["Vpc"]["VpcId"]
            _set_vpc_attributes(run.aws, vpc_id)
            return vpc_id
        return run.plan.change("vpc", cidr, "create", create) or CHECK_MODE_ID
    vpc_id = vpc["VpcId"]
    if vpc["CidrBlock"] != cidr:
        raise RackError("VPC %s of rack %s has CIDR %s but the rack records %s; refusing to continue"
                        % (vpc_id, run.names.rack, vpc["CidrBlock"], cidr), resource="VPC %s" % vpc_id)
    sync_ec2_tags(run.aws, run.plan, "vpc", vpc_id, tag_dict(vpc.get("Tags")), run.res_tags(name))
    if run.last_run_unfinished():
        run.plan.change("vpc", vpc_id, "update", lambda: _set_vpc_attributes(run.aws, vpc_id),
                        detail={"attributes": dict.fromkeys(VPC_ATTRIBUTES, True), "reason": "last run unfinished"})
    return vpc_id


def attached_vpcs(igw):
    return {a["VpcId"] for a in igw.get("Attachments", []) if a.get("State") in ("available", "attached")}


def ensure_internet_gateway(run, vpc_id):
    igw, name, aws = run.state.igw, run.names.base, run.aws
    if igw is None:
        def create():
            igw_id = aws.call("ec2", "create_internet_gateway", "internet gateway of rack %s" % run.names.rack,
                              TagSpecifications=ec2_tag_spec("internet-gateway", run.res_tags(name))
                              )["InternetGateway"]["InternetGatewayId"]
            aws.call("ec2", "attach_internet_gateway", "internet gateway %s" % igw_id, retry_on=NEW_GATEWAY,
                     InternetGatewayId=igw_id, VpcId=vpc_id)
            return igw_id
        return run.plan.change("internet_gateway", name, "create", create) or CHECK_MODE_ID
    igw_id = igw["InternetGatewayId"]
    attached = sorted(attached_vpcs(igw))
    if vpc_id not in attached:
        def attach():
            for other in attached:  # a VPC that is not the rack's (a duplicate, deleted later)
                aws.call("ec2", "detach_internet_gateway", "internet gateway %s" % igw_id,
                         ignore=("Gateway.NotAttached",), InternetGatewayId=igw_id, VpcId=other)
            aws.call("ec2", "attach_internet_gateway", "internet gateway %s" % igw_id,
                     InternetGatewayId=igw_id, VpcId=vpc_id)
        detail = {"attach": vpc_id}
        if attached:
            detail["detach"] = attached
        run.plan.change("internet_gateway", igw_id, "update", attach, detail=detail)
    sync_ec2_tags(aws, run.plan, "internet_gateway", igw_id, tag_dict(igw.get("Tags")), run.res_tags(name))
    return igw_id


# -- subnets -------------------------------------------------------------------------------------------------------
def _zones(run, count):
    """The first `count` available zones, by name, that offer the rack's instance type: not every
    zone offers every type (DescribeInstanceTypeOfferings, EC2 API reference), and a group whose
    zone cannot launch its type fails its launches there."""
    zones = run.aws.call("ec2", "describe_availability_zones", "availability zones of %s" % run.region,
                         Filters=[{"Name": "state", "Values": ["available"]},
                                  {"Name": "zone-type", "Values": ["availability-zone"]}])
    itype = run.wanted["instance_type"]
    offered = run.aws.paginate("ec2", "describe_instance_type_offerings", "zones offering %s" % itype,
                               LocationType="availability-zone",
                               Filters=[{"Name": "instance-type", "Values": [itype]}])
    # the filters confirmed on what came back (an answer may ignore them): an opt-in Local Zone or an
    # impaired zone is no place for the rack's subnets
    offering = {o["Location"] for o in offered.get("InstanceTypeOfferings", []) if o.get("InstanceType") == itype}
    names = sorted(z["ZoneName"] for z in zones["AvailabilityZones"] if z["ZoneName"] in offering
                   and z.get("State") == "available" and z.get("ZoneType", "availability-zone") == "availability-zone")
    if len(names) < 2:
        raise RackError("region %s has %d availability zone(s) that offer %s (%s); a rack needs at least 2"
                        % (run.region, len(names), itype, ", ".join(names) or "none"))
    return names[:count]


def _existing_subnets(state):
    existing = {}
    for s in state.subnets:
        t = tag_dict(s.get("Tags"))
        existing[(t.get("convox:tier"), int(t.get("convox:index", "-1")))] = s
    return existing


def _subnet_zones(run, existing):
    """The zone of each subnet index: those of the public subnets once there, else chosen now."""
    ha = run.wanted["high_availability"]
    count = 3 if ha else 2
    present_public = [existing[("public", i)] for i in range(3) if ("public", i) in existing]
    if len(present_public) >= count:
        return [existing[("public", i)]["AvailabilityZone"] for i in range(len(present_public))]
    available = _zones(run, count)
    count = len(available) if ha else 2
    by_index = {i: s["AvailabilityZone"] for (_tier, i), s in existing.items()}
    spare = [z for z in available if z not in by_index.values()]
    return [by_index.get(i) or spare.pop(0) for i in range(count)]


def ensure_subnets(run, vpc_id):
    """(public subnet ids, private subnet ids): one of each tier per zone."""
    existing = _existing_subnets(run.state)
    zones = _subnet_zones(run, existing)
    public_cidrs, private_cidrs = subnet_cidrs(run.wanted["vpc_cidr"], len(zones))
    public = [_ensure_subnet(run, vpc_id, "public", i, public_cidrs[i], zone, existing) for i, zone in enumerate(zones)]
    private = []
    if run.wanted["private"]:
        private = [_ensure_subnet(run, vpc_id, "private", i, private_cidrs[i], zone, existing)
                   for i, zone in enumerate(zones)]
    return public, private


def _ensure_subnet(run, vpc_id, tier, index, cidr, zone, existing):
    name = "%s-%s-%d" % (run.names.base, tier, index)
    tags = run.res_tags(name, **{"convox:tier": tier, "convox:index": str(index)})
    map_public = tier == "public" and not run.wanted["private"]
    subnet, aws = existing.get((tier, index)), run.aws
    if subnet is None:
        def create():
            sid = aws.call("ec2", "create_subnet", "subnet %s" % name, VpcId=vpc_id, CidrBlock=cidr, retry_on=NEW_VPC,
                           AvailabilityZone=zone, TagSpecifications=ec2_tag_spec("subnet", tags))["Subnet"]["SubnetId"]
            if map_public:
                aws.call("ec2", "modify_subnet_attribute", "subnet %s" % sid, SubnetId=sid, retry_on=NEW_SUBNET,
                         MapPublicIpOnLaunch={"Value": True})
            return sid
        return run.plan.change("subnet", name, "create", create) or CHECK_MODE_ID
    sid = subnet["SubnetId"]
    if bool(subnet.get("MapPublicIpOnLaunch")) != map_public:
        run.plan.change("subnet", sid, "update", lambda: aws.call(
            "ec2", "modify_subnet_attribute", "subnet %s" % sid, SubnetId=sid,
            MapPublicIpOnLaunch={"Value": map_public}), detail={"map_public_ip_on_launch": map_public})
    sync_ec2_tags(aws, run.plan, "subnet", sid, tag_dict(subnet.get("Tags")), tags)
    return sid


# -- route tables ----------------------------------------------------------------------------------------------------
def _route_table(state, tier, index=None):
    for rt in state.route_tables:
        t = tag_dict(rt.get("Tags"))
        if t.get("convox:tier") == tier and (index is None or t.get("convox:index") == str(index)):
            return rt
    return None


def ensure_public_routes(run, vpc_id, igw_id, public):
    ensure_route_table(run, vpc_id, "public", None, {"GatewayId": igw_id}, public)


def ensure_private_routes(run, vpc_id, nats, private):
    for i, subnet_id in enumerate(private):
        ensure_route_table(run, vpc_id, "private", i, {"NatGatewayId": nats[i]}, [subnet_id])


def ensure_route_table(run, vpc_id, tier, index, target, subnet_ids):
    """A table with a default route to `target`, associated with the subnets."""
    name = "%s-%s" % (run.names.base, tier if index is None else "%s-%d" % (tier, index))
    extra = {"convox:tier": tier} if index is None else {"convox:tier": tier, "convox:index": str(index)}
    tags, aws, plan = run.res_tags(name, **extra), run.aws, run.plan
    route = dict({"DestinationCidrBlock": "0.0.0.0/0"}, **target)
    rt = _route_table(run.state, tier, index)
    if rt is None:
        def create():
            rt_id = aws.call("ec2", "create_route_table", "route table %s" % name, VpcId=vpc_id, retry_on=NEW_VPC,
                             ClientToken=run.token(name), TagSpecifications=ec2_tag_spec("route-table", tags)
                             )["RouteTable"]["RouteTableId"]
            aws.call("ec2", "create_route", "route table %s" % name, RouteTableId=rt_id, retry_on=NEW_TABLE, **route)
            for sid in subnet_ids:
                associate(run, rt_id, sid)
            return rt_id
        plan.change("route_table", name, "create", create)
        return
    rt_id = rt["RouteTableId"]
    _ensure_default_route(run, rt, route, target)
    associated = {a.get("SubnetId") for a in rt.get("Associations", []) if a.get("SubnetId")}
    for sid in subnet_ids:
        if sid not in associated:
            plan.change("route_table", rt_id, "update", lambda sid=sid: associate(run, rt_id, sid),
                        detail={"associate": sid})
    sync_ec2_tags(aws, plan, "route_table", rt_id, tag_dict(rt.get("Tags")), tags)


def _ensure_default_route(run, rt, route, target):
    rt_id = rt["RouteTableId"]
    default = [r for r in rt.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    target_key, target_id = list(target.items())[0]
    if not default:
        op = "create_route"
    elif default[0].get(target_key) != target_id or default[0].get("State") == "blackhole":
        op = "replace_route"
    else:
        return
    run.plan.change("route_table", rt_id, "update", lambda: run.aws.call(
        "ec2", op, "route table %s" % rt_id, RouteTableId=rt_id, retry_on=NEW_TABLE, **route), detail={"route": route})


def associate(run, rt_id, subnet_id):
    """Associate the subnet with the table; a subnet associated with another of the rack's
    tables (a duplicate) is moved: AWS refuses a second association of one subnet."""
    for other in run.state.route_tables + run.state.extras.get("route_table", []):
        for assoc in other.get("Associations", []):
            if assoc.get("SubnetId") == subnet_id and other["RouteTableId"] != rt_id:
                run.aws.call("ec2", "replace_route_table_association", "route table %s" % rt_id,
                             AssociationId=assoc["RouteTableAssociationId"], RouteTableId=rt_id)
                other["Associations"].remove(assoc)  # gone with the replacement
                return
    run.aws.call("ec2", "associate_route_table", "route table %s" % rt_id, RouteTableId=rt_id, SubnetId=subnet_id,
                 retry_on=NEW_TABLE)


# -- delete ----------------------------------------------------------------------------------------------------------
def delete_route_table(run, rt, detail=None):
    def delete():
        rt_id = rt["RouteTableId"]
        for assoc in rt.get("Associations", []):
            run.aws.call("ec2", "disassociate_route_table", "route table %s" % rt_id,
                         ignore=("InvalidAssociationID.NotFound",), AssociationId=assoc["RouteTableAssociationId"])
        run.aws.call("ec2", "delete_route_table", "route table %s" % rt_id,
                     ignore=("InvalidRouteTableID.NotFound",), RouteTableId=rt_id)
    run.plan.change("route_table", rt["RouteTableId"], "delete", delete, detail=detail)


def delete_subnet(run, subnet):
    sid = subnet["SubnetId"]
    run.plan.change("subnet", sid, "delete", lambda: run.deadline.until_accepted(
        "subnet %s to be released" % sid,
        lambda: run.aws.call("ec2", "delete_subnet", "subnet %s" % sid, ignore=("InvalidSubnetID.NotFound",),
                             SubnetId=sid)))


def delete_internet_gateway(run, igw, detail=None):
    igw_id = igw["InternetGatewayId"]

    def delete():
        for att in igw.get("Attachments", []):
            run.deadline.until_accepted("internet gateway %s to be detached" % igw_id, lambda att=att: run.aws.call(
                "ec2", "detach_internet_gateway", "internet gateway %s" % igw_id,
                ignore=("Gateway.NotAttached", "InvalidInternetGatewayID.NotFound"),
                InternetGatewayId=igw_id, VpcId=att["VpcId"]))
        run.aws.call("ec2", "delete_internet_gateway", "internet gateway %s" % igw_id,
                     ignore=("InvalidInternetGatewayID.NotFound",), InternetGatewayId=igw_id)
    run.plan.change("internet_gateway", igw_id, "delete", delete, detail=detail)


def delete_vpc(run, vpc, detail=None):
    vid = vpc["VpcId"]
    run.plan.change("vpc", vid, "delete", lambda: run.deadline.until_accepted(
        "VPC %s to be released" % vid,
        lambda: run.aws.call("ec2", "delete_vpc", "VPC %s" % vid, ignore=("InvalidVpcID.NotFound",), VpcId=vid)),
        detail=detail)


def remove(run):
    """Route tables (but a VPC's main one), subnets, gateway, VPC; and their duplicates."""
    state = run.state
    for rt in state.route_tables + state.extras.get("route_table", []):
        if not any(a.get("Main") for a in rt.get("Associations", [])):
            delete_route_table(run, rt)
    for subnet in state.subnets:
        delete_subnet(run, subnet)
    for igw in [state.igw] + state.extras.get("internet_gateway", []):
        if igw is not None:
            delete_internet_gateway(run, igw)
    for vpc in [state.vpc] + state.extras.get("vpc", []):
        if vpc is not None:
            delete_vpc(run, vpc)
