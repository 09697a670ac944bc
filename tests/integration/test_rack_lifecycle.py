"""Install, rerun, check mode, diff, update and uninstall of a rack against the local AWS, checked
by reading AWS back with boto3. Check mode, the install and its rerun are real ansible-playbook
runs; the updates and the uninstall options run the module's main() in this process
(conftest.InProcess), as permutations of its options."""

from __future__ import annotations

import json

import pytest

from conftest import live_tagged, put_object

RACK = "lifecycle"


def _tags(items, key="Key", value="Value"):
    return {t[key]: t.get(value, "") for t in items or []}


@pytest.fixture(scope="module")
def installed(runner, local_aws):
    """Check mode first (nothing created), then a real install."""
    args = {"name": RACK, "tags": {"team": "platform"}}
    planned = runner.module(args, check=True, diff=True)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["changed"] is True
    assert live_tagged(local_aws, RACK) == [], "check mode created resources"
    result = runner.module(args)
    assert not result.get("failed"), result.get("msg")
    yield {"planned": planned, "result": result, "args": args}
    runner.module({"name": RACK, "state": "absent", "purge_data": True})


def test_check_mode_plans_every_resource(installed):
    planned = installed["planned"]
    created = {c["resource"] for c in planned["plan"] if c["action"] == "create"}
    assert {"bucket", "log_group", "iam_role", "instance_profile", "vpc", "internet_gateway", "subnet",
            "route_table", "security_group", "launch_template", "ecs_cluster", "autoscaling_group",
            "capacity_provider", "load_balancer", "listener"} <= created
    assert planned["diff"]["after"]["parameters"]["instance_count"] == 3
    assert planned["diff"]["before"]["parameters"] == {}


def test_install_builds_the_rack(installed, local_aws):
    rack = installed["result"]["rack"]
    assert installed["result"]["changed"] is True
    assert rack["status"] == "running"
    assert rack["parameters"]["high_availability"] is True
    ec2 = local_aws.client("ec2")
    vpc = ec2.describe_vpcs(VpcIds=[rack["vpc_id"]])["Vpcs"][0]
    assert vpc["CidrBlock"] == "10.0.0.0/16"
    tags = _tags(vpc["Tags"])
    assert tags["System"] == "convox" and tags["Rack"] == RACK and tags["Type"] == "rack" and tags["team"] == "platform"
    for attr, key in (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames")):
        assert ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute=attr)[key]["Value"] is True
    subnets = ec2.describe_subnets(SubnetIds=rack["public_subnet_ids"])["Subnets"]
    assert len(subnets) == 3 and len({s["AvailabilityZone"] for s in subnets}) == 3
    assert sorted(s["CidrBlock"] for s in subnets) == ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19"]
    assert rack["private_subnet_ids"] == []


def test_instances_reachable_only_through_the_load_balancer(installed, local_aws):
    rack = installed["result"]["rack"]
    ec2 = local_aws.client("ec2")
    groups = {_tags(g["Tags"])["convox:role"]: g for g in ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [rack["vpc_id"]]}, {"Name": "tag:Rack", "Values": [RACK]}]
    )["SecurityGroups"]}
    router, instances = groups["router"], groups["instances"]
    assert sorted((p["FromPort"], p["IpRanges"][0]["CidrIp"]) for p in router["IpPermissions"]) == [
        (80, "0.0.0.0/0"), (443, "0.0.0.0/0")]
    sources = [(p.get("IpRanges"), [g["GroupId"] for g in p.get("UserIdGroupPairs", [])])
               for p in instances["IpPermissions"]]
    assert all(not cidrs for cidrs, groups_ in sources), "instances admit a CIDR: %s" % sources
    assert sorted(g for cidrs, gs in sources for g in gs) == sorted([router["GroupId"], instances["GroupId"]])
    elb = local_aws.client("elbv2")
    lb = elb.describe_load_balancers(Names=["convox-" + RACK])["LoadBalancers"][0]
    assert lb["Scheme"] == "internet-facing" and lb["SecurityGroups"] == [router["GroupId"]]
    listener = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"][0]
    assert listener["Port"] == 80
    assert listener["DefaultActions"][0]["Type"] == "fixed-response"
    assert listener["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
    assert rack["load_balancer"]["dns_name"] == lb["DNSName"]


def test_runtime(installed, local_aws):
    rack = installed["result"]["rack"]
    ec2 = local_aws.client("ec2")
    lt = ec2.describe_launch_template_versions(LaunchTemplateName="convox-" + RACK, Versions=["$Default"])
    data = lt["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    ebs = data["BlockDeviceMappings"][0]["Ebs"]
    assert ebs["Encrypted"] is True and ebs["VolumeType"] == "gp3"
    assert data["InstanceType"] == "t3.small"
    ssm = local_aws.client("ssm").get_parameter(
        Name="/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id")["Parameter"]["Value"]
    assert data["ImageId"] == ssm
    asg = local_aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[rack["autoscaling_group_name"]])["AutoScalingGroups"][0]
    assert asg["DesiredCapacity"] == 3 and len(asg["Instances"]) == 3
    assert set(asg["VPCZoneIdentifier"].split(",")) == set(rack["public_subnet_ids"])
    ecs = local_aws.client("ecs")
    cluster = ecs.describe_clusters(clusters=[rack["cluster_name"]])["clusters"][0]
    assert cluster["capacityProviders"] == ["convox-" + RACK]
    cp = ecs.describe_capacity_providers(capacityProviders=["convox-" + RACK])["capacityProviders"][0]
    assert cp["autoScalingGroupProvider"]["autoScalingGroupArn"] == asg["AutoScalingGroupARN"]
    iam = local_aws.client("iam")
    role = "convox-%s-us-east-1-instance" % RACK
    policy = iam.get_role_policy(RoleName=role, PolicyName="ecs-container-instance")["PolicyDocument"]
    actions = [a for s in policy["Statement"] for a in s["Action"]]
    assert "*" not in actions and not any(a.endswith(":*") for a in actions)
    assert iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ec2.amazonaws.com"}
    logs = local_aws.client("logs").describe_log_groups(logGroupNamePrefix="/convox/" + RACK)["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in logs] == [("/convox/" + RACK, 365)]  # the default: a year


def test_bucket_is_hardened_and_records_parameters(installed, local_aws):
    bucket = installed["result"]["rack"]["bucket"]
    s3 = local_aws.client("s3")
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    # SSE-KMS with the rack's key and a Bucket Key: no log delivery writes into it (the log bucket takes them)
    assert enc["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                         "KMSMasterKeyID": installed["result"]["rack"]["kms_key"]}
    assert enc["BucketKeyEnabled"] is True
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert [st["Sid"] for st in policy["Statement"]] == ["DenyInsecureTransport"]
    stmt = policy["Statement"][0]
    assert stmt["Effect"] == "Deny" and stmt["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules["expire-logs"]["Expiration"]["Days"] == 365  # log_retention's default: a year
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    tags = _tags(s3.get_bucket_tagging(Bucket=bucket)["TagSet"])
    assert tags["convox:status"] == "running" and tags["convox:instance_count"] == "3"
    assert tags["convox:vpc_cidr"] == "10.0.0.0/16" and tags["convox:version"]
    assert tags["convox:log_retention"] == "365"


def test_rerun_changes_nothing_and_writes_nothing(installed, runner, local_aws):
    args = installed["args"]
    planned = runner.module(args, check=True)
    assert planned["changed"] is False and planned["plan"] == []
    before = local_aws.request_count()
    again = runner.module(args)
    calls = local_aws.request_count() - before
    assert again["changed"] is False and again["plan"] == []
    assert again["rack"]["status"] == "running"
    # Only reads: the module counts its calls, and the server saw no more than that.
    assert calls == again["aws_calls"]
    # 35 before the rack's KMS key, whose reading takes 4 (DescribeKey, ListResourceTags,
    # GetKeyRotationStatus, GetKeyPolicy); then 10 more (measured: 36 -> 46 on this rack) for the flow
    # log, the router's attributes and the log bucket: DescribeFlowLogs, DescribeLoadBalancerAttributes,
    # the log bucket's GetBucketTagging, the rack bucket's GetBucketLogging, and the log bucket's six
    # settings (public access block, ownership, encryption, lifecycle, versioning, policy).
    assert again["aws_calls"] <= 49


def test_update_instance_count_changes_just_that(installed, direct, local_aws):
    planned = direct.module({"name": RACK, "instance_count": 4}, check=True, diff=True)
    assert planned["changed"] is True
    assert planned["diff"]["before"]["parameters"]["instance_count"] == 3
    assert planned["diff"]["after"]["parameters"]["instance_count"] == 4
    assert {(c["resource"], c["action"]) for c in planned["plan"]} == {
        ("autoscaling_group", "update"), ("bucket", "update")}
    result = direct.module({"name": RACK, "instance_count": 4})
    assert result["changed"] is True and result["rack"]["parameters"]["instance_count"] == 4
    asg = local_aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["convox-" + RACK])["AutoScalingGroups"][0]
    assert asg["DesiredCapacity"] == 4 and len(asg["Instances"]) == 4
    # Unset options keep the recorded values: the next run without instance_count changes nothing.
    assert direct.module({"name": RACK})["changed"] is False


def test_update_instance_type_rolls_instances(installed, direct, local_aws):
    before = {i["InstanceId"] for i in local_aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["convox-" + RACK])["AutoScalingGroups"][0]["Instances"]}
    result = direct.module({"name": RACK, "instance_type": "t3.medium"})
    assert result["changed"] is True
    assert ("instances", "replace") in {(c["resource"], c["action"]) for c in result["plan"]}
    ec2 = local_aws.client("ec2")
    lt = ec2.describe_launch_templates(LaunchTemplateNames=["convox-" + RACK])["LaunchTemplates"][0]
    assert lt["DefaultVersionNumber"] == 2
    asg = local_aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["convox-" + RACK])["AutoScalingGroups"][0]
    assert asg["LaunchTemplate"]["Version"] == "2"
    now = [i for i in asg["Instances"] if i["LifecycleState"] == "InService"]
    assert len(now) == asg["DesiredCapacity"]
    assert {i["InstanceType"] for i in now} == {"t3.medium"}
    assert not before & {i["InstanceId"] for i in now}, "old instances were not replaced"
    assert direct.module({"name": RACK})["changed"] is False


def test_update_log_retention_and_tags(installed, direct, local_aws):
    result = direct.module({"name": RACK, "log_retention": 30, "tags": {"team": "data", "cost": "42"}})
    assert result["changed"] is True
    groups = local_aws.client("logs").describe_log_groups(logGroupNamePrefix="/convox/" + RACK)["logGroups"]
    assert groups[0]["retentionInDays"] == 30
    vpc = local_aws.client("ec2").describe_vpcs(VpcIds=[result["rack"]["vpc_id"]])["Vpcs"][0]
    tags = _tags(vpc["Tags"])
    assert tags["team"] == "data" and tags["cost"] == "42" and tags["Rack"] == RACK
    assert result["rack"]["tags"] == {"team": "data", "cost": "42"}
    assert direct.module({"name": RACK})["changed"] is False


def test_immutable_parameters_fail_and_change_nothing(installed, direct, local_aws):
    for args, field in (({"vpc_cidr": "10.1.0.0/16"}, "vpc_cidr"),
                        ({"high_availability": False, "instance_count": 1}, "high_availability")):
        before = local_aws.request_count()
        result = direct.module(dict(name=RACK, **args))
        assert result.get("failed") is True
        assert result["msg"].startswith(field + ": cannot change after install"), result["msg"]
        assert result["changed"] is False
        # only reads were made
        assert local_aws.request_count() - before == result["aws_calls"]
    assert direct.module({"name": RACK})["changed"] is False


def test_uninstall_keeps_data_then_purges(direct, local_aws):
    rack = "keepdata"
    result = direct.module({"name": rack, "high_availability": False, "private": True})
    assert not result.get("failed"), result.get("msg")
    assert len(result["rack"]["private_subnet_ids"]) == 2
    nats = local_aws.client("ec2").describe_nat_gateways(
        Filters=[{"Name": "tag:Rack", "Values": [rack]}])["NatGateways"]
    assert len([n for n in nats if n["State"] == "available"]) == 2
    bucket = result["rack"]["bucket"]
    put_object(local_aws, bucket, "logs/app.log")

    planned = direct.module({"name": rack, "state": "absent"}, check=True)
    assert planned["changed"] is True
    assert "vpc " + result["rack"]["vpc_id"] in live_tagged(local_aws, rack)

    # The rack's log bucket is kept with it: the kept bucket still logs into it.
    gone = direct.module({"name": rack, "state": "absent"})
    assert gone["changed"] is True and gone["kept_buckets"] == [bucket, bucket + "-logs"]
    assert live_tagged(local_aws, rack) == ["bucket " + bucket]
    assert local_aws.client("s3").list_object_versions(Bucket=bucket)["Versions"][0]["Key"] == "logs/app.log"

    again = direct.module({"name": rack, "state": "absent"})
    assert again["changed"] is False and again["kept_buckets"] == [bucket, bucket + "-logs"]

    purged = direct.module({"name": rack, "state": "absent", "purge_data": True})
    assert purged["changed"] is True and purged["kept_buckets"] == []
    assert live_tagged(local_aws, rack) == []
