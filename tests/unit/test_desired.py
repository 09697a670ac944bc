"""The documents a rack applies: launch template, instance role policy, security group rules,
bucket policy and lifecycle, and the comparisons that decide whether AWS needs an update."""

from __future__ import annotations

import base64
import copy
import fnmatch
import json

import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack import desired as D

ACCOUNT = "123456789012"
PROFILE_ARN = "arn:aws:iam::%s:instance-profile/convox/convox-prod-us-east-1-instance" % ACCOUNT
TAGS = {"System": "convox", "Rack": "prod", "Type": "rack", "Team": "ops"}


def lt_data(**kw):
    args = dict(image_id="ami-0123456789abcdef0", instance_type="t3.small", profile_arn=PROFILE_ARN,
                security_group_id="sg-instances", cluster="convox-prod", tags=TAGS)
    args.update(kw)
    return D.launch_template_data(**args)


# -- launch template ---------------------------------------------------------------------------------------

def test_launch_template_requires_imdsv2_with_hop_limit_2():
    md = lt_data()["MetadataOptions"]
    assert md["HttpTokens"] == "required"
    assert md["HttpPutResponseHopLimit"] == 2
    assert md["HttpEndpoint"] == "enabled"


def test_launch_template_root_volume_is_encrypted_gp3():
    (root,) = lt_data()["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"
    assert root["Ebs"]["VolumeType"] == "gp3"
    assert root["Ebs"]["Encrypted"] is True
    assert root["Ebs"]["DeleteOnTermination"] is True


def test_launch_template_uses_only_the_instance_group_profile_and_image():
    data = lt_data()
    assert data["SecurityGroupIds"] == ["sg-instances"]
    assert data["IamInstanceProfile"] == {"Arn": PROFILE_ARN}
    assert data["ImageId"] == "ami-0123456789abcdef0"
    assert data["InstanceType"] == "t3.small"
    (spec,) = data["TagSpecifications"]
    assert spec["ResourceType"] == "volume"
    assert {t["Key"]: t["Value"] for t in spec["Tags"]} == TAGS


@pytest.mark.parametrize("cluster", ["convox-prod", "convox-production-eu-west-rack-1"])
def test_user_data_joins_the_named_cluster(cluster):
    script = base64.b64decode(lt_data(cluster=cluster)["UserData"]).decode()
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert "ECS_CLUSTER=%s" % cluster in lines
    assert [x for x in lines if x.startswith("ECS_CLUSTER=")] == ["ECS_CLUSTER=%s" % cluster]
    # the heredoc that writes ecs.config is closed
    assert "cat >> /etc/ecs/ecs.config <<'CONFIG'" in lines and "CONFIG" in lines


def test_launch_template_key_ignores_what_aws_adds_on_read():
    data = lt_data()
    read_back = copy.deepcopy(data)
    read_back["MetadataOptions"].update(HttpProtocolIpv6="disabled", InstanceMetadataTags="disabled",
                                        HttpPutResponseHopLimit="2")
    read_back["BlockDeviceMappings"][0]["Ebs"]["Iops"] = 3000
    read_back["TagSpecifications"][0]["Tags"].reverse()
    assert D.launch_template_key(read_back) == D.launch_template_key(data)


@pytest.mark.parametrize("weaken", [
    lambda d: d["MetadataOptions"].update(HttpTokens="optional"),
    lambda d: d["MetadataOptions"].update(HttpPutResponseHopLimit=1),
    lambda d: d["BlockDeviceMappings"][0]["Ebs"].update(Encrypted=False),
    lambda d: d["BlockDeviceMappings"][0]["Ebs"].update(VolumeType="gp2"),
    lambda d: d.update(SecurityGroupIds=["sg-instances", "sg-open"]),
    lambda d: d.update(InstanceType="t3.medium"),
])
def test_launch_template_key_sees_a_weakened_template(weaken):
    """A template edited by hand (IMDSv1, unencrypted, extra group) is put back."""
    current = lt_data()
    weaken(current)
    assert D.launch_template_key(current) != D.launch_template_key(lt_data())


# -- instance role ---------------------------------------------------------------------------------------

# The actions of AWS's managed policy for ECS container instances (AmazonEC2ContainerServiceforEC2Role).
ECS_CONTAINER_INSTANCE_ACTIONS = {
    "ec2:DescribeTags", "ecs:CreateCluster", "ecs:DeregisterContainerInstance", "ecs:DiscoverPollEndpoint",
    "ecs:Poll", "ecs:RegisterContainerInstance", "ecs:StartTelemetrySession", "ecs:UpdateContainerInstancesState",
    "ecs:SubmitAttachmentStateChanges", "ecs:SubmitContainerStateChange", "ecs:SubmitTaskStateChange",
    "ecs:TagResource", "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage", "logs:CreateLogStream", "logs:PutLogEvents",
}
# Without these an instance cannot join its cluster, pull images or ship logs.
NEEDED = {"ecs:RegisterContainerInstance", "ecs:DiscoverPollEndpoint", "ecs:Poll", "ecs:SubmitTaskStateChange",
          "ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "logs:PutLogEvents"}
# Actions that support no resource-level permission, the only ones allowed on Resource "*".
NO_RESOURCE_LEVEL = {"ecs:DiscoverPollEndpoint", "ecr:GetAuthorizationToken"}


def role_policy(partition="aws", region="us-east-1", rack="prod"):
    return D.instance_role_policy(partition, region, ACCOUNT, "convox-%s" % rack, "/convox/%s" % rack)


def _statements(policy):
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        yield st, actions, resources


def test_instance_role_policy_allows_only_ecs_container_instance_actions():
    policy = role_policy()
    actions = set()
    for st, acts, resources in _statements(policy):
        assert st["Effect"] == "Allow"
        assert "NotAction" not in st and "NotResource" not in st
        for a in acts:
            assert "*" not in a, "wildcard action %s" % a
        if "*" in resources:
            assert set(acts) <= NO_RESOURCE_LEVEL, "Resource * for %s" % acts
        actions.update(acts)
    assert actions <= ECS_CONTAINER_INSTANCE_ACTIONS, actions - ECS_CONTAINER_INSTANCE_ACTIONS
    assert NEEDED <= actions


def test_instance_role_policy_is_scoped_to_its_cluster_and_partition():
    policy = role_policy(partition="aws-us-gov", region="us-gov-west-1")
    for st, acts, resources in _statements(policy):
        assert st["Effect"] == "Allow"
        for r in resources:
            assert r == "*" or r.startswith("arn:aws-us-gov:"), r
        if any(a.startswith("ecs:") for a in acts) and resources != ["*"]:
            assert all("cluster/convox-prod" in r or "container-instance/convox-prod/" in r for r in resources)


def test_instance_role_cannot_write_to_another_racks_log_groups():
    """IAM matches '*' across any characters: the log resource must stop at the rack's own name."""
    resources = [r for st, acts, rs in _statements(role_policy()) if "logs:PutLogEvents" in acts for r in rs]
    arn = "arn:aws:logs:us-east-1:%s:log-group:%s:log-stream:i-0123"
    own = [arn % (ACCOUNT, "/convox/prod"), arn % (ACCOUNT, "/convox/prod/apps/web")]
    others = [arn % (ACCOUNT, "/convox/prod-staging"), arn % (ACCOUNT, "/convox/production/apps/web")]
    for target in own:
        assert any(fnmatch.fnmatchcase(target, r) for r in resources), target
    for target in others:
        assert not any(fnmatch.fnmatchcase(target, r) for r in resources), target


def test_ec2_trust_policy_trusts_only_ec2():
    (st,) = D.ec2_trust_policy()["Statement"]
    assert st == {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}


# -- security groups -------------------------------------------------------------------------------------

def test_router_admits_exactly_http_and_https():
    assert D.permission_keys(D.router_ingress()) == {
        ("tcp", 80, 80, "cidr", "0.0.0.0/0"),
        ("tcp", 443, 443, "cidr", "0.0.0.0/0"),
    }


def test_instances_admit_only_security_groups():
    keys = D.permission_keys(D.instance_ingress("sg-router", "sg-instances"))
    assert {k[3] for k in keys} == {"sg"}, "instance ingress must have no CIDR source"
    assert {k[4] for k in keys} == {"sg-router", "sg-instances"}


def test_permission_keys_round_trip():
    keys = D.permission_keys(D.router_ingress() + D.instance_ingress("sg-router", "sg-instances") + [
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    assert D.permission_keys(D.permissions_from_keys(keys)) == keys
    assert len(keys) == 5


def test_permission_keys_flatten_aws_grouped_rules():
    """describe_security_groups groups sources per port range and adds fields of its own."""
    aws_shape = [
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "Ipv6Ranges": [], "PrefixListIds": [],
         "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "web"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-router", "UserId": ACCOUNT},
                                                  {"GroupId": "sg-instances", "UserId": ACCOUNT}]},
    ]
    wanted = D.permission_keys(D.router_ingress()) | D.permission_keys(D.instance_ingress("sg-router", "sg-instances"))
    assert D.permission_keys(aws_shape) == wanted
    assert D.permission_keys(aws_shape) != D.permission_keys(D.router_ingress())


# -- bucket ------------------------------------------------------------------------------------------------

def test_bucket_policy_denies_everything_without_tls():
    policy = D.tls_only_bucket_policy("aws", "convox-prod-abc")
    (st,) = policy["Statement"]
    assert st["Effect"] == "Deny"
    assert st["Principal"] == "*"
    assert st["Action"] == "s3:*"
    assert sorted(st["Resource"]) == ["arn:aws:s3:::convox-prod-abc", "arn:aws:s3:::convox-prod-abc/*"]
    assert st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_bucket_policy_uses_the_partition():
    (st,) = D.tls_only_bucket_policy("aws-cn", "b")["Statement"]
    assert all(r.startswith("arn:aws-cn:s3:::b") for r in st["Resource"])


def test_public_access_block_sets_all_four_flags():
    assert D.PUBLIC_ACCESS_BLOCK == {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                     "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


def test_policy_equal_reads_aws_shapes():
    policy = D.tls_only_bucket_policy("aws", "b")
    as_returned = json.loads(json.dumps(policy))
    as_returned["Statement"][0]["Resource"].reverse()
    assert D.policy_equal(json.dumps(as_returned), policy)
    # IAM returns actions in its own order, and a one-element list as the element
    doc = role_policy()
    reordered = copy.deepcopy(doc)
    reordered["Statement"][-1]["Action"].reverse()
    reordered["Statement"].reverse()
    assert D.policy_equal(reordered, doc)
    trust = D.ec2_trust_policy()
    listed = copy.deepcopy(trust)
    listed["Statement"][0]["Action"] = ["sts:AssumeRole"]
    assert D.policy_equal(listed, trust)
    changed = copy.deepcopy(policy)
    changed["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"] = "true"
    assert not D.policy_equal(json.dumps(changed), policy)
    assert not D.policy_equal(None, policy)
    assert not D.policy_equal("not json", policy)


def test_lifecycle_expires_logs_and_noncurrent_versions():
    rules = {r["ID"]: r for r in D.lifecycle_rules(14)}
    assert rules["expire-logs"]["Expiration"] == {"Days": 14}
    assert rules["expire-logs"]["Filter"] == {"Prefix": "logs/"}
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert all(r["Status"] == "Enabled" for r in rules.values())


def test_lifecycle_key_is_shape_insensitive():
    """AWS may return the legacy top-level Prefix, an empty Filter, or rules in another order."""
    wanted = D.lifecycle_rules(7)
    legacy = []
    for r in reversed(copy.deepcopy(wanted)):
        prefix = r.pop("Filter")["Prefix"]
        r["Prefix"] = prefix
        legacy.append(r)
    empty_filter = copy.deepcopy(wanted)
    empty_filter[1]["Filter"] = {}
    assert D.lifecycle_key(legacy) == D.lifecycle_key(wanted)
    assert D.lifecycle_key(empty_filter) == D.lifecycle_key(wanted)


def test_lifecycle_key_sees_a_changed_retention_or_missing_rule():
    assert D.lifecycle_key(D.lifecycle_rules(30)) != D.lifecycle_key(D.lifecycle_rules(7))
    assert D.lifecycle_key(D.lifecycle_rules(7)[:1]) != D.lifecycle_key(D.lifecycle_rules(7))
    assert D.lifecycle_key(None) == []


# -- the rack's KMS key (issue 14) -----------------------------------------------------------------------------------
def test_the_key_policy_grants_only_the_services_that_use_the_key():
    """CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs using AWS KMS" (the logs principal
    of the region, scoped by kms:EncryptionContext:aws:logs:arn); Auto Scaling user guide, "Required AWS
    KMS key policy for use with encrypted volumes" (its service-linked role, grants for AWS resources)."""
    policy = D.kms_key_policy("aws-cn", "cn-north-1", "123456789012", "/convox/prod")
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {"AccountAdministers", "CloudWatchLogsOfTheRack", "AutoScalingVolumes",
                           "AutoScalingVolumeGrants"}
    assert by_sid["AccountAdministers"]["Principal"] == {"AWS": "arn:aws-cn:iam::123456789012:root"}
    logs = by_sid["CloudWatchLogsOfTheRack"]
    assert logs["Principal"] == {"Service": "logs.cn-north-1.amazonaws.com"}
    assert logs["Condition"] == {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": [
        "arn:aws-cn:logs:cn-north-1:123456789012:log-group:/convox/prod",
        "arn:aws-cn:logs:cn-north-1:123456789012:log-group:/convox/prod/*"]}}
    assert "kms:CreateGrant" not in logs["Action"] and "kms:*" not in logs["Action"]
    role = "arn:aws-cn:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    assert by_sid["AutoScalingVolumes"]["Principal"] == {"AWS": role}
    assert "kms:CreateGrant" not in by_sid["AutoScalingVolumes"]["Action"]
    grants = by_sid["AutoScalingVolumeGrants"]
    assert grants["Action"] == "kms:CreateGrant"
    assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    # Only the account itself is given every action.
    assert [s["Sid"] for s in policy["Statement"] if s["Action"] == "kms:*"] == ["AccountAdministers"]


def test_another_racks_log_groups_are_outside_the_logs_statement():
    cond = D.kms_key_policy("aws", "us-east-1", "1" * 12, "/convox/prod")["Statement"][1]["Condition"]
    patterns = cond["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    arn = "arn:aws:logs:us-east-1:111111111111:log-group:"
    assert any(fnmatch.fnmatchcase(arn + "/convox/prod/apps/web", p) for p in patterns)
    assert not any(fnmatch.fnmatchcase(arn + "/convox/production", p) for p in patterns)
    assert not any(fnmatch.fnmatchcase(arn + "/convox/other", p) for p in patterns)


def test_buckets_encrypt_with_the_key_and_a_bucket_key():
    arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert D.kms_encryption(arn) == {"Rules": [{"ApplyServerSideEncryptionByDefault": {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": arn}, "BucketKeyEnabled": True}]}
    assert D.kms_alias("prod") == "alias/convox/prod"


def test_volumes_name_the_key_and_a_new_key_is_a_new_template_version():
    arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    args = ("ami-12345678", "t3.small", "arn:profile", "sg-1", "convox-prod", {"Rack": "prod"})
    with_key = D.launch_template_data(*args, kms_key=arn)
    ebs = with_key["BlockDeviceMappings"][0]["Ebs"]
    assert ebs["Encrypted"] is True and ebs["KmsKeyId"] == arn
    assert "KmsKeyId" not in D.launch_template_data(*args)["BlockDeviceMappings"][0]["Ebs"]
    assert D.launch_template_key(with_key) != D.launch_template_key(D.launch_template_data(*args))
    assert D.launch_template_key(with_key) == D.launch_template_key(D.launch_template_data(*args, kms_key=arn))
