"""The instance role's policy (desired.instance_role_policy, attached by build.py as the inline
policy ecs-container-instance): what an ECS container instance needs and no more, as documented in
docs/policies/instance-role.json and explained in docs/security.md.

Compared with AWS's managed policy AmazonEC2ContainerServiceforEC2Role, and checked against the
Service Authorization Reference that parliament (the IAM policy linter) ships: every action exists,
Resource "*" only where the action has no resource-level permission, every other resource in the
format the action takes and inside the rack. tests/integration/test_security_policy.py checks that
a real install attaches exactly this document.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import parliament
import pytest
from parliament import analyze_policy_string, enhance_finding, is_arn_strictly_valid

from ansible_collections.convox.rack.plugins.module_utils._rack import desired as D

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED = ROOT / "docs" / "policies" / "instance-role.json"
ACCOUNT = "123456789012"

# AmazonEC2ContainerServiceforEC2Role as AWS publishes it (one statement on Resource "*", and
# ecs:TagResource on creation of a cluster or container instance).
MANAGED = ["ec2:DescribeTags", "ecs:CreateCluster", "ecs:DeregisterContainerInstance", "ecs:DiscoverPollEndpoint",
           "ecs:Poll", "ecs:RegisterContainerInstance", "ecs:StartTelemetrySession",
           "ecs:UpdateContainerInstancesState", "ecs:Submit*", "ecr:GetAuthorizationToken",
           "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
           "logs:CreateLogStream", "logs:PutLogEvents", "ecs:TagResource"]
# What a rack's instances do not need of it, and why (docs/security.md, "The instance role").
NOT_NEEDED = {
    "ec2:DescribeTags": "the agent reads the instance's tags only with ECS_CONTAINER_INSTANCE_PROPAGATE_TAGS_FROM, "
                        "which the rack's user data does not set",
    "ecs:CreateCluster": "the agent creates a cluster only when ECS_CLUSTER is unset (it would make 'default'); "
                         "the user data names the rack's cluster, which the collection creates",
    "ecs:TagResource": "needed only when the agent registers with tags (ECS_CONTAINER_INSTANCE_TAGS or tag "
                       "propagation), which the rack does not configure",
}


def _sar():
    path = Path(parliament.__file__).parent / "iam_definition.json"
    return {s["prefix"]: {p["privilege"]: p for p in s["privileges"]} for s in json.loads(path.read_text())}


SAR = _sar()


def _list(value):
    return value if isinstance(value, list) else [value]


def expand(pattern):
    prefix, name = pattern.split(":")
    return {"%s:%s" % (prefix, a) for a in SAR[prefix] if fnmatch.fnmatchcase(a, name)}


def code_policy(partition="aws", region="us-east-1", rack="prod", account=ACCOUNT):
    return D.instance_role_policy(partition, region, account, "convox-%s" % rack, "/convox/%s" % rack)


def documented_policy(partition="aws", region="us-east-1", rack="prod", account=ACCOUNT):
    text = DOCUMENTED.read_text()
    for name, value in (("Partition", partition), ("Region", region), ("Account", account), ("Rack", rack)):
        text = text.replace("${%s}" % name, value)
    return json.loads(text)


def actions_of(policy):
    return {a for st in policy["Statement"] for a in _list(st["Action"])}


@pytest.mark.parametrize("partition,region,rack", [("aws", "us-east-1", "prod"), ("aws", "eu-west-1", "a-b-c"),
                                                   ("aws-us-gov", "us-gov-west-1", "x"), ("aws-cn", "cn-north-1", "z1")])
def test_the_policy_is_the_documented_one(partition, region, rack):
    assert code_policy(partition, region, rack) == documented_policy(partition, region, rack)


def test_no_wildcard_action_and_each_exists():
    for action in actions_of(code_policy()):
        prefix, name = action.split(":")
        assert "*" not in action and "?" not in action, action
        assert name in SAR[prefix], action


def test_actions_are_the_managed_policys_minus_what_a_rack_does_not_use():
    managed = set().union(*(expand(p) for p in MANAGED))
    assert actions_of(code_policy()) == managed - set(NOT_NEEDED)
    assert set(NOT_NEEDED) <= managed


def test_resource_star_only_where_aws_has_no_resource_level_permission():
    for st in code_policy()["Statement"]:
        for action in _list(st["Action"]):
            prefix, name = action.split(":")
            types = [rt["resource_type"] for rt in SAR[prefix][name]["resource_types"] if rt["resource_type"]]
            assert (st["Resource"] == "*") == (not types), (action, st["Resource"], types)


def test_every_resource_is_in_the_format_its_actions_take():
    """Every action of a scoped statement has a resource type one of the statement's resources matches
    strictly (parliament's check: the resource type is spelled out, no wildcard standing for it)."""
    for st in code_policy()["Statement"]:
        if st["Resource"] == "*":
            continue
        for action in _list(st["Action"]):
            prefix, name = action.split(":")
            formats = _formats(prefix, name)
            assert formats, action
            assert any(is_arn_strictly_valid(t, f, r) for t, f in formats for r in _list(st["Resource"])), action


def _formats(prefix, name):
    """(resource type, ARN format with '*' for its variables) of each resource type the action takes."""
    from parliament.statement import get_arn_format

    service = [s for s in parliament.iam_definition if s["prefix"] == prefix][0]
    return [(rt["resource_type"].rstrip("*"), get_arn_format(rt["resource_type"], service["resources"]))
            for rt in SAR[prefix][name]["resource_types"] if rt["resource_type"]]


ARN = "arn:aws:%s:us-east-1:%s:%s"


@pytest.mark.parametrize("action,resource,allowed", [
    ("ecs:RegisterContainerInstance", "cluster/convox-prod", True),
    ("ecs:RegisterContainerInstance", "cluster/convox-prod-staging", False),
    ("ecs:Poll", "container-instance/convox-prod/0123abcd", True),
    ("ecs:Poll", "container-instance/convox-other/0123abcd", False),
    ("ecr:BatchGetImage", "repository/convox/prod/web", True),
    ("ecr:BatchGetImage", "repository/convox/prod-staging/web", False),
    ("ecr:BatchGetImage", "repository/somebody/else", False),
    ("logs:PutLogEvents", "log-group:/convox/prod:log-stream:i-0123", True),
    ("logs:PutLogEvents", "log-group:/convox/prod/apps/web:log-stream:web/1", True),
    ("logs:PutLogEvents", "log-group:/convox/production/apps/web:log-stream:web/1", False),
    ("logs:PutLogEvents", "log-group:/aws/lambda/x:log-stream:y", False),
])
def test_scoped_to_the_rack(action, resource, allowed):
    service = action.split(":")[0]
    arn = ARN % (service, ACCOUNT, resource)
    matched = any(action in _list(st["Action"]) and any(fnmatch.fnmatchcase(arn, r) for r in _list(st["Resource"]))
                  for st in code_policy()["Statement"])
    assert matched is allowed


def test_trust_policy_trusts_ec2_only():
    assert D.ec2_trust_policy() == {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def test_parliament_finds_only_the_documented_finding():
    """ecr:GetAuthorizationToken returns a registry password: parliament's CREDENTIALS_EXPOSURE
    (MEDIUM), which pulling an image from ECR cannot do without (explained in docs/security.md)."""
    parliament.override_config(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")
    policy = analyze_policy_string(json.dumps(code_policy()), include_community_auditors=True, config=parliament.config)
    above_low = sorted({f.issue for f in map(enhance_finding, policy.findings)
                        if f.severity not in ("MUTE", "INFO", "LOW")})
    assert above_low == ["CREDENTIALS_EXPOSURE"]
    assert "`CREDENTIALS_EXPOSURE`" in (ROOT / "docs" / "security.md").read_text()
