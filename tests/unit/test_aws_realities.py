"""What real AWS does that the local AWS (moto) does not show, and how each part copes (issue 12).

botocore's Stubber stands for AWS here, answering as AWS's documentation says it does (cited at
each test); the local AWS answers every one of these calls at once and consistently, so none of
these behaviours can show there (FIELD-NOTES section 2). Each test failed on the code before
issue 12's fixes (the fix it covers is named in its docstring)."""

from __future__ import annotations

import datetime
import types

import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack import desired as D
from ansible_collections.convox.rack.plugins.module_utils._rack import install
from ansible_collections.convox.rack.plugins.module_utils._rack.context import Run
from ansible_collections.convox.rack.plugins.module_utils._rack.errors import RackError
from ansible_collections.convox.rack.plugins.module_utils._rack.naming import RackNames, system_tags
from ansible_collections.convox.rack.plugins.module_utils._rack.params import DEFAULTS, effective_parameters
from ansible_collections.convox.rack.plugins.module_utils._rack.parts import (
    cluster, compute, entry, kms, logs, nat, network, quotas, storage)
from ansible_collections.convox.rack.plugins.module_utils._rack.plan import Plan
from ansible_collections.convox.rack.plugins.module_utils._rack.state import RackState

REGION = "us-east-1"
ACCOUNT = "123456789012"
NAMES = RackNames("prod", REGION, ACCOUNT)
IDENTITY = types.SimpleNamespace(account=ACCOUNT, partition="aws")
ASG_ARN = "arn:aws:autoscaling:us-east-1:%s:autoScalingGroup:1:autoScalingGroupName/convox-prod" % ACCOUNT
PROFILE_ARN = "arn:aws:iam::%s:instance-profile/convox/%s" % (ACCOUNT, NAMES.instance_role)


def make_run(stubbed, clock, state=None, check_mode=False, **wanted):
    stubbed.aws.deadline = clock.deadline(600)
    params = effective_parameters(dict(wanted, high_availability=wanted.get("high_availability", False)), {})
    return Run(stubbed.aws, REGION, IDENTITY, NAMES, Plan(check_mode), state or RackState(NAMES), params,
               system_tags("prod"))


def created_group(name="convox-prod"):
    return {"AutoScalingGroups": [{
        "AutoScalingGroupName": name, "AutoScalingGroupARN": ASG_ARN, "MinSize": 1, "MaxSize": 1,
        "DesiredCapacity": 1, "DefaultCooldown": 300, "AvailabilityZones": ["us-east-1a"],
        "HealthCheckType": "EC2", "CreatedTime": datetime.datetime(2026, 1, 1)}]}


# -- 1. an instance profile that EC2 cannot see yet ---------------------------------------------------------------
@pytest.mark.parametrize("message", [
    # AWS's texts (Auto Scaling and EC2 API references; terraform-provider-aws retries on them)
    "You must use a valid fully-formed launch template. Value (%s) for parameter iamInstanceProfile.arn is invalid."
    " Invalid IAM Instance Profile ARN" % PROFILE_ARN,
    "You must use a valid fully-formed launch template. Value (convox-prod) for parameter iamInstanceProfile.name"
    " is invalid. Invalid IAM Instance Profile name",
])
def test_the_group_is_created_once_iam_reaches_auto_scaling(stubbed, clock, message):
    """Fault 1: the retry matched "IamInstanceProfile" case-sensitively, which AWS never writes."""
    run = make_run(stubbed, clock, instance_count=1)
    stubbed.error("autoscaling", "create_auto_scaling_group", "ValidationError", message=message)
    stubbed.error("autoscaling", "create_auto_scaling_group", "ValidationError", message=message)
    stubbed.ok("autoscaling", "create_auto_scaling_group", {})
    stubbed.ok("autoscaling", "describe_auto_scaling_groups", created_group())
    assert compute.ensure_group(run, "lt-1", 1, ["subnet-1", "subnet-2"]) == ASG_ARN
    stubbed.assert_all_used()
    assert clock.sleeps, "it waited between the attempts"


def test_another_validation_error_is_not_retried(stubbed, clock):
    run = make_run(stubbed, clock, instance_count=1)
    stubbed.error("autoscaling", "create_auto_scaling_group", "ValidationError", message="Max bound, 0, must be >= 1")
    with pytest.raises(RackError, match="Max bound"):
        compute.ensure_group(run, "lt-1", 1, ["subnet-1"])
    assert clock.sleeps == []


# -- 2. ARM instance types and their image -------------------------------------------------------------------------
def arch(types_and_archs):
    return {"InstanceTypes": [{"InstanceType": t, "ProcessorInfo": {"SupportedArchitectures": [a]}}
                              for t, a in types_and_archs]}


def test_a_graviton_type_gets_the_arm64_image(stubbed, clock):
    """Fault 2: every type got the x86_64 image (AWS: "Retrieving Amazon ECS-optimized Linux AMI metadata")."""
    run = make_run(stubbed, clock, instance_type="m6g.large")
    stubbed.ok("ec2", "describe_instance_types", arch([("m6g.large", "arm64")]), {"InstanceTypes": ["m6g.large"]})
    stubbed.ok("ssm", "get_parameter", {"Parameter": {"Value": "ami-0arm"}},
               {"Name": "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"})
    assert compute.image_id(run) == "ami-0arm"
    stubbed.assert_all_used()


def test_moving_from_x86_to_graviton_takes_a_new_image_and_staying_keeps_it(stubbed, clock):
    state = RackState(NAMES)
    state.launch_template = {"data": {"ImageId": "ami-0x86", "InstanceType": "t3.small"}}
    run = make_run(stubbed, clock, state, instance_type="t4g.small")
    stubbed.ok("ec2", "describe_instance_types", arch([("t3.small", "x86_64"), ("t4g.small", "arm64")]))
    stubbed.ok("ec2", "describe_instance_types", arch([("t4g.small", "arm64")]))
    stubbed.ok("ssm", "get_parameter", {"Parameter": {"Value": "ami-0arm"}},
               {"Name": D.ECS_AMI_PARAMETERS["arm64"]})
    assert compute.image_id(run) == "ami-0arm"
    run = make_run(stubbed, clock, state, instance_type="t3.large")
    stubbed.ok("ec2", "describe_instance_types", arch([("t3.large", "x86_64"), ("t3.small", "x86_64")]))
    assert compute.image_id(run) == "ami-0x86", "same architecture: the rack's image stays"
    run = make_run(stubbed, clock, state, instance_type="t3.small")
    assert compute.image_id(run) == "ami-0x86"
    stubbed.assert_all_used()


# -- 3. AmazonECSManaged ---------------------------------------------------------------------------------------------
def test_the_tag_ecs_adds_to_the_group_is_neither_removed_nor_a_change(stubbed, clock):
    """Fault 3: ECS tags the group AmazonECSManaged when its capacity provider takes it (AWS: "Amazon
    ECS capacity providers for EC2 workloads"); each rerun removed it and reported a change."""
    state = RackState(NAMES)
    tags = dict(system_tags("prod"), Name="convox-prod", AmazonECSManaged="")
    state.asg = dict(created_group()["AutoScalingGroups"][0], LaunchTemplate={"LaunchTemplateId": "lt-1", "Version": "1"},
                     VPCZoneIdentifier="subnet-1,subnet-2",
                     Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in tags.items()])
    run = make_run(stubbed, clock, state, instance_count=1)
    assert compute.ensure_group(run, "lt-1", 1, ["subnet-1", "subnet-2"]) == ASG_ARN
    assert run.plan.changes == [] and stubbed.log == []


def test_a_new_group_carries_the_tag_from_its_creation(stubbed, clock):
    run = make_run(stubbed, clock, instance_count=1)
    stubbed.ok("autoscaling", "create_auto_scaling_group", {})
    stubbed.ok("autoscaling", "describe_auto_scaling_groups", created_group())
    compute.ensure_group(run, "lt-1", 1, ["subnet-1"])
    sent = [p for op, p in stubbed.log if op == "autoscaling:create_auto_scaling_group"][0]
    assert {"Key": "AmazonECSManaged", "Value": "true", "PropagateAtLaunch": True, "ResourceId": "convox-prod",
            "ResourceType": "auto-scaling-group"} in sent["Tags"]


# -- 4. NAT gateways' client tokens --------------------------------------------------------------------------------------
def test_each_run_asks_for_a_nat_gateway_with_a_token_of_its_own(stubbed, clock):
    """Fault 4: the token was the same every run, so a gateway that had failed was given back by
    EC2 for the same token (EC2 API reference, "Ensuring idempotency")."""
    tokens = []
    for _run in range(2):
        state = RackState(NAMES)
        state.addresses = [{"AllocationId": "eipalloc-0", "Tags": [{"Key": "convox:index", "Value": "0"}]
                            + [{"Key": k, "Value": v} for k, v in system_tags("prod").items()]}]
        run = make_run(stubbed, clock, state, private=True)
        stubbed.ok("ec2", "create_tags", {})
        stubbed.ok("ec2", "create_nat_gateway", {"NatGateway": {"NatGatewayId": "nat-0"}})
        stubbed.ok("ec2", "describe_nat_gateways", {"NatGateways": [{"NatGatewayId": "nat-0", "State": "available"}]})
        nats, waiting = nat.ensure(run, ["subnet-p0"])
        nat.available(run, waiting)
        assert nats == ["nat-0"] and waiting == ["nat-0"]
        tokens.append([p for op, p in stubbed.log if op == "ec2:create_nat_gateway"][-1]["ClientToken"])
    assert tokens[0] != tokens[1] and all(len(t) <= 64 for t in tokens)


# -- 5. a launch that fails --------------------------------------------------------------------------------------------
def test_a_failed_launch_fails_the_run_at_once_with_aws_s_message(stubbed, clock):
    """Fault 5: the run waited until wait_timeout ("timed out after 900 s") although AWS had said why
    in a scaling activity (Auto Scaling user guide, "EC2 instance launch failures")."""
    run = make_run(stubbed, clock)
    run.out.update(autoscaling_group_name="convox-prod", load_balancer={"arn": "arn:lb", "dns_name": "x"})
    group = created_group()
    group["AutoScalingGroups"][0]["Instances"] = []
    old = run.started - datetime.timedelta(days=2)
    message = ("The architecture 'arm64' of the specified instance type does not match the architecture 'x86_64'"
               " of the specified AMI. Launching EC2 instance failed.")
    stubbed.ok("autoscaling", "describe_auto_scaling_groups", group)
    stubbed.ok("autoscaling", "describe_scaling_activities", {"Activities": [
        {"ActivityId": "a-old", "AutoScalingGroupName": "convox-prod", "Cause": "c", "StartTime": old,
         "StatusCode": "Failed", "StatusMessage": "an old failure"}]})
    stubbed.ok("autoscaling", "describe_auto_scaling_groups", group)
    stubbed.ok("autoscaling", "describe_scaling_activities", {"Activities": [
        {"ActivityId": "a-new", "AutoScalingGroupName": "convox-prod", "Cause": "c", "StartTime": run.started,
         "StatusCode": "Failed", "StatusMessage": message}]})
    with pytest.raises(RackError) as e:
        install.wait_usable(run)
    assert message in e.value.msg and e.value.details["error_code"] == "LaunchFailed"
    assert sum(clock.sleeps) < 10, "failed at once, not at wait_timeout"
    stubbed.assert_all_used()


# -- 6, 7. creates that not every reader sees yet, and repeated creates ----------------------------------------------------
def bucket_spec():
    return storage.BucketSpec(NAMES.bucket, "eu-west-1", system_tags("prod"), D.lifecycle_rules(7), "", {"Statement": []}, "")


def test_a_new_bucket_is_configured_once_s3_sees_it_and_a_repeated_create_is_ours(stubbed, clock, retry_sleeps):
    """Faults 6 and 7: NoSuchBucket / OperationAborted right after CreateBucket, and
    BucketAlreadyOwnedByYou for a repeated CreateBucket outside us-east-1 (S3 API reference), failed
    the install."""
    run = make_run(stubbed, clock)
    stubbed.error("s3", "create_bucket", "BucketAlreadyOwnedByYou", status=409)
    stubbed.error("s3", "put_bucket_tagging", "NoSuchBucket", status=404)
    stubbed.error("s3", "put_bucket_tagging", "OperationAborted", status=409)
    stubbed.ok("s3", "put_bucket_tagging", {})
    for op in ("put_public_access_block", "put_bucket_encryption", "put_bucket_versioning",
               "put_bucket_lifecycle_configuration", "put_bucket_policy"):
        stubbed.ok("s3", op, {})
    storage.create(run.aws, bucket_spec())
    stubbed.assert_all_used()
    assert len(retry_sleeps) == 2


@pytest.mark.parametrize("code", ["InvalidVpcID.NotFound"])
def test_a_new_vpc_is_configured_once_ec2_sees_it(stubbed, clock, retry_sleeps, code):
    run = make_run(stubbed, clock)
    stubbed.ok("ec2", "create_vpc", {"Vpc": {"VpcId": "vpc-1"}})
    stubbed.error("ec2", "modify_vpc_attribute", code)
    stubbed.ok("ec2", "modify_vpc_attribute", {})
    stubbed.ok("ec2", "modify_vpc_attribute", {})
    assert network.ensure_vpc(run) == "vpc-1"
    stubbed.assert_all_used()


def test_a_new_table_and_subnet_are_associated_once_ec2_sees_them(stubbed, clock, retry_sleeps):
    run = make_run(stubbed, clock)
    stubbed.ok("ec2", "create_route_table", {"RouteTable": {"RouteTableId": "rtb-1"}})
    stubbed.error("ec2", "create_route", "InvalidRouteTableID.NotFound")
    stubbed.ok("ec2", "create_route", {"Return": True})
    stubbed.error("ec2", "associate_route_table", "InvalidSubnetID.NotFound")
    stubbed.ok("ec2", "associate_route_table", {"AssociationId": "rtbassoc-1"})
    network.ensure_route_table(run, "vpc-1", "public", None, {"GatewayId": "igw-1"}, ["subnet-1"])
    stubbed.assert_all_used()


def test_the_capacity_provider_waits_for_ecs_s_role_and_takes_a_repeated_create_as_its_own(stubbed, clock):
    """Fault 6/7: "Unable to assume the service linked role" on a fresh account's first capacity
    provider (ECS developer guide, "Using service-linked roles"), and ClientException "already exists"
    for a repeated create, failed the install."""
    run = make_run(stubbed, clock)
    stubbed.error("ecs", "create_capacity_provider", "InvalidParameterException",
                  message="Unable to assume the service linked role. Please verify that the ECS service linked role"
                          " exists.")
    stubbed.error("ecs", "create_capacity_provider", "ClientException",
                  message="The specified capacity provider already exists. To change the configuration of an existing"
                          " capacity provider, update the capacity provider.")
    stubbed.ok("ecs", "put_cluster_capacity_providers", {})
    cluster.ensure_capacity_provider(run, ASG_ARN)
    stubbed.assert_all_used()
    assert [c["resource"] for c in run.plan.changes] == ["capacity_provider", "ecs_cluster"]


def test_a_cluster_still_updating_after_its_provider_left_is_deleted_when_it_can(stubbed, clock):
    """Fault 7: DeleteCluster right after PutClusterCapacityProviders can answer UpdateInProgressException."""
    state = RackState(NAMES)
    state.cluster = {"clusterName": "convox-prod", "clusterArn": "arn:c"}
    run = make_run(stubbed, clock, state)
    stubbed.error("ecs", "delete_cluster", "UpdateInProgressException")
    stubbed.ok("ecs", "delete_cluster", {})
    cluster.remove(run)
    stubbed.assert_all_used()


def test_purge_empties_again_what_arrived_after_the_emptying(stubbed_http_s3, clock):
    """Fault 7: server access logs arrive late ("best effort", S3 user guide): DeleteBucket answered
    BucketNotEmpty after the emptying and the uninstall failed."""
    stubbed = stubbed_http_s3
    run = make_run(stubbed, clock)
    versions = [{"Key": "logs/x", "VersionId": "v1"}]
    stubbed.ok("s3", "list_object_versions", {"Versions": versions}, {"Bucket": NAMES.bucket, "MaxKeys": 1})
    for _round in range(2):
        stubbed.error("s3", "get_bucket_policy", "NoSuchBucketPolicy", status=404)
        stubbed.ok("s3", "list_object_versions", {"Versions": versions}, {"Bucket": NAMES.bucket, "MaxKeys": 1000})
        stubbed.ok("s3", "delete_objects", {})
        stubbed.ok("s3", "list_object_versions", {}, {"Bucket": NAMES.bucket, "MaxKeys": 1000})
        if _round == 0:
            stubbed.error("s3", "delete_bucket", "BucketNotEmpty", status=409)
    stubbed.ok("s3", "delete_bucket", {})
    kept = []
    storage.remove(run.aws, run.plan, NAMES.bucket, True, kept)
    stubbed.assert_all_used()
    assert kept == []


# -- 10. quotas ---------------------------------------------------------------------------------------------------------
def test_a_rack_that_does_not_fit_the_quotas_is_refused_before_any_write(stubbed, clock):
    """Fault 10: the fifth VPC of a region was refused mid-install (VpcLimitExceeded), after the
    bucket, log group and role existed (Amazon VPC quotas: 5 VPCs, 5 gateways, 5 addresses)."""
    run = make_run(stubbed, clock, private=True)
    stubbed.error("service-quotas", "get_service_quota", "NoSuchResourceException")   # addresses: not in SQ
    # every attribute, the one asked for not first: an answer that ignores AttributeNames (the local AWS's, as
    # moto's; EC2 API reference, DescribeAccountAttributes) must not make another attribute the quota
    stubbed.ok("ec2", "describe_account_attributes", {"AccountAttributes": [
        {"AttributeName": "vpc-max-security-groups-per-interface", "AttributeValues": [{"AttributeValue": "5"}]},
        {"AttributeName": "vpc-max-elastic-ips", "AttributeValues": [{"AttributeValue": "6"}]}]})
    stubbed.ok("ec2", "describe_addresses", {"Addresses": [{"AllocationId": "eipalloc-%d" % i} for i in range(5)]})
    stubbed.ok("service-quotas", "get_service_quota", {"Quota": {"Value": 5.0}})
    stubbed.ok("ec2", "describe_internet_gateways", {"InternetGateways": []})
    stubbed.ok("service-quotas", "get_service_quota", {"Quota": {"Value": 5.0}})
    stubbed.ok("ec2", "describe_vpcs", {"Vpcs": [{"VpcId": "vpc-%d" % i} for i in range(5)]})
    with pytest.raises(RackError) as e:
        quotas.check(run)
    assert e.value.msg == (
        "rack prod does not fit the quotas of region us-east-1 (elastic IPs: 5 in use of 6, the rack needs 2 more;"
        " VPCs: 5 in use of 5, the rack needs 1 more); delete unused ones or ask AWS for more (Service Quotas"
        " console); nothing was changed")
    assert run.plan.changes == []
    stubbed.assert_all_used()


def test_an_existing_rack_reads_no_quota(stubbed, clock):
    state = RackState(NAMES)
    state.vpc, state.igw = {"VpcId": "vpc-1"}, {"InternetGatewayId": "igw-1"}
    quotas.check(make_run(stubbed, clock, state))
    assert stubbed.log == []


# -- 11. zones that offer the instance type ------------------------------------------------------------------------------------
def zones(*names):
    return {"AvailabilityZones": [{"ZoneName": z, "State": "available", "ZoneType": "availability-zone"}
                                  for z in names]}


def test_subnets_go_to_zones_that_offer_the_instance_type(stubbed, clock):
    """Fault 11: the first zones by name were taken, one of which may not offer the type
    (DescribeInstanceTypeOfferings), so its launches failed."""
    run = make_run(stubbed, clock, instance_type="c7g.large")
    stubbed.ok("ec2", "describe_availability_zones", zones("us-east-1a", "us-east-1b", "us-east-1c"))
    stubbed.ok("ec2", "describe_instance_type_offerings", {"InstanceTypeOfferings": [
        {"InstanceType": "c7g.large", "LocationType": "availability-zone", "Location": z}
        for z in ("us-east-1b", "us-east-1c")]})
    for i, zone in enumerate(("us-east-1b", "us-east-1c")):
        stubbed.ok("ec2", "create_subnet", {"Subnet": {"SubnetId": "subnet-%d" % i}},
                   {"VpcId": "vpc-1", "CidrBlock": "10.0.%d.0/19" % (32 * i), "AvailabilityZone": zone,
                    "TagSpecifications": pytest.importorskip("botocore.stub").ANY})
        stubbed.ok("ec2", "modify_subnet_attribute", {})
    assert network.ensure_subnets(run, "vpc-1") == (["subnet-0", "subnet-1"], [])
    stubbed.assert_all_used()


def test_a_type_offered_in_one_zone_only_is_refused(stubbed, clock):
    run = make_run(stubbed, clock, instance_type="p5.48xlarge")
    stubbed.ok("ec2", "describe_availability_zones", zones("us-east-1a", "us-east-1b"))
    stubbed.ok("ec2", "describe_instance_type_offerings", {"InstanceTypeOfferings": [
        {"InstanceType": "p5.48xlarge", "LocationType": "availability-zone", "Location": "us-east-1a"}]})
    with pytest.raises(RackError, match="region us-east-1 has 1 availability zone.s. that offer p5.48xlarge"):
        network.ensure_subnets(run, "vpc-1")
    assert DEFAULTS["instance_type"] == "t3.small"


# -- 12. filters confirmed on what came back -----------------------------------------------------------------------------
# AWS applies a Describe call's filters; an answer that did not (the local AWS ignored some: docs/local-aws.md)
# must not make the rack terminate another's instance or put a subnet where AWS would not.
def instance(instance_id, rack, state):
    return {"InstanceId": instance_id, "State": {"Name": state}, "Tags": [
        {"Key": k, "Value": v} for k, v in system_tags(rack).items()]}


def test_only_the_racks_live_instances_are_terminated_as_strays(stubbed, clock):
    """Instances outside the rack's group (a group deleted by hand) are terminated; the answer to their
    DescribeInstances holds another rack's instance and a terminated one, as one that ignored its tag
    and instance-state-name filters would (EC2 API reference, DescribeInstances: Filter.N)."""
    run = make_run(stubbed, clock)
    answer = {"Reservations": [{"Instances": [instance("i-ours", "prod", "running"),
                                              instance("i-theirs", "staging", "running"),
                                              instance("i-gone", "prod", "terminated")]}]}
    stubbed.ok("ec2", "describe_instances", answer)
    stubbed.ok("ec2", "terminate_instances", {}, {"InstanceIds": ["i-ours"]})
    stubbed.ok("ec2", "describe_instances", {"Reservations": [{"Instances": [
        instance("i-ours", "prod", "terminated"), instance("i-theirs", "staging", "running")]}]})
    compute.terminate_strays(run)
    stubbed.assert_all_used()
    assert run.plan.changes == [{"resource": "instances", "name": "i-ours", "action": "delete"}]


def test_subnets_go_to_available_zones_only(stubbed, clock):
    """DescribeAvailabilityZones asked for available zones of type availability-zone, and the offerings
    for the rack's type: an answer with a Local Zone, an impaired zone and another type's offering (EC2
    API reference, DescribeAvailabilityZones: State, ZoneType) leaves them out."""
    run = make_run(stubbed, clock, instance_type="c7g.large")
    answer = zones("us-east-1a", "us-east-1b", "us-east-1c")
    answer["AvailabilityZones"][0]["State"] = "impaired"
    answer["AvailabilityZones"].insert(0, {"ZoneName": "us-east-1-bos-1a", "State": "available",
                                           "ZoneType": "local-zone"})
    stubbed.ok("ec2", "describe_availability_zones", answer)
    stubbed.ok("ec2", "describe_instance_type_offerings", {"InstanceTypeOfferings": [
        {"InstanceType": itype, "LocationType": "availability-zone", "Location": z}
        for itype, z in (("c7g.large", "us-east-1-bos-1a"), ("c7g.large", "us-east-1a"), ("t3.small", "us-east-1d"),
                         ("c7g.large", "us-east-1b"), ("t3.small", "us-east-1c"))]})
    with pytest.raises(RackError, match=r"region us-east-1 has 1 availability zone\(s\) that offer c7g.large "
                                        r"\(us-east-1b\)"):
        network.ensure_subnets(run, "vpc-1")
    stubbed.assert_all_used()


# -- 13. a KMS key just made ---------------------------------------------------------------------------------------------
# AWS KMS developer guide, "AWS KMS eventual consistency": a change "typically takes less than a few seconds ...
# but in some cases it can take several minutes", with NotFoundException meanwhile (its example: a call right
# after CreateKey). CloudWatch Logs, not seeing the key yet, answers as for a key it may not use.
KEY_ARN = "arn:aws:kms:us-east-1:%s:key/1234abcd-12ab-34cd-56ef-1234567890ab" % ACCOUNT
NO_KEY = "The specified KMS key does not exist or is not allowed to be used with Arn " \
         "'arn:aws:logs:us-east-1:%s:log-group:/convox/prod'" % ACCOUNT


def test_the_calls_naming_a_new_key_wait_until_kms_sees_it(stubbed, clock, retry_sleeps):
    run = make_run(stubbed, clock)
    stubbed.ok("iam", "create_service_linked_role", {"Role": {
        "Path": "/aws-service-role/", "RoleName": "AWSServiceRoleForAutoScaling", "RoleId": "AROA1234567890EXAMPLE",
        "Arn": "arn:aws:iam::%s:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
               % ACCOUNT, "CreateDate": datetime.datetime(2026, 1, 1)}})
    stubbed.ok("kms", "create_key", {"KeyMetadata": {"KeyId": KEY_ARN.rsplit("/", 1)[1], "Arn": KEY_ARN}})
    stubbed.error("kms", "enable_key_rotation", "NotFoundException", message="Key '%s' does not exist" % KEY_ARN)
    stubbed.ok("kms", "enable_key_rotation", {})
    stubbed.error("kms", "create_alias", "NotFoundException", message="Key '%s' does not exist" % KEY_ARN)
    stubbed.ok("kms", "create_alias", {})
    assert kms.ensure(run) == KEY_ARN and run.new_kms_key == KEY_ARN
    stubbed.assert_all_used()
    assert len(retry_sleeps) == 2


def test_a_log_group_waits_for_a_new_key_and_only_for_a_new_one(stubbed, clock, retry_sleeps):
    run = make_run(stubbed, clock)
    for _attempt in range(10):  # more than MAX_ATTEMPTS: NEW_KEY_SECONDS of waiting decide
        stubbed.error("logs", "create_log_group", "AccessDeniedException", message=NO_KEY)
    stubbed.ok("logs", "create_log_group", {})
    stubbed.ok("logs", "put_retention_policy", {})
    logs.ensure(run.aws, run.plan, "/convox/prod", None, {}, 365, {"Rack": "prod"}, kms_key=KEY_ARN, new_key=True)
    stubbed.assert_all_used()
    assert len(retry_sleeps) == 10 and sum(retry_sleeps) <= logs.NEW_KEY_SECONDS

    retry_sleeps.clear()  # a key of the user's, or one made by an earlier run: the refusal is the answer
    stubbed.error("logs", "create_log_group", "AccessDeniedException", message=NO_KEY)
    with pytest.raises(RackError, match="AccessDeniedException"):
        logs.ensure(run.aws, Plan(False), "/convox/prod", None, {}, 365, {"Rack": "prod"}, kms_key=KEY_ARN)
    assert retry_sleeps == []


# -- the load balancer's access logs: Elastic Load Balancing checks the bucket --------------------------------------
LB_ARN = "arn:aws:elasticloadbalancing:us-east-1:%s:loadbalancer/app/convox-prod/1" % ACCOUNT
NOT_YET = "Access Denied for bucket: %s. Please check S3bucket permission" % NAMES.bucket


@pytest.mark.parametrize("message", [NOT_YET, "S3Bucket validation transient issue"])
def test_access_logs_are_turned_on_once_the_bucket_policy_counts(stubbed, clock, retry_sleeps, message):
    """ModifyLoadBalancerAttributes turning access logs on is refused until the bucket policy written at
    the start of the run counts for Elastic Load Balancing (hashicorp/terraform-provider-aws#12010;
    cn-terraform/terraform-aws-ecs-fargate#49 for the second text); the local AWS shows it only in
    realism mode (test_realism.py)."""
    run = make_run(stubbed, clock)
    stubbed.error("elbv2", "modify_load_balancer_attributes", "InvalidConfigurationRequest", message=message)
    stubbed.error("elbv2", "modify_load_balancer_attributes", "InvalidConfigurationRequest", message=message)
    stubbed.ok("elbv2", "modify_load_balancer_attributes", {"Attributes": []})
    entry._set_attributes(run.aws, "convox-prod", LB_ARN, {"access_logs.s3.enabled": "true"})  # pylint: disable=protected-access
    stubbed.assert_all_used()
    assert len(retry_sleeps) == 2


def test_another_invalid_configuration_is_not_retried(stubbed, clock, retry_sleeps):
    run = make_run(stubbed, clock)
    stubbed.error("elbv2", "modify_load_balancer_attributes", "InvalidConfigurationRequest",
                  message="The value of 'idle_timeout.timeout_seconds' must be between '1' and '4000'")
    with pytest.raises(RackError, match="InvalidConfigurationRequest") as caught:
        entry._set_attributes(run.aws, "convox-prod", LB_ARN, {"idle_timeout.timeout_seconds": "0"})  # pylint: disable=protected-access
    assert retry_sleeps == [] and "attempts" not in caught.value.details


def test_the_bucket_check_is_retried_for_two_minutes_not_eight_attempts(stubbed, clock, retry_sleeps):
    """Eight jittered attempts wait about 35 s in all, less than the minute a bucket policy may take to
    count for ELB (hashicorp/terraform-provider-aws#12010): this refusal is retried for 120 s of waiting,
    then fails naming the attempts."""
    run = make_run(stubbed, clock)
    # nine refusals: one more than MAX_ATTEMPTS allows another error (the waits before the ninth retry
    # are at most 1 + 2 + 4 + 8 + 16 + 20 * 3 + 20 = 111 s, within the 120 s whatever the jitter draws)
    for _attempt in range(9):
        stubbed.error("elbv2", "modify_load_balancer_attributes", "InvalidConfigurationRequest", message=NOT_YET)
    stubbed.ok("elbv2", "modify_load_balancer_attributes", {"Attributes": []})
    entry._set_attributes(run.aws, "convox-prod", LB_ARN, {"access_logs.s3.enabled": "true"})  # pylint: disable=protected-access
    stubbed.assert_all_used()
    assert len(retry_sleeps) == 9

    retry_sleeps.clear()
    for _attempt in range(40):
        stubbed.error("elbv2", "modify_load_balancer_attributes", "InvalidConfigurationRequest", message=NOT_YET)
    with pytest.raises(RackError, match="Access Denied for bucket") as caught:
        entry._set_attributes(run.aws, "convox-prod", LB_ARN, {"access_logs.s3.enabled": "true"})  # pylint: disable=protected-access
    attempts = caught.value.details["attempts"]
    assert attempts > 8 and attempts == len(retry_sleeps) + 1
    assert sum(retry_sleeps) <= entry.BUCKET_NOT_READY_SECONDS
