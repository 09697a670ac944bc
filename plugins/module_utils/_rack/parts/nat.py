# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NAT: one NAT gateway per zone of a private rack, in the public subnet of that zone, each with
an elastic IP of its own. Found by the rack's tags (convox:index says the zone), confirmed by them
(the local AWS ignores DescribeNatGateways' tag filters). A NAT gateway takes minutes to become
available and to be deleted; a deleted one stays listed for an hour (state deleted)."""

from __future__ import annotations

from ..errors import RackError
from ..plan import CHECK_MODE_ID
from ..tags import ec2_filters, ec2_tag_spec, ours_only, sync_ec2_tags, tag_dict

GONE_NAT_STATES = ("deleted", "deleting", "failed")
# A subnet or address just made may not be visible yet (EC2 is eventually consistent: "Eventual
# consistency in the Amazon EC2 API", EC2 API reference).
NEW_SUBNET_OR_ADDRESS = ("InvalidSubnetID.NotFound", "InvalidAllocationID.NotFound")


def read(aws, state):
    rack = state.names.rack
    nats = ours_only(aws.call("ec2", "describe_nat_gateways", "NAT gateways of rack %s" % rack,
                              Filters=ec2_filters(rack))["NatGateways"], rack)
    state.nat_gateways = [n for n in nats if n["State"] not in GONE_NAT_STATES]
    state.deleting_nat_gateways = [n for n in nats if n["State"] == "deleting"]
    state.addresses = ours_only(aws.call("ec2", "describe_addresses", "elastic IPs of rack %s" % rack,
                                         Filters=ec2_filters(rack))["Addresses"], rack)


def _of_index(items, index):
    return [i for i in items if tag_dict(i.get("Tags")).get("convox:index") == str(index)]


def ensure(run, public):
    """A NAT gateway (and its address) in each public subnet: (their ids, a wait for those not yet
    available). They take minutes to become available: the install makes the rest of the rack
    meanwhile and waits (available) only before it routes the private subnets through them."""
    made = [_ensure_nat(run, i, subnet_id) for i, subnet_id in enumerate(public)]
    waiting = [nat_id for nat_id, pending in made if pending and nat_id not in (None, CHECK_MODE_ID)]
    return [nat_id for nat_id, _pending in made], waiting


def available(run, waiting):
    """Wait until the NAT gateways are available (none in check mode); RackError if one failed. The
    step says how many are available so far: `NAT gateways 2/3 available (nat-0c7d... pending)`."""
    if waiting and not run.check_mode:
        ready = []

        def what():
            pending = [n for n in waiting if n not in ready]
            done = len(waiting) - len(pending)
            return "NAT gateways %d/%d available (%s pending)" % (done, len(waiting), ", ".join(pending))

        def probe():
            ready[:] = _available(run.aws, waiting)
            return len(ready) == len(waiting)
        run.deadline.wait_for(what, probe)


def _available(aws, ids):
    """The ids of those of the NAT gateways `ids` that are available; RackError if one failed."""
    nats = aws.call("ec2", "describe_nat_gateways", "NAT gateways %s" % ", ".join(ids),
                    NatGatewayIds=ids)["NatGateways"]
    failed = [n for n in nats if n["State"] == "failed"]
    if failed:
        n = failed[0]
        raise RackError("NAT gateway %s failed: %s %s" % (n["NatGatewayId"], n.get("FailureCode"),
                                                          n.get("FailureMessage")),
                        resource="NAT gateway %s" % n["NatGatewayId"])
    return [n["NatGatewayId"] for n in nats if n["State"] == "available"]


def _ensure_address(run, index, name, tags):
    eip = _of_index(run.state.addresses, index)
    if eip:
        alloc = eip[0]["AllocationId"]
        sync_ec2_tags(run.aws, run.plan, "elastic_ip", alloc, tag_dict(eip[0].get("Tags")), tags)
        return alloc
    return run.plan.change("elastic_ip", name, "create", lambda: run.aws.call(
        "ec2", "allocate_address", "elastic IP %s" % name, Domain="vpc",
        TagSpecifications=ec2_tag_spec("elastic-ip", tags))["AllocationId"]) or CHECK_MODE_ID


def _ensure_nat(run, index, subnet_id):
    """(the NAT gateway's id, whether it is not yet available)."""
    name = "%s-nat-%d" % (run.names.base, index)
    tags = run.res_tags(name, **{"convox:index": str(index)})
    alloc = _ensure_address(run, index, name, tags)
    nat = _of_index(run.state.nat_gateways, index)
    if nat:
        sync_ec2_tags(run.aws, run.plan, "nat_gateway", nat[0]["NatGatewayId"], tag_dict(nat[0].get("Tags")), tags)
        return nat[0]["NatGatewayId"], nat[0]["State"] == "pending"
    created = run.plan.change("nat_gateway", name, "create", lambda: run.aws.call(
        "ec2", "create_nat_gateway", "NAT gateway %s" % name, SubnetId=subnet_id, AllocationId=alloc,
        ClientToken=run.token(name), retry_on=NEW_SUBNET_OR_ADDRESS,
        TagSpecifications=ec2_tag_spec("natgateway", tags))["NatGateway"]["NatGatewayId"])
    return created or CHECK_MODE_ID, True


# -- delete ----------------------------------------------------------------------------------------------------
def remove(run, waits):
    """Delete every NAT gateway; adds to `waits` the wait until they are deleted (with those already
    deleting), which the uninstall makes with its other slow deletes (none in check mode)."""
    state = run.state
    nats = [n["NatGatewayId"] for n in state.nat_gateways]
    for nat_id in nats:
        run.plan.change("nat_gateway", nat_id, "delete", lambda nat_id=nat_id: run.aws.call(
            "ec2", "delete_nat_gateway", "NAT gateway %s" % nat_id, ignore=("NatGatewayNotFound",),
            NatGatewayId=nat_id))
    pending = nats + [n["NatGatewayId"] for n in state.deleting_nat_gateways]
    if pending and not run.check_mode:
        waits.append(("NAT gateways %s to be deleted" % ", ".join(pending), lambda: _gone(run.aws, pending)))


def release_addresses(run):
    """The NAT gateways' addresses (and duplicates), once the gateways are deleted."""
    for addr in run.state.addresses + run.state.extras.get("elastic_ip", []):
        release_address(run, addr)


def _gone(aws, ids):
    nats = aws.call("ec2", "describe_nat_gateways", "NAT gateways %s" % ", ".join(ids),
                    ignore=("NatGatewayNotFound",), NatGatewayIds=ids)
    return all(n["State"] in ("deleted", "failed") for n in (nats or {}).get("NatGateways", []))


def release_address(run, addr, detail=None):
    alloc = addr["AllocationId"]
    run.plan.change("elastic_ip", alloc, "delete", lambda: run.deadline.until_accepted(
        "elastic IP %s to be released by its NAT gateway" % alloc,
        lambda: run.aws.call("ec2", "release_address", "elastic IP %s" % alloc,
                             ignore=("InvalidAllocationID.NotFound",), AllocationId=alloc),
        codes=("InvalidIPAddress.InUse", "AuthFailure")), detail=detail)
