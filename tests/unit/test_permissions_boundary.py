"""The instance role's permissions boundary (issue 6: `permissions_boundary`).

- parts/identity.py ensure: the requests themselves, through botocore's Stubber (each call's
  parameters checked): CreateRole carries PermissionsBoundary; an existing role whose boundary differs
  gets PutRolePermissionsBoundary *before* PutRolePolicy (the shipped operator policy allows
  PutRolePolicy only on a role that already carries the boundary: the local AWS evaluates no IAM policy,
  so this order is checked here); a role with that boundary, or a run that asks none, makes no boundary
  call (a boundary is never removed); check mode plans without a call.
- params.check_permissions_boundary: the boundary's partition and account against the caller's.
- docs/policies/instance-boundary.json: the instance role's documented policy for any rack, region and
  account, and no more; every instance role the code writes is within it.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import types
from pathlib import Path

import pytest
from botocore.stub import ANY

from ansible_collections.convox.rack.plugins.module_utils._rack import desired as D
from ansible_collections.convox.rack.plugins.module_utils._rack.context import Run
from ansible_collections.convox.rack.plugins.module_utils._rack.errors import ValidationError
from ansible_collections.convox.rack.plugins.module_utils._rack.naming import RackNames, system_tags
from ansible_collections.convox.rack.plugins.module_utils._rack.parts import identity
from ansible_collections.convox.rack.plugins.module_utils._rack.state import RackState
from ansible_collections.convox.rack.plugins.module_utils._rack.params import (DEFAULTS, check_permissions_boundary,
                                                                               effective_parameters)
from ansible_collections.convox.rack.plugins.module_utils._rack.plan import Plan

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
RACK = "prod"
NAMES = RackNames(RACK, REGION, ACCOUNT)
ROLE = NAMES.instance_role
BOUNDARY = "arn:aws:iam::%s:policy/convox-rack-instance-boundary" % ACCOUNT
OTHER_BOUNDARY = "arn:aws:iam::%s:policy/ops/convox-rack-instance-boundary-v2" % ACCOUNT
ROLE_ARN = "arn:aws:iam::%s:role/convox/%s" % (ACCOUNT, ROLE)
PROFILE_ARN = "arn:aws:iam::%s:instance-profile/convox/%s" % (ACCOUNT, ROLE)
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
IDENTITY = types.SimpleNamespace(partition="aws", account=ACCOUNT)


def instance_policy():
    return D.instance_role_policy("aws", REGION, ACCOUNT, NAMES.cluster, NAMES.log_group)


def tag_list():
    return [{"Key": k, "Value": v} for k, v in sorted(system_tags(RACK).items())]


def role(boundary=None):
    out = {"Path": "/convox/", "RoleName": ROLE, "RoleId": "AROAEXAMPLEEXAMPLE", "Arn": ROLE_ARN, "CreateDate": NOW,
           "AssumeRolePolicyDocument": D.ec2_trust_policy(), "Tags": tag_list()}
    if boundary:
        out["PermissionsBoundary"] = {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": boundary}
    return out


def role_response(boundary=None):
    """A role as IAM answers it on the wire (the policy document a string; observe reads it decoded)."""
    return dict(role(boundary), AssumeRolePolicyDocument=json.dumps(D.ec2_trust_policy()))


def profile():
    return {"Path": "/convox/", "InstanceProfileName": ROLE, "InstanceProfileId": "AIPAEXAMPLEEXAMPLE", "Arn": PROFILE_ARN,
            "CreateDate": NOW, "Roles": [role_response()], "Tags": tag_list()}


def builder(stubbed, clock, state, boundary, check_mode=False):
    wanted = effective_parameters({"permissions_boundary": boundary, "high_availability": False}, {})
    stubbed.aws.deadline = clock.deadline(60)
    return Run(stubbed.aws, REGION, IDENTITY, NAMES, Plan(check_mode), state, wanted, system_tags(RACK), wait=False)


def state_of(existing_role=None, policy=None, with_profile=True):
    state = RackState(NAMES)
    state.role = existing_role
    state.role_policy = policy
    state.instance_profile = profile() if with_profile else None
    return state


def test_a_new_role_is_created_with_the_boundary(stubbed, clock):
    stubbed.ok("iam", "create_role", {"Role": role_response(BOUNDARY)}, {
        "RoleName": ROLE, "Path": "/convox/", "AssumeRolePolicyDocument": json.dumps(D.ec2_trust_policy()),
        "Description": ANY, "Tags": tag_list(), "PermissionsBoundary": BOUNDARY})
    stubbed.ok("iam", "put_role_policy", {}, {"RoleName": ROLE, "PolicyName": "ecs-container-instance",
                                              "PolicyDocument": json.dumps(instance_policy())})
    stubbed.ok("iam", "create_instance_profile", {"InstanceProfile": dict(profile(), Roles=[])}, {
        "InstanceProfileName": ROLE, "Path": "/convox/", "Tags": tag_list()})
    stubbed.ok("iam", "add_role_to_instance_profile", {}, {"InstanceProfileName": ROLE, "RoleName": ROLE})
    b = builder(stubbed, clock, state_of(with_profile=False), BOUNDARY)
    assert identity.ensure(b) == PROFILE_ARN
    stubbed.assert_all_used()
    assert b.plan.changes[0] == {"resource": "iam_role", "name": ROLE, "action": "create",
                                 "changes": {"permissions_boundary": BOUNDARY}}


def test_a_new_role_without_a_boundary_asked_has_none(stubbed, clock):
    stubbed.ok("iam", "create_role", {"Role": role_response()}, {
        "RoleName": ROLE, "Path": "/convox/", "AssumeRolePolicyDocument": ANY, "Description": ANY, "Tags": ANY})
    stubbed.ok("iam", "put_role_policy", {}, {"RoleName": ROLE, "PolicyName": "ecs-container-instance",
                                              "PolicyDocument": ANY})
    b = builder(stubbed, clock, state_of(), "")
    identity.ensure(b)
    stubbed.assert_all_used()
    assert "changes" not in b.plan.changes[0]


@pytest.mark.parametrize("current", [None, OTHER_BOUNDARY])
def test_an_existing_role_gets_the_boundary_before_its_inline_policy(stubbed, clock, current):
    stubbed.ok("iam", "put_role_permissions_boundary", {}, {"RoleName": ROLE, "PermissionsBoundary": BOUNDARY})
    stubbed.ok("iam", "put_role_policy", {}, {"RoleName": ROLE, "PolicyName": "ecs-container-instance",
                                              "PolicyDocument": json.dumps(instance_policy())})
    b = builder(stubbed, clock, state_of(role(current), policy={"Version": "2012-10-17", "Statement": []}), BOUNDARY)
    identity.ensure(b)
    stubbed.assert_all_used()
    assert stubbed.ops() == ["iam:put_role_permissions_boundary", "iam:put_role_policy"]
    assert b.plan.changes[0] == {"resource": "iam_role", "name": ROLE, "action": "update",
                                 "changes": {"permissions_boundary": {"before": current, "after": BOUNDARY}}}


@pytest.mark.parametrize("current,asked", [(BOUNDARY, BOUNDARY), (BOUNDARY, ""), (None, "")])
def test_no_boundary_call_when_it_is_there_or_none_is_asked(stubbed, clock, current, asked):
    """A role with the boundary asked, or a run that asks none (unset and not recorded): nothing to do. The
    collection never calls DeleteRolePermissionsBoundary (the operator policy denies it)."""
    b = builder(stubbed, clock, state_of(role(current), policy=instance_policy()), asked)
    assert identity.ensure(b) == PROFILE_ARN
    assert stubbed.ops() == [] and b.plan.changes == []


def test_check_mode_plans_the_boundary_without_a_call(stubbed, clock):
    b = builder(stubbed, clock, state_of(role(None), policy=instance_policy()), BOUNDARY, check_mode=True)
    identity.ensure(b)
    assert stubbed.ops() == []
    assert b.plan.changes == [{"resource": "iam_role", "name": ROLE, "action": "update",
                               "changes": {"permissions_boundary": {"before": None, "after": BOUNDARY}}}]


def test_the_boundary_is_a_parameter_with_no_default():
    assert DEFAULTS["permissions_boundary"] == ""
    assert effective_parameters({}, {"permissions_boundary": BOUNDARY})["permissions_boundary"] == BOUNDARY
    assert effective_parameters({"permissions_boundary": ""}, {"permissions_boundary": BOUNDARY})[
        "permissions_boundary"] == ""


# -- the boundary's account and partition ---------------------------------------------------------------

@pytest.mark.parametrize("arn", [BOUNDARY, "", None, "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"])
def test_a_policy_of_the_account_or_of_aws_is_taken(arn):
    check_permissions_boundary(arn, "aws", ACCOUNT)


@pytest.mark.parametrize("arn,rule", [
    ("arn:aws:iam::999999999999:policy/convox-rack-instance-boundary", "must be a policy of the account"),
    ("arn:aws-cn:iam::%s:policy/convox-rack-instance-boundary" % ACCOUNT, "must be in the partition"),
])
def test_another_accounts_or_partitions_policy_is_refused(arn, rule):
    with pytest.raises(ValidationError) as e:
        check_permissions_boundary(arn, "aws", ACCOUNT)
    assert e.value.field == "permissions_boundary" and e.value.msg.startswith("permissions_boundary: " + rule)


# -- docs/policies/instance-boundary.json ---------------------------------------------------------------

def _list(value):
    return value if isinstance(value, list) else [value]


def test_the_boundary_is_the_instance_roles_policy_for_every_rack():
    """The documented instance role with its rack, region and account left open ('*'), nothing else."""
    text = (ROOT / "docs" / "policies" / "instance-role.json").read_text()
    for name, value in (("Partition", "aws"), ("Region", "*"), ("Account", "*"), ("Rack", "*")):
        text = text.replace("${%s}" % name, value)
    assert json.loads((ROOT / "docs" / "policies" / "instance-boundary.json").read_text()) == json.loads(text)


@pytest.mark.parametrize("region,rack,account", [("us-east-1", "prod", ACCOUNT), ("eu-west-1", "a-b-c", "210987654321"),
                                                 ("ap-southeast-2", "x" * 25, "000000000001")])
def test_every_instance_role_is_within_the_boundary(region, rack, account):
    boundary = json.loads((ROOT / "docs" / "policies" / "instance-boundary.json").read_text())
    policy = D.instance_role_policy("aws", region, account, "convox-%s" % rack, "/convox/%s" % rack)
    for st in policy["Statement"]:
        for action in _list(st["Action"]):
            for resource in _list(st["Resource"]):
                assert any(action in _list(b["Action"]) and any(fnmatch.fnmatchcase(resource, r)
                                                                for r in _list(b["Resource"]))
                           for b in boundary["Statement"] if b["Effect"] == "Allow"), (action, resource)
