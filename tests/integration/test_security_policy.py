"""docs/policies/operator.json and operator-roles.json, the IAM policies an operator needs to run the
collection (two documents, each within a managed policy's size, read here as one policy: the
operator holds both), against what the collection really does: the whole lifecycle
(security_lifecycle.py) recorded through the proxy.

- Every AWS operation recorded maps to its IAM action(s) (OPERATION_ACTIONS for the few whose
  names differ, the service's own name otherwise); with the actions AWS checks besides the one the
  operation names (IMPLIED, the one hand-written list of actions), they must all be allowed.
- Every action the policy allows (its wildcard patterns expanded against the Service Authorization
  Reference that parliament ships) must be one of those, or one the code calls only where the local
  AWS cannot take it (CODE_ONLY, each entry checked against the code).
- parliament (the IAM policy linter from PyPI) finds nothing above LOW that docs/security.md does
  not explain.
- The instance role a real install attaches is the one docs/policies/instance-role.json documents.
- The permissions boundary (issue 6): every statement that lets the operator create a role or give
  it permissions requires the boundary docs/policies/instance-boundary.json (iam:PermissionsBoundary),
  iam:PassRole goes to EC2 only (iam:PassedToService), the boundary can be neither removed from a
  role nor edited (the only Deny statements), every condition key is one the Service Authorization
  Reference lists for each action of its statement, with an operator of its type; and the lifecycle
  really creates its roles with the boundary and puts it back on a role that lost it.

The matcher is deliberately small: Allow statements (the policy has no NotAction or NotResource,
and Deny only to keep the boundary, which the test asserts), an action pattern matched as IAM does
(case-insensitive, '*' and '?'); resources and conditions are not evaluated, except that every
bucket the run touched must match a Resource of a statement allowing the action (bucket names are
in the recorded paths) and the boundary's conditions above.
"""

from __future__ import annotations

import ast
import fnmatch
import glob
import json
import os
import re
from pathlib import Path

import pytest

import security_lifecycle as lc

ROOT = Path(lc.ROOT)
POLICIES = [ROOT / "docs" / "policies" / "operator.json", ROOT / "docs" / "policies" / "operator-roles.json",
            ROOT / "docs" / "policies" / "operator-security.json"]
# The permissions boundary an administrator creates from instance-boundary.json, as the operator's policy
# names it (any account: '*', as the policy's other ARNs), and what keeps it.
BOUNDARY = "arn:aws:iam::*:policy/convox-rack-instance-boundary"
ROLES = "arn:aws:iam::*:role/convox/*"
BOUNDED_ACTIONS = {"iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary", "iam:AttachRolePolicy"}
DENIED = {ROLES: {"iam:DeleteRolePermissionsBoundary"},
          BOUNDARY: {"iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion",
                     "iam:SetDefaultPolicyVersion"}}
INSTANCE_ROLE = ROOT / "docs" / "policies" / "instance-role.json"
SECURITY_DOC = ROOT / "docs" / "security.md"
MANAGED_POLICY_LIMIT = 6144  # characters, whitespace not counted (IAM quota for a customer managed policy)

# The IAM prefix of each service, where it differs from the signing name the proxy records.
IAM_PREFIX = {"tagging": "tag"}

# Operations whose IAM action is not service:Operation (S3's REST API above all).
OPERATION_ACTIONS = {
    "s3:PutBucketEncryption": ["s3:PutEncryptionConfiguration"],
    "s3:GetBucketEncryption": ["s3:GetEncryptionConfiguration"],
    "s3:DeleteBucketEncryption": ["s3:PutEncryptionConfiguration"],
    "s3:PutBucketLifecycleConfiguration": ["s3:PutLifecycleConfiguration"],
    "s3:GetBucketLifecycleConfiguration": ["s3:GetLifecycleConfiguration"],
    "s3:DeleteBucketLifecycle": ["s3:PutLifecycleConfiguration"],
    "s3:PutPublicAccessBlock": ["s3:PutBucketPublicAccessBlock"],
    "s3:GetPublicAccessBlock": ["s3:GetBucketPublicAccessBlock"],
    "s3:DeletePublicAccessBlock": ["s3:PutBucketPublicAccessBlock"],
    "s3:DeleteBucketTagging": ["s3:PutBucketTagging"],
    "s3:ListObjectVersions": ["s3:ListBucketVersions"],
    "s3:ListObjects": ["s3:ListBucket"],
    "s3:ListObjectsV2": ["s3:ListBucket"],
    "s3:HeadBucket": ["s3:ListBucket"],
    "s3:HeadObject": ["s3:GetObject"],
    "s3:ListBuckets": ["s3:ListAllMyBuckets"],
    # The collection deletes versions (every VersionId of the bucket): both are checked.
    "s3:DeleteObjects": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
    # No permission is needed (AWS answers it even under an explicit deny).
    "sts:GetCallerIdentity": [],
    # Made by whoever assumes the operator's role (rack_assume_role_arn, the inventory's
    # assume_role_arn), not by the role: see "Assuming the operator role" in docs/security.md.
    "sts:AssumeRole": [],
}

# What AWS authorizes besides the action an operation names, when the collection calls it the way
# it does. The only hand-written list of actions here; `sar` says whether the Service Authorization
# Reference lists the action as a dependent action of the trigger, else `source` says where AWS
# documents it.
ASG_DOC = "https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-api-permissions.html"
IMPLIED = [
    {"trigger": "autoscaling:CreateAutoScalingGroup",
     "actions": ["iam:PassRole", "ec2:RunInstances", "ec2:CreateTags", "iam:CreateServiceLinkedRole"],
     "why": "the launch template names an instance profile and tags volumes; AWS checks that the caller may "
            "launch from it; AWSServiceRoleForAutoScaling is created on the account's first group",
     "source": ASG_DOC},
    {"trigger": "autoscaling:UpdateAutoScalingGroup", "actions": ["iam:PassRole", "ec2:RunInstances", "ec2:CreateTags"],
     "why": "a new launch template version is checked as on creation", "source": ASG_DOC},
    {"trigger": "autoscaling:StartInstanceRefresh", "actions": ["iam:PassRole", "ec2:RunInstances", "ec2:CreateTags"],
     "why": "the refresh's DesiredConfiguration names a launch template version, checked as when a group is "
            "updated with it; the refresh launches the new instances",
     "source": "https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-launch-template-permissions.html"},
    {"trigger": "iam:AddRoleToInstanceProfile", "actions": ["iam:PassRole"],
     "why": "putting a role in an instance profile passes it", "sar": True},
    {"trigger": "ec2:CreateVpc", "actions": ["ec2:CreateTags"], "why": "TagSpecifications", "sar": True},
    {"trigger": "ec2:CreateInternetGateway", "actions": ["ec2:CreateTags"], "why": "TagSpecifications", "sar": True},
    {"trigger": "ec2:CreateSubnet", "actions": ["ec2:CreateTags"], "why": "TagSpecifications", "sar": True},
    {"trigger": "ec2:CreateRouteTable", "actions": ["ec2:CreateTags"], "why": "TagSpecifications", "sar": True},
    {"trigger": "ec2:CreateSecurityGroup", "actions": ["ec2:CreateTags"], "why": "TagSpecifications", "sar": True},
    {"trigger": "ec2:AllocateAddress", "actions": ["ec2:CreateTags"], "why": "TagSpecifications", "sar": True},
    {"trigger": "ec2:CreateNatGateway", "actions": ["ec2:CreateTags"], "why": "TagSpecifications", "sar": True},
    {"trigger": "ec2:CreateLaunchTemplate", "actions": ["ec2:CreateTags"], "why": "TagSpecifications", "sar": True},
    {"trigger": "elasticloadbalancing:CreateLoadBalancer", "actions": ["elasticloadbalancing:AddTags"],
     "why": "Tags on creation", "sar": True},
    {"trigger": "elasticloadbalancing:CreateLoadBalancer", "actions": ["iam:CreateServiceLinkedRole"],
     "why": "AWSServiceRoleForElasticLoadBalancing is created on the account's first load balancer",
     "source": "https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-service-linked-roles.html"},
    {"trigger": "elasticloadbalancing:CreateListener", "actions": ["elasticloadbalancing:AddTags"],
     "why": "Tags on creation", "sar": True},
    {"trigger": "ecs:CreateCluster", "actions": ["ecs:TagResource", "iam:CreateServiceLinkedRole"],
     "why": "tags on creation; AWSServiceRoleForECS is created on the account's first cluster",
     "source": "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html"},
    {"trigger": "ecs:CreateCapacityProvider", "actions": ["ecs:TagResource"], "why": "tags on creation",
     "source": "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html"},
    {"trigger": "ecr:CreateRepository", "actions": ["ecr:TagResource"], "why": "tags on creation", "sar": True},
    {"trigger": "ssm:PutParameter", "actions": ["ssm:AddTagsToResource"], "why": "the run lock is created with tags",
     "source": "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ssm-parameter.html"},
    {"trigger": "kms:CreateKey", "actions": ["kms:PutKeyPolicy"], "why": "CreateKey with a Policy", "sar": True},
    {"trigger": "kms:CreateKey", "actions": ["kms:TagResource", "iam:CreateServiceLinkedRole"],
     "why": "CreateKey with Tags needs kms:TagResource; the key policy names AWSServiceRoleForAutoScaling, which the "
            "collection creates first on an account that has none",
     "source": "https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html"},
    {"trigger": "ec2:CreateFlowLogs", "actions": ["ec2:CreateTags"], "why": "TagSpecifications", "sar": True},
    {"trigger": "ec2:CreateFlowLogs", "actions": ["logs:CreateLogDelivery"],
     "why": "a flow log published to Amazon S3 is a log delivery of CloudWatch Logs",
     "source": "https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-iam.html"},
    {"trigger": "ec2:DeleteFlowLogs", "actions": ["logs:DeleteLogDelivery"],
     "why": "deleting a flow log published to Amazon S3 deletes its log delivery",
     "source": "https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-iam.html"},
    {"trigger": "s3:CreateBucket", "actions": ["s3:PutBucketOwnershipControls"],
     "why": "CreateBucket with ObjectOwnership (x-amz-object-ownership)",
     "source": "https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html"},
]
# Dependent actions the Service Authorization Reference lists for an action the collection calls,
# which do not apply to the way it calls it.
NOT_APPLICABLE = {
    **{("servicequotas:GetServiceQuota", dependent): "the run reads EC2's VPC quotas only (parts/quotas.py); "
       "these are other services' limits, read for their own quotas"
       for dependent in ("autoscaling:DescribeAccountLimits", "cloudformation:DescribeAccountLimits",
                         "dynamodb:DescribeLimits", "elasticloadbalancing:DescribeAccountLimits",
                         "iam:GetAccountSummary", "kinesis:DescribeLimits", "rds:DescribeAccountAttributes",
                         "route53:GetAccountLimit")},
    **{("ec2:CreateFlowLogs", dependent): "the flow log keeps the default record format; ECS reads are for the "
       "ECS fields of a custom format (ecs-cluster-name, ecs-task-arn, ...: Amazon VPC user guide, \"Flow log "
       "records\"), which the rack does not ask for"
       for dependent in ("ecs:ListClusters", "ecs:ListServices", "ecs:ListTaskDefinitions", "ecs:ListTasks")},
    ("ec2:CreateLaunchTemplate", "ssm:GetParameters"): "the template names an AMI id, not an SSM parameter",
    ("ec2:CreateLaunchTemplateVersion", "ssm:GetParameters"): "the template names an AMI id, not an SSM parameter",
    ("ec2:DescribeLaunchTemplateVersions", "ssm:GetParameters"): "ResolveAlias is not used",
    ("ec2:RunInstances", "ssm:GetParameters"): "the launch template names an AMI id, not an SSM parameter",
    # GetServiceQuota's dependent actions read each service's own limits; the collection asks only
    # the quotas of VPC and EC2 (parts/quotas.py: L-F678F1CE, L-A4707A72, L-0263D0A3), for which
    # none of them applies.
    **{("servicequotas:GetServiceQuota", dependent): "only VPC and EC2 quotas are read" for dependent in (
        "autoscaling:DescribeAccountLimits", "cloudformation:DescribeAccountLimits", "dynamodb:DescribeLimits",
        "elasticloadbalancing:DescribeAccountLimits", "iam:GetAccountSummary", "kinesis:DescribeLimits",
        "rds:DescribeAccountAttributes", "route53:GetAccountLimit")},
}
# Actions the code calls that the local AWS never makes it call, each with the code that calls it.
CODE_ONLY = [
    {"action": "logs:AssociateKmsKey", "file": "plugins/module_utils/_rack/parts/logs.py",
     "code": '"associate_kms_key"',
     "why": "a log group made before its rack had a key (an earlier release), or with another key, takes the "
            "rack's; tests/integration/test_rack_security.py reaches it"},
    {"action": "ecs:UpdateClusterSettings", "file": "plugins/module_utils/_rack/parts/cluster.py",
     "code": '"update_cluster_settings"',
     "why": "Container Insights turned on or off on an existing cluster; tests/integration/test_rack_security.py "
            "reaches it"},
    {"action": "ec2:DeleteNetworkAclEntry", "file": "plugins/module_utils/_rack/parts/firewall.py",
     "code": '"delete_network_acl_entry"',
     "why": "an inbound rule added by hand to the VPC's default network ACL is removed; AWS's own (100) is replaced"},
    {"action": "kms:CancelKeyDeletion", "file": "plugins/module_utils/_rack/parts/kms.py",
     "code": '"cancel_key_deletion"',
     "why": "an install that finds the rack's key pending deletion (its alias kept by hand) brings it back"},
    {"action": "kms:EnableKey", "file": "plugins/module_utils/_rack/parts/kms.py", "code": '"enable_key"',
     "why": "a key disabled by hand, or brought back from pending deletion, is enabled again"},
    {"action": "kms:PutKeyPolicy", "file": "plugins/module_utils/_rack/parts/kms.py", "code": '"put_key_policy"',
     "why": "a key policy changed by hand is put back"},
    {"action": "kms:UntagResource", "file": "plugins/module_utils/_rack/parts/kms.py", "code": '"untag_resource"',
     "why": "a user tag dropped from the rack is dropped from its key"},

    {"action": "iam:ListAccountAliases", "file": "plugins/module_utils/_rack/fleet.py",
     "code": '"iam", "list_account_aliases"',
     "why": "racks on AWS are listed as <account alias>/<rack>; the local AWS is always local/<rack>"},
    {"action": "iam:ListInstanceProfileTags", "file": "plugins/module_utils/_rack/parts/identity.py",
     "code": '"iam", "list_instance_profile_tags"',
     "why": "read only when GetInstanceProfile answers without the profile's tags (the local AWS includes them)"},
    {"action": "autoscaling:DescribeScalingActivities", "file": "plugins/module_utils/_rack/parts/compute.py",
     "code": '"autoscaling", "describe_scaling_activities"',
     "why": "read only while instances are not yet in service (the local AWS has them in service at once); "
            "tests/unit/test_aws_realities.py"},
    {"action": "ssm:GetParameters", "file": "plugins/module_utils/_rack/holder.py",
     "code": '"ssm", "get_parameters"',
     "why": "the run locks of racks listed while a run works on them (racks.yml, the inventory), which the "
            "lifecycle never lists: tests/integration/test_killed_run_status.py"},
    {"action": "ec2:ReplaceRouteTableAssociation", "file": "plugins/module_utils/_rack/parts/network.py",
     "code": '"ec2", "replace_route_table_association"',
     "why": "moves a subnet off a duplicate route table (a create sent twice), which a lifecycle without "
            "lost answers never has: tests/unit/test_duplicates.py"},
]


# -- helpers -----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory, local_aws):
    return lc.shared_lifecycle(tmp_path_factory, local_aws)


def _list(value):
    return value if isinstance(value, list) else [value]


def load_policy():
    """The operator's policy: the statements of both documents."""
    return {"Version": "2012-10-17",
            "Statement": [st for path in POLICIES for st in json.loads(path.read_text())["Statement"]]}


def _iam_definition():
    import parliament

    return json.loads((Path(parliament.__file__).parent / "iam_definition.json").read_text())


def service_authorization_reference():
    """{prefix: {action name: privilege}} from the Service Authorization Reference parliament ships."""
    return {s["prefix"]: {p["privilege"]: p for p in s["privileges"]} for s in _iam_definition()}


SAR = service_authorization_reference()
# {prefix: {condition key: types}} (String, ARN, ArrayOfString, ...), from the same reference (which lists IAM
# twice: iam:PermissionsBoundary is an ARN in one entry, a String in the other).
CONDITION_TYPES = {}
for _service in _iam_definition():
    for _condition in _service["conditions"]:
        CONDITION_TYPES.setdefault(_service["prefix"], {}).setdefault(_condition["condition"], set()).add(
            _condition["type"])


def sar_has(action):
    prefix, name = action.split(":", 1)
    return name in SAR.get(prefix, {})


def iam_actions(record):
    """The IAM actions of one recorded operation."""
    operation = "%s:%s" % (IAM_PREFIX.get(record["service"], record["service"]), record["action"])
    return OPERATION_ACTIONS.get(operation, [operation])


def action_matches(pattern, action):
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def allowing(policy, action, effect="Allow"):
    return [st for st in policy["Statement"] if st["Effect"] == effect
            and any(action_matches(p, action) for p in _list(st["Action"]))]


def expand(pattern):
    """The actions of the Service Authorization Reference an Action pattern of the policy allows."""
    prefix, name = pattern.split(":", 1)
    return {"%s:%s" % (prefix, a) for a in SAR.get(prefix, {}) if fnmatch.fnmatchcase(a.lower(), name.lower())}


def recorded_operations(lifecycle):
    return sorted({"%s:%s" % (r["service"], r["action"]) for r in lifecycle.records if r["forwarded"]})


def needed_actions(lifecycle):
    """{IAM action: why}: the recorded operations' actions and what they imply."""
    needed = {}
    for record in lifecycle.records:
        if record["forwarded"]:
            for action in iam_actions(record):
                needed.setdefault(action, "recorded %s:%s" % (record["service"], record["action"]))
    for entry in IMPLIED:
        if entry["trigger"] in needed:
            for action in entry["actions"]:
                needed.setdefault(action, "implied by %s: %s" % (entry["trigger"], entry["why"]))
    return needed


# -- the recording is the lifecycle it claims to be ----------------------------------------------------------------

def _results(lifecycle, name):
    return json.loads((Path(lifecycle.work) / "results" / ("%s.json" % name)).read_text())


def _plan(result):
    return {(c["resource"], c["action"]) for c in result.get("plan", [])}


def test_the_recording_covers_the_whole_lifecycle(lifecycle):
    """Each step did what it is there for, so that the recorded actions are the lifecycle's."""
    assert [s.name for s in lifecycle.steps if s.rc != (2 if s.name == "refused" else 0)] == []
    assert not [r for r in lifecycle.records if r.get("fault")], "the recording proxy injects no faults"
    r = _results(lifecycle, "modules")
    assert r["planned"]["changed"] and not _results(lifecycle, "modules")["planned"].get("failed")
    assert r["installed"]["rack"]["status"] == "running" and r["installed"]["rack"]["private_subnet_ids"] == []
    assert r["rerun"]["changed"] is False, r["rerun"].get("plan")
    assert r["updated"]["rack"]["parameters"]["instance_type"] == "t3.medium"
    # The boundary asked at install is recorded and kept by the runs that do not name it.
    for name in ("planned", "installed", "updated", "privatised", "private", "repaired"):
        assert r[name]["rack"]["parameters"]["permissions_boundary"] == lc.BOUNDARY, name
    assert {"resource": "iam_role", "name": "convox-%s-%s-instance" % (lc.PUBLIC, lc.REGION), "action": "create",
            "changes": {"permissions_boundary": lc.BOUNDARY}} in r["planned"]["plan"]
    assert ("instances", "replace") in _plan(r["updated"])
    assert r["privatised"]["rack"]["private_subnet_ids"] and ("nat_gateway", "create") in _plan(r["privatised"])
    assert r["private"]["rack"]["parameters"]["high_availability"] is True
    assert len(r["private"]["rack"]["private_subnet_ids"]) == 3
    repaired = {(c["resource"], c["action"], tuple(sorted(c.get("changes") or {}))) for c in r["repaired"]["plan"]}
    for kind, detail in (("security_group", "ingress_remove"), ("iam_role", "trust_policy"),
                         ("iam_role", "permissions_boundary"), ("route_table", "route"),
                         ("load_balancer", "subnets"), ("load_balancer", "security_groups"),
                         ("listener", "default_action"), ("bucket", "ownership")):
        assert any(k == kind and detail in d for k, _a, d in repaired), (kind, detail, repaired)
    assert {("repository", "update")} <= _plan(r["web_changed"])
    assert r["refused"]["failed"] and r["refused_absent"]["failed"]
    assert {x["name"] for x in r["info_all"]["racks"]} == {lc.PUBLIC, lc.PRIVATE}
    status = lifecycle.step("status").stdout
    assert re.search(r"web +running", status) and re.search(r"api +running", status)
    assert "Switched to local/%s" % lc.PUBLIC in status and "local/%s" % lc.PRIVATE in status
    assert '"convox"' in lifecycle.step("inventory").stdout
    awx = lifecycle.step("uninstall-awx").stdout + lifecycle.step("uninstall-purge").stdout
    assert "kept buckets holding data" in awx
    operations = recorded_operations(lifecycle)
    for op in ("ssm:PutParameter", "ec2:CreateNatGateway", "ec2:ReleaseAddress", "s3:DeleteObjects",
               "ecr:DeleteRepository", "iam:DetachRolePolicy", "ecs:UpdateContainerInstancesState",
               "ec2:TerminateInstances", "autoscaling:StartInstanceRefresh", "autoscaling:DescribeInstanceRefreshes",
               "tagging:GetResources",
               "iam:PutRolePermissionsBoundary"):
        assert op in operations, op


def test_the_lifecycle_creates_its_roles_with_the_boundary(lifecycle):
    """Every CreateRole the lifecycle made carried PermissionsBoundary (the proxy records the names of a
    query request's parameters), so did every PutRolePermissionsBoundary; the roles read back have it."""
    def calls(action):
        return [r for r in lifecycle.records if r["forwarded"] and r["service"] == "iam" and r["action"] == action]
    creates, puts = calls("CreateRole"), calls("PutRolePermissionsBoundary")
    assert len(creates) == 2 and len(puts) == 1, (len(creates), len(puts))
    for record in creates + puts:
        assert "PermissionsBoundary" in record["extra"]["params"], record
    assert calls("DeleteRolePermissionsBoundary") == []
    for rack, boundary in lifecycle.observed["boundaries"].items():
        assert boundary and boundary["PermissionsBoundaryArn"] == lc.BOUNDARY, (rack, boundary)
    assert fnmatch.fnmatchcase(lc.BOUNDARY, BOUNDARY)


# -- the policy against the recording ------------------------------------------------------------------------------

def test_every_recorded_action_is_allowed(lifecycle):
    policy = load_policy()
    needed = needed_actions(lifecycle)
    denied = {a: why for a, why in needed.items() if not allowing(policy, a)}
    assert not denied, "actions the lifecycle needs that docs/policies/operator.json does not allow:\n" + "\n".join(
        "  %s (%s)" % item for item in sorted(denied.items()))


def test_every_allowed_action_is_used(lifecycle):
    policy = load_policy()
    used = set(needed_actions(lifecycle)) | {e["action"] for e in CODE_ONLY}
    unused = {}
    for st in policy["Statement"]:
        for pattern in _list(st["Action"]):
            actions = expand(pattern)
            assert actions, "%s matches no action of the Service Authorization Reference" % pattern
            if st["Effect"] == "Deny":
                continue  # what the boundary needs kept (test_the_boundary_cannot_be_removed_or_edited)
            for action in actions - used:
                unused[action] = pattern
    assert not unused, "allowed but never used:\n" + "\n".join("  %s (by %s)" % i for i in sorted(unused.items()))


def test_nothing_needed_is_denied(lifecycle):
    policy = load_policy()
    needed = set(needed_actions(lifecycle)) | {e["action"] for e in CODE_ONLY}
    needed |= {a for candidates in _code_operations().values() for op in candidates
               for a in OPERATION_ACTIONS.get(op, [op])}
    assert not {a for a in needed if allowing(policy, a, effect="Deny")}


def test_buckets_touched_are_within_the_policys_resources(lifecycle):
    """The recorded S3 paths name the buckets: each must match a Resource of a statement allowing the action."""
    policy = load_policy()
    outside = set()
    for record in lifecycle.records:
        if record["forwarded"] and record["service"] == "s3" and record["path"].strip("/"):
            bucket = record["path"].strip("/").split("/")[0]
            for action in iam_actions(record):
                arns = {"arn:aws:s3:::%s" % bucket, "arn:aws:s3:::%s/*" % bucket}
                if not any(fnmatch.fnmatchcase(arn, r) for st in allowing(policy, action)
                           for r in _list(st["Resource"]) for arn in arns):
                    outside.add((action, bucket))
    assert not outside, sorted(outside)


def test_every_action_named_exists_in_the_service_authorization_reference(lifecycle):
    named = set(needed_actions(lifecycle)) | {e["action"] for e in CODE_ONLY}
    named |= {a for e in IMPLIED for a in e["actions"] + [e["trigger"]]}
    assert sorted(a for a in named if not sar_has(a)) == []


def test_implied_actions_follow_the_service_authorization_reference(lifecycle):
    """Each implied action is a dependent action in the reference, or comes with the AWS page saying so;
    each dependent action the reference lists for a recorded action is implied or does not apply."""
    for entry in IMPLIED:
        prefix, name = entry["trigger"].split(":")
        dependents = {d for rt in SAR[prefix][name]["resource_types"] for d in rt["dependent_actions"]}
        for action in entry["actions"]:
            assert (entry.get("sar") and action in dependents) or entry.get("source", "").startswith("https://"), (
                entry["trigger"], action)
    needed = needed_actions(lifecycle)
    missing = []
    for action in needed:
        prefix, name = action.split(":")
        for rt in SAR[prefix][name]["resource_types"]:
            for dependent in rt["dependent_actions"]:
                if dependent not in needed and (action, dependent) not in NOT_APPLICABLE:
                    missing.append((action, dependent))
    assert not missing, "dependent actions neither implied nor explained: %s" % sorted(set(missing))


def test_code_only_actions_are_still_in_the_code():
    for entry in CODE_ONLY:
        assert entry["code"] in (ROOT / entry["file"]).read_text(), entry


def _code_operations():
    """Every 'snake_case' string of the plugins that is an operation of a service the collection uses,
    as {literal: {service:Operation, ...}} (a literal such as tag_resource belongs to several)."""
    import botocore.session
    from botocore import xform_name

    session = botocore.session.get_session()
    services = {"ec2": "ec2", "s3": "s3", "iam": "iam", "sts": "sts", "ssm": "ssm", "ecs": "ecs", "ecr": "ecr",
                "logs": "logs", "elbv2": "elasticloadbalancing", "autoscaling": "autoscaling",
                "resourcegroupstaggingapi": "tag"}
    operations = {}
    for service, prefix in services.items():
        for op in session.get_service_model(service).operation_names:
            operations.setdefault(xform_name(op), set()).add("%s:%s" % (prefix, op))
    found = {}
    for path in glob.glob(str(ROOT / "plugins" / "**" / "*.py"), recursive=True):
        for node in ast.walk(ast.parse(Path(path).read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in operations:
                found[node.value] = operations[node.value]
    return found


def test_every_operation_the_code_names_is_allowed():
    """Paths the lifecycle cannot reach still have their permission: every AWS operation named in the
    plugins maps to an action the policy allows (for a name several services share, one of them)."""
    policy = load_policy()
    missing = []
    for literal, candidates in sorted(_code_operations().items()):
        if any(OPERATION_ACTIONS.get(op) == [] for op in candidates):
            continue  # needs no permission of the operator's (sts)
        actions = [a for op in candidates for a in OPERATION_ACTIONS.get(op, [op])]
        if not any(allowing(policy, a) for a in actions):
            missing.append((literal, sorted(candidates)))
    assert not missing, missing


# -- the document itself ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", POLICIES, ids=[p.name for p in POLICIES])
def test_the_policy_is_plain_and_fits_a_managed_policy(path):
    text = path.read_text()
    policy = json.loads(text)
    assert policy["Version"] == "2012-10-17"
    assert len("".join(text.split())) <= MANAGED_POLICY_LIMIT
    for st in policy["Statement"]:
        assert set(st) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, st
        if st["Effect"] == "Deny":
            # Only to keep the boundary: exactly those actions on those resources, unconditionally.
            assert "Condition" not in st and len(_list(st["Resource"])) == 1, st
            assert set(_list(st["Action"])) == DENIED[_list(st["Resource"])[0]], st
            continue
        assert st["Effect"] == "Allow", st
        for pattern in _list(st["Action"]):
            assert pattern != "*" and not pattern.endswith(":*"), pattern
        for condition in st.get("Condition", {}).values():
            for key, value in condition.items():
                if key.startswith("aws:RequestTag/") or key.startswith("aws:ResourceTag/"):
                    assert value == "convox", (key, value)


def _conditions(st, key):
    """{operator: value} of the statement's conditions on `key`."""
    return {op: values[key] for op, values in st.get("Condition", {}).items() if key in values}


def test_roles_are_created_and_given_permissions_only_with_the_boundary():
    """Each statement allowing an action that creates a role or changes its permissions (or its boundary)
    requires the boundary, as AWS's delegation pattern does; nothing else of the operator's does."""
    policy = load_policy()
    for st in policy["Statement"]:
        actions = set().union(*(expand(p) for p in _list(st["Action"])))
        if st["Effect"] != "Allow" or not actions & BOUNDED_ACTIONS:
            continue
        assert actions <= BOUNDED_ACTIONS, st
        assert _conditions(st, "iam:PermissionsBoundary") == {"ArnLike": BOUNDARY}, st
        assert _list(st["Resource"]) == [ROLES], st
        if "iam:CreateRole" in actions:
            assert _conditions(st, "aws:RequestTag/System") == {"StringEquals": "convox"}, st
    for action in BOUNDED_ACTIONS - {"iam:AttachRolePolicy"}:
        assert allowing(policy, action), action
    assert not allowing(policy, "iam:AttachRolePolicy"), "no managed policy is attached to a rack's role"
    assert not allowing(policy, "iam:DeleteRolePermissionsBoundary")
    assert not allowing(policy, "iam:CreatePolicy"), "the boundary policy is the administrator's to create"


def test_the_boundary_cannot_be_removed_or_edited():
    policy = load_policy()
    for resource, actions in DENIED.items():
        for action in actions:
            assert any(resource in _list(st["Resource"]) for st in allowing(policy, action, effect="Deny")), action


def test_roles_are_passed_to_ec2_only():
    policy = load_policy()
    statements = allowing(policy, "iam:PassRole")
    assert statements
    for st in statements:
        assert _conditions(st, "iam:PassedToService") == {"StringEquals": "ec2.amazonaws.com"}, st
        assert _list(st["Resource"]) == [ROLES], st


# {prefix: {resource type: condition keys}}: the reference's "Resource types" table, whose keys apply to
# every action on a resource of that type (KMS lists aws:ResourceTag there only, for its keys: AWS KMS
# developer guide, "ABAC for AWS KMS").
RESOURCE_CONDITION_KEYS = {}
for _service in _iam_definition():
    for _resource in _service.get("resources", []):
        RESOURCE_CONDITION_KEYS.setdefault(_service["prefix"], {})[_resource["resource"]] = set(
            _resource["condition_keys"])


def _resource_keys(prefix, name):
    return {c for rt in SAR[prefix][name]["resource_types"]
            for c in RESOURCE_CONDITION_KEYS.get(prefix, {}).get(rt["resource_type"].rstrip("*"), ())}


def _condition_key_types(action, key):
    return CONDITION_TYPES.get(action.split(":")[0], {}).get(key, set())


def test_condition_keys_are_the_actions_own():
    """Every condition key of a statement is one the Service Authorization Reference lists for each action
    the statement allows (a key an action does not have is absent from its request: a condition on it
    would deny the action, or with IfExists allow it unchecked), and its operator fits the key's type."""
    wrong = []
    for st in load_policy()["Statement"]:
        actions = set().union(*(expand(p) for p in _list(st["Action"])))
        for op, values in st.get("Condition", {}).items():
            base = op.split(":")[-1].replace("IfExists", "")
            for key in values:
                generic = key.split("/")[0] + "/${TagKey}" if "/" in key else key
                for action in sorted(actions):
                    prefix, name = action.split(":")
                    keys = {c for rt in SAR[prefix][name]["resource_types"] for c in rt["condition_keys"]}
                    keys |= _resource_keys(prefix, name)
                    kinds = _condition_key_types(action, generic)
                    if generic not in keys or not kinds:
                        wrong.append((action, key, "not a condition key of the action"))
                    elif base != "Null" and not any(base.startswith("String") and "String" in kind
                                                    or base.startswith("Arn") and "ARN" in kind.upper()
                                                    for kind in kinds):
                        wrong.append((action, key, "%s on a key of type %s" % (op, sorted(kinds))))
    assert not wrong, wrong


def _parliament_findings(text):
    import parliament
    from parliament import analyze_policy_string, enhance_finding

    parliament.override_config(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")
    policy = analyze_policy_string(text, include_community_auditors=True, config=parliament.config)
    return [enhance_finding(f) for f in policy.findings]


def _accepted_findings():
    """The parliament findings docs/security.md explains: `ISSUE` in the first column of its table."""
    section = SECURITY_DOC.read_text().split("## Parliament", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `([A-Z_]+)` \|.*$", section, re.M)}


def test_parliament_finds_nothing_unexplained():
    accepted = _accepted_findings()
    unexplained, seen = [], set()
    for finding in _parliament_findings(json.dumps(load_policy())):
        if finding.severity in ("MUTE", "INFO", "LOW"):
            continue
        seen.add(finding.issue)
        row = accepted.get(finding.issue)
        if row is None:
            unexplained.append((finding.severity, finding.issue, finding.detail))
            continue
        # A resource mismatch is explained action by action.
        for item in finding.detail if finding.issue == "RESOURCE_MISMATCH" else []:
            if item["action"] not in row:
                unexplained.append((finding.severity, finding.issue, item))
    assert not unexplained, unexplained
    assert not set(accepted) - seen - {"CREDENTIALS_EXPOSURE"}, "explained findings parliament no longer reports"


# -- the instance role of a real install ----------------------------------------------------------------------------

def documented_instance_role(partition, region, account, rack):
    text = INSTANCE_ROLE.read_text()
    for name, value in (("Partition", partition), ("Region", region), ("Account", account), ("Rack", rack)):
        text = text.replace("${%s}" % name, value)
    return json.loads(text)


def test_installed_instance_role_is_the_documented_least_set(lifecycle):
    role = lifecycle.observed["instance_role"]
    assert role["policy_names"] == ["ecs-container-instance"]
    assert role["attached"] == []
    assert role["profile_roles"] == ["convox-%s-%s-instance" % (lc.PUBLIC, lc.REGION)]
    assert role["trust"] == {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    assert role["policy"] == documented_instance_role("aws", lc.REGION, lc.ACCOUNT, lc.PUBLIC)


if os.environ.get("SECURITY_POLICY_REPORT"):  # pragma: no cover - by hand: what the recording maps to
    def test_print_report(lifecycle):
        needed = needed_actions(lifecycle)
        print("\n%d operations recorded, %d IAM actions needed" % (len(recorded_operations(lifecycle)), len(needed)))
        for action, why in sorted(needed.items()):
            print("  %-50s %s" % (action, why))
