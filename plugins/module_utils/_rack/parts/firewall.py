# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Firewall: the rack's two security groups, found by the rack's tags (convox:role tells them
apart). The router's (the load balancer's) takes 80 and 443 from anywhere; the instances' takes
traffic only from the router's group and from itself (desired.router_ingress, instance_ingress).

And the two its VPC comes with (close_defaults): AWS makes a default security group and a default
network ACL with every VPC, untagged and open. The rack uses no default group: it is left with no
rule. Every subnet of the rack uses the default ACL: its inbound rules become desired.network_acl_ingress.
Both are found by the rack's VPC id (confirmed on what came back, not trusting the filter) and go
with the VPC."""

from __future__ import annotations

from .. import desired as D
from ..plan import CHECK_MODE_ID
from ..tags import ec2_filters, ec2_tag_spec, ours_only, sync_ec2_tags, tag_dict

# Deleted in this order: the instances' group references the router's.
ROLES = ("instances", "router")
LAST_RULE = 32767  # a network ACL's "*" rule: AWS's, neither replaced nor deleted


def read(aws, state):
    rack = state.names.rack
    groups = ours_only(aws.call("ec2", "describe_security_groups", "security groups of rack %s" % rack,
                                Filters=ec2_filters(rack))["SecurityGroups"], rack)
    for g in groups:
        role = tag_dict(g.get("Tags")).get("convox:role")
        if role:
            state.security_groups[role] = g


def ensure(run, vpc_id):
    """(router group id, instances group id), each with exactly its wanted ingress."""
    names, rack = run.names, run.names.rack
    router = _ensure_group(run, vpc_id, "router", names.router_security_group, "convox rack %s load balancer" % rack)
    instances = _ensure_group(run, vpc_id, "instances", names.instance_security_group, "convox rack %s instances" % rack)
    _ensure_ingress(run, "router", router, D.router_ingress())
    _ensure_ingress(run, "instances", instances, D.instance_ingress(router, instances))
    return router, instances


def _ensure_group(run, vpc_id, role, name, description):
    tags = run.res_tags(name, **{"convox:role": role})
    group = run.state.security_groups.get(role)
    if group is None:
        return run.plan.change("security_group", name, "create", lambda: run.aws.call(
            "ec2", "create_security_group", "security group %s" % name, GroupName=name,
            Description=description, VpcId=vpc_id, retry_on=("InvalidVpcID.NotFound",),
            TagSpecifications=ec2_tag_spec("security-group", tags))["GroupId"]) or CHECK_MODE_ID
    sync_ec2_tags(run.aws, run.plan, "security_group", group["GroupId"], tag_dict(group.get("Tags")), tags)
    return group["GroupId"]


def _ensure_ingress(run, role, group_id, wanted_perms):
    group = run.state.security_groups.get(role)
    current = D.permission_keys(group.get("IpPermissions")) if group else set()
    wanted = D.permission_keys(wanted_perms)
    add, remove = wanted - current, current - wanted

    def ingress(op, keys):
        # A group just made may answer InvalidGroup.NotFound for a moment (EC2's eventual consistency).
        return lambda: run.aws.call("ec2", op, "security group %s" % group_id, GroupId=group_id,
                                    retry_on=("InvalidGroup.NotFound",), IpPermissions=D.permissions_from_keys(keys))
    if add:
        run.plan.change("security_group", group_id if group else "%s ingress" % role, "update" if group else "create",
                        ingress("authorize_security_group_ingress", add),
                        detail={"ingress_add": sorted(str(k) for k in add)} if group else None)
    if remove:
        run.plan.change("security_group", group_id, "update", ingress("revoke_security_group_ingress", remove),
                        detail={"ingress_remove": sorted(str(k) for k in remove)})


def close_defaults(run, vpc_id):
    """The VPC's default security group without rules, its default network ACL with the rack's inbound rules."""
    if vpc_id == CHECK_MODE_ID:  # a VPC still to be made: what its defaults will get
        run.plan.change("security_group", "default of the new VPC", "update", None, detail={"rules": "none"})
        run.plan.change("network_acl", "default of the new VPC", "update", None,
                        detail={"ingress": [str(k) for k in D.network_acl_ingress(run.wanted["vpc_cidr"])]})
        return
    _close_default_group(run, vpc_id)
    _default_acl(run, vpc_id)


def _close_default_group(run, vpc_id):
    found = run.aws.call("ec2", "describe_security_groups", "default security group of VPC %s" % vpc_id,
                         Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}])
    for group in found["SecurityGroups"]:
        if group.get("VpcId") != vpc_id or group.get("GroupName") != "default":
            continue
        gid = group["GroupId"]
        for direction, op, what in (("IpPermissions", "revoke_security_group_ingress", "default_ingress"),
                                    ("IpPermissionsEgress", "revoke_security_group_egress", "default_egress")):
            keys = D.permission_keys(group.get(direction))
            if keys:
                run.plan.change("security_group", gid, "update", lambda op=op, keys=keys, gid=gid: run.aws.call(
                    "ec2", op, "default security group %s" % gid, GroupId=gid,
                    IpPermissions=D.permissions_from_keys(keys)), detail={what: sorted(str(k) for k in keys)})


def _default_acl(run, vpc_id):
    found = run.aws.call("ec2", "describe_network_acls", "default network ACL of VPC %s" % vpc_id,
                         Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default", "Values": ["true"]}])
    wanted = {k[0]: k for k in D.network_acl_ingress(run.wanted["vpc_cidr"])}
    for acl in found["NetworkAcls"]:
        if acl.get("VpcId") != vpc_id or not acl.get("IsDefault"):
            continue
        acl_id = acl["NetworkAclId"]
        current = {e["RuleNumber"]: D.acl_entry_key(e) for e in acl.get("Entries", [])
                   if not e.get("Egress") and e.get("CidrBlock") and e.get("RuleNumber") != LAST_RULE}

        def entry(op, key=None, number=None):
            args = D.acl_entry_args(key) if key else {"RuleNumber": number, "Egress": False}
            return lambda: run.aws.call("ec2", op, "network ACL %s" % acl_id, NetworkAclId=acl_id, **args)
        # the later rules first, then the first (AWS's allow-everything 100 until then): no moment admits less
        for number in sorted(wanted, reverse=True):
            key = wanted[number]
            if current.get(number) == key:
                continue
            op = "replace_network_acl_entry" if number in current else "create_network_acl_entry"
            run.plan.change("network_acl", acl_id, "update", entry(op, key),
                            detail={"ingress": "%s rule %d: %s" % ("replace" if number in current else "add", number, key)})
        for number in sorted(set(current) - set(wanted)):
            run.plan.change("network_acl", acl_id, "update", entry("delete_network_acl_entry", number=number),
                            detail={"ingress": "remove rule %d: %s" % (number, current[number])})


def remove(run):
    for role in ROLES:
        group = run.state.security_groups.get(role)
        if group is None:
            continue
        gid = group["GroupId"]
        run.plan.change("security_group", gid, "delete", lambda gid=gid: run.deadline.until_accepted(
            "security group %s to be released" % gid,
            lambda: run.aws.call("ec2", "delete_security_group", "security group %s" % gid,
                                 ignore=("InvalidGroup.NotFound",), GroupId=gid)))
