# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Firewall: the rack's two security groups, found by the rack's tags (convox:role tells them
apart). The router's (the load balancer's) takes 80 and 443 from anywhere; the instances' takes
traffic only from the router's group and from itself (desired.router_ingress, instance_ingress)."""

from __future__ import annotations

from .. import desired as D
from ..plan import CHECK_MODE_ID
from ..tags import ec2_filters, ec2_tag_spec, ours_only, sync_ec2_tags, tag_dict

# Deleted in this order: the instances' group references the router's.
ROLES = ("instances", "router")


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
