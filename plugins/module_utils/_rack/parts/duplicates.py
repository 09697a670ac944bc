# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Duplicates of a lost answer: where the rack has one of a thing found by its tags alone (its
VPC, internet gateway, each NAT index's elastic IP, each route table), keep one and set the
others aside as state.extras; the install deletes them last, the uninstall with the rest."""

from __future__ import annotations

from ..errors import RackError
from ..tags import tag_dict
from .nat import release_address
from .network import attached_vpcs, delete_internet_gateway, delete_route_table, delete_vpc

# CreateVpc, CreateInternetGateway and AllocateAddress take no idempotency token: when AWS acts on
# one and its answer is lost, botocore sends the request again and AWS makes a second resource,
# tagged as the rack's like the first (CreateRouteTable takes a token, which network.py passes;
# the local AWS ignores it). So where the rack has one of a thing, the reading may find several. One
# is kept, chosen by what uses it (the VPC holding the subnets, the gateway attached to that VPC,
# the address of the NAT gateway, the route table with the subnets); the others, unused, are
# `extras`, which an install deletes once the kept ones carry everything (remove_extras, its last
# step) and an uninstall deletes with the rest.


def _by_slot(items, slot):
    groups = {}
    for item in items:
        groups.setdefault(slot(item), []).append(item)
    return groups


def pick_vpc(rack, vpcs, subnets, igws):
    """(the rack's VPC or None, the extra VPCs). Two VPCs that both hold subnets of the rack are
    not duplicates of a lost answer: the rack refuses to guess."""
    holding = {s.get("VpcId") for s in subnets}
    if len([v for v in vpcs if v["VpcId"] in holding]) > 1:
        raise RackError("rack %s has %d VPCs tagged as its own that hold its subnets (%s); "
                        "keep one and remove the others by hand"
                        % (rack, len(vpcs), ", ".join(sorted(v["VpcId"] for v in vpcs))),
                        resource="VPC of rack %s" % rack)
    attached = set().union(*[attached_vpcs(g) for g in igws]) if igws else set()
    ranked = sorted(vpcs, key=lambda v: (v["VpcId"] not in holding, v["VpcId"] not in attached, v["VpcId"]))
    return (ranked[0] if ranked else None), ranked[1:]


def pick_igw(igws, vpc_id):
    """(the gateway attached to the rack's VPC, else an unattached one, else any; the extras)."""
    ranked = sorted(igws, key=lambda g: (vpc_id not in attached_vpcs(g), bool(attached_vpcs(g)),
                                         g["InternetGatewayId"]))
    return (ranked[0] if ranked else None), ranked[1:]


def pick_addresses(addresses, nat_gateways):
    """(one elastic IP per NAT index, the extras). Kept first: the address a NAT gateway of the
    rack uses, then one associated with anything; an extra in use is never released, so it is
    kept as well (the NAT gateways of one index are build's concern, not this reading's)."""
    used = {a.get("AllocationId") for n in nat_gateways for a in n.get("NatGatewayAddresses", [])}
    kept, extras = [], []
    for _slot, group in sorted(_by_slot(addresses, lambda a: tag_dict(a.get("Tags")).get("convox:index")).items(),
                               key=lambda kv: str(kv[0])):
        ranked = sorted(group, key=lambda a: (a["AllocationId"] not in used, not a.get("AssociationId"),
                                              a["AllocationId"]))
        kept.append(ranked[0])
        for a in ranked[1:]:
            (kept if a["AllocationId"] in used or a.get("AssociationId") else extras).append(a)
    return kept, extras


def _subnet_associations(rt):
    return [a for a in rt.get("Associations", []) if a.get("SubnetId")]


def pick_route_tables(route_tables):
    """(one route table per tier and index, the extras): the table with most subnets, then the
    one with a default route. The main route table of a VPC is never an extra."""
    kept, extras = [], []

    def slot(rt):
        t = tag_dict(rt.get("Tags"))
        return (t.get("convox:tier", ""), t.get("convox:index", ""))
    for _slot, group in sorted(_by_slot(route_tables, slot).items()):
        ranked = sorted(group, key=lambda rt: (
            -len(_subnet_associations(rt)),
            not any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in rt.get("Routes", [])),
            rt["RouteTableId"]))
        kept.append(ranked[0])
        for rt in ranked[1:]:
            (kept if any(a.get("Main") for a in rt.get("Associations", [])) else extras).append(rt)
    return kept, extras


def resolve(state):
    """Keep one of each thing the rack has one of; the others become state.extras."""
    state.vpc, extra_vpcs = pick_vpc(state.names.rack, state.vpcs, state.subnets, state.igws)
    state.igw, extra_igws = pick_igw(state.igws, state.vpc["VpcId"] if state.vpc else None)
    state.addresses, extra_addresses = pick_addresses(state.addresses, state.nat_gateways)
    state.route_tables, extra_route_tables = pick_route_tables(state.route_tables)
    state.extras = {"vpc": extra_vpcs, "internet_gateway": extra_igws, "elastic_ip": extra_addresses,
                    "route_table": extra_route_tables}


def remove_extras(run):
    """Delete the duplicates set aside by resolve(), last: by now the kept VPC, gateway, addresses
    and route tables carry everything, so the extras are unused; each change says why."""
    why = {"reason": "duplicate of the rack's own (a create sent twice)"}
    extras = run.state.extras
    for rt in extras.get("route_table", []):
        delete_route_table(run, rt, why)
    for igw in extras.get("internet_gateway", []):
        delete_internet_gateway(run, igw, why)
    for addr in extras.get("elastic_ip", []):
        release_address(run, addr, why)
    for vpc in extras.get("vpc", []):
        delete_vpc(run, vpc, why)
