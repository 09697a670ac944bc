# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Identity: the instances' IAM role (trust, inline policy `ecs-container-instance`, optional
permissions boundary) and its instance profile, both named convox-<rack>-<region>-instance under
path /convox/, found by name and confirmed by tags. IAM is global: the region in the name keeps
two racks of one name apart."""

from __future__ import annotations

import json

from .. import desired as D
from ..plan import CHECK_MODE_ID
from ..tags import confirm, sync_tags, tag_dict, tag_list

NOT_FOUND = ("NoSuchEntity",)
POLICY_NAME = "ecs-container-instance"


def read(aws, state):
    names = state.names
    name = names.instance_role
    role = aws.call("iam", "get_role", "IAM role %s" % name, ignore=NOT_FOUND, RoleName=name)
    if role:
        role = role["Role"]
        confirm(tag_dict(role.get("Tags")), "IAM role %s" % name, names.rack)
        state.role = role
        pol = aws.call("iam", "get_role_policy", "IAM role %s" % name, ignore=NOT_FOUND,
                       RoleName=name, PolicyName=POLICY_NAME)
        state.role_policy = pol["PolicyDocument"] if pol else None
    prof = aws.call("iam", "get_instance_profile", "instance profile %s" % name, ignore=NOT_FOUND,
                    InstanceProfileName=name)
    if prof:
        prof = prof["InstanceProfile"]
        if prof.get("Tags") is None:
            prof["Tags"] = aws.call("iam", "list_instance_profile_tags", "instance profile %s" % name,
                                    InstanceProfileName=name).get("Tags", [])
        confirm(tag_dict(prof["Tags"]), "instance profile %s" % name, names.rack)
        state.instance_profile = prof


def _iam(run, what):
    name = run.names.instance_role
    return lambda op, **kw: run.aws.call("iam", op, "%s %s" % (what, name), **kw)


def ensure(run):
    """The role, its policy and its profile; returns the profile's ARN (CHECK_MODE_ID if to be made)."""
    _ensure_role(run)
    _ensure_policy(run)
    return _ensure_profile(run)


def _ensure_role(run):
    name, role, plan = run.names.instance_role, run.state.role, run.plan
    iam = _iam(run, "IAM role")
    # The permissions boundary: set on creation, and put on an existing role whose boundary differs,
    # before its inline policy (an operator policy may allow PutRolePolicy only on roles that carry the
    # boundary). Unset (""), an existing role's boundary is left as it is, as amazon.aws.iam_role does.
    boundary = run.wanted.get("permissions_boundary") or None
    if role is None:
        create = dict(RoleName=name, Path="/convox/", AssumeRolePolicyDocument=json.dumps(D.ec2_trust_policy()),
                      Description="ECS container instances of convox rack %s" % run.names.rack,
                      Tags=tag_list(run.tags))
        if boundary:
            create["PermissionsBoundary"] = boundary
        plan.change("iam_role", name, "create", lambda: iam("create_role", **create),
                    detail={"permissions_boundary": boundary} if boundary else None)
        return
    current = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    if boundary and current != boundary:
        plan.change("iam_role", name, "update", lambda: iam(
            "put_role_permissions_boundary", RoleName=name, PermissionsBoundary=boundary),
            detail={"permissions_boundary": {"before": current, "after": boundary}})
    if not D.policy_equal(role.get("AssumeRolePolicyDocument"), D.ec2_trust_policy()):
        plan.change("iam_role", name, "update", lambda: iam(
            "update_assume_role_policy", RoleName=name, PolicyDocument=json.dumps(D.ec2_trust_policy())),
            detail={"trust_policy": "ec2.amazonaws.com"})
    sync_tags(plan, "iam_role", name, tag_dict(role.get("Tags")), run.tags,
              lambda s: iam("tag_role", RoleName=name, Tags=tag_list(s)),
              lambda u: iam("untag_role", RoleName=name, TagKeys=u))


def _ensure_policy(run):
    names, ident = run.names, run.identity
    policy = D.instance_role_policy(ident.partition, run.region, ident.account, names.cluster, names.log_group)
    if D.policy_equal(run.state.role_policy, policy):
        return
    exists = run.state.role is not None
    run.plan.change("iam_role", names.instance_role, "update" if exists else "create", lambda: _iam(run, "IAM role")(
        "put_role_policy", RoleName=names.instance_role, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy)),
        detail={"policy": POLICY_NAME} if exists else None)


def _ensure_profile(run):
    name, prof, plan = run.names.instance_role, run.state.instance_profile, run.plan
    iam = _iam(run, "instance profile")
    if prof is None:
        def create():
            created = iam("create_instance_profile", InstanceProfileName=name, Path="/convox/", Tags=tag_list(run.tags))
            iam("add_role_to_instance_profile", InstanceProfileName=name, RoleName=name)
            return created["InstanceProfile"]["Arn"]
        return plan.change("instance_profile", name, "create", create) or CHECK_MODE_ID
    if name not in [r["RoleName"] for r in prof.get("Roles", [])]:
        plan.change("instance_profile", name, "update", lambda: iam(
            "add_role_to_instance_profile", InstanceProfileName=name, RoleName=name), detail={"role": name})
    sync_tags(plan, "instance_profile", name, tag_dict(prof.get("Tags")), run.tags,
              lambda s: iam("tag_instance_profile", InstanceProfileName=name, Tags=tag_list(s)),
              lambda u: iam("untag_instance_profile", InstanceProfileName=name, TagKeys=u))
    return prof["Arn"]


def remove(run):
    """The profile (its role taken out first), then the role (its policies first)."""
    name, prof, role, plan = run.names.instance_role, run.state.instance_profile, run.state.role, run.plan

    def iam(op, **kw):
        return run.aws.call("iam", op, "IAM role %s" % name, ignore=NOT_FOUND, **kw)
    if prof is not None:
        def delete_profile():
            for r in prof.get("Roles", []):
                iam("remove_role_from_instance_profile", InstanceProfileName=name, RoleName=r["RoleName"])
            iam("delete_instance_profile", InstanceProfileName=name)
        plan.change("instance_profile", name, "delete", delete_profile)
    if role is not None:
        def delete_role():
            for pol in (iam("list_role_policies", RoleName=name) or {}).get("PolicyNames", []):
                iam("delete_role_policy", RoleName=name, PolicyName=pol)
            for pol in (iam("list_attached_role_policies", RoleName=name) or {}).get("AttachedPolicies", []):
                iam("detach_role_policy", RoleName=name, PolicyArn=pol["PolicyArn"])
            iam("delete_role", RoleName=name)
        plan.change("iam_role", name, "delete", delete_role)
