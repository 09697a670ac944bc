"""The realism mode of the local AWS (scripts/realism.py), checked directly with boto3: each
behaviour it models, as AWS shows it, and that it is off until switched on. What the collection
does under it is in test_realism.py."""

from __future__ import annotations

import json
import time
import urllib.request

import botocore.exceptions
import pytest

SCALE = 0.01  # 1/100 of AWS's time: a 120 s NAT gateway is pending 1.2 s
ARM_IMAGE = "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"
X86_IMAGE = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"


@pytest.fixture()
def aws(realistic_aws):
    """The module's own local AWS, emptied, realism off; switched off again afterwards."""
    realistic_aws.realism(enabled=False)
    realistic_aws.reset()
    yield realistic_aws
    realistic_aws.realism(enabled=False)


def on(aws, **timings):
    """Realism on at SCALE, with no latency and no lag unless asked, so each test sees its own behaviour."""
    base = {"latency": 0, "s3_consistency": 0, "ec2_consistency": 0, "tagging_lag": 0,
            "profile_propagation": 0, "bucket_policy_propagation": 0, "kms_consistency": 0}
    return aws.realism(scale=SCALE, timings=dict(base, **timings))


def until(probe, seconds=10.0):
    """probe()'s first true value, polled every 0.1 s."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("not within %ss" % seconds)


def eventually(fn, seconds=10.0, **kwargs):
    """fn(**kwargs) once AWS stops refusing it (a ClientError), polled every 0.1 s."""
    def attempt():
        try:
            return fn(**kwargs) or True
        except botocore.exceptions.ClientError:
            return False
    return until(attempt, seconds)


def error_of(fn, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        fn(**kwargs)
    return caught.value.response["Error"]


def network(aws, zones=2):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.%d.0/24" % i, AvailabilityZone="us-east-1" + "abc"[i]
                                 )["Subnet"]["SubnetId"] for i in range(zones)]
    sg = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    return vpc, subnets, sg


def launch_template(aws, image_parameter=X86_IMAGE, profile=None):
    image = aws.client("ssm").get_parameter(Name=image_parameter)["Parameter"]["Value"]
    data = {"ImageId": image, "InstanceType": "t3.small"}
    if profile:
        data["IamInstanceProfile"] = profile
    return aws.client("ec2").create_launch_template(LaunchTemplateName="lt", LaunchTemplateData=data
                                                    )["LaunchTemplate"]["LaunchTemplateId"]


def group(aws, subnets, lt_id, count=2, name="asg"):
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=count, MaxSize=count, DesiredCapacity=count,
        LaunchTemplate={"LaunchTemplateId": lt_id, "Version": "$Default"}, VPCZoneIdentifier=",".join(subnets))
    return name


def describe_group(aws, name="asg"):
    found = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return found[0] if found else None


def test_off_by_default_and_switched_per_server(aws):
    with urllib.request.urlopen(aws.endpoint + "/moto-api/realism") as answer:
        assert json.load(answer)["enabled"] is False
    vpc, subnets, _sg = network(aws)
    ec2 = aws.client("ec2")
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    assert ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=alloc)["NatGateway"]["State"] == "available"
    settings = on(aws, nat_pending=100)
    assert settings["enabled"] is True and settings["scale"] == SCALE and settings["timings"]["nat_pending"] == 100
    with pytest.raises(urllib.error.HTTPError):
        aws.realism(timings={"no_such_timing": 1})


def test_latency(aws):
    aws.client("ec2").describe_vpcs()
    on(aws, latency=30)  # 0.3 s at SCALE
    started = time.monotonic()
    aws.client("ec2").describe_vpcs()
    assert time.monotonic() - started >= 0.3


def test_nat_gateway_pending_then_available_deleting_then_deleted(aws):
    _vpc, subnets, _sg = network(aws)
    ec2 = aws.client("ec2")
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    on(aws, nat_pending=150, nat_deleting=100)
    nat = ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=alloc)["NatGateway"]
    assert nat["State"] == "pending"

    def state():
        return ec2.describe_nat_gateways(NatGatewayIds=[nat["NatGatewayId"]])["NatGateways"][0]["State"]
    assert state() == "pending"
    until(lambda: state() == "available", 5)
    ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
    assert state() == "deleting"
    assert "AssociationId" in ec2.describe_addresses(AllocationIds=[alloc])["Addresses"][0], "held while deleting"
    until(lambda: state() == "deleted", 5)
    # "its Elastic IP address is disassociated from it, but is not released" (Amazon VPC User Guide,
    # "Delete a NAT gateway"): another NAT gateway may take it
    assert "AssociationId" not in ec2.describe_addresses(AllocationIds=[alloc])["Addresses"][0]


def test_a_deleted_nat_gateways_address_is_disassociated_not_released(aws):
    """Realism off (scripts/moto_server.py, fix 10): at once."""
    _vpc, subnets, _sg = network(aws)
    ec2 = aws.client("ec2")
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=alloc)["NatGateway"]["NatGatewayId"]
    assert "AssociationId" in ec2.describe_addresses(AllocationIds=[alloc])["Addresses"][0]
    ec2.delete_nat_gateway(NatGatewayId=nat)
    assert "AssociationId" not in ec2.describe_addresses(AllocationIds=[alloc])["Addresses"][0]
    again = ec2.create_nat_gateway(SubnetId=subnets[1], AllocationId=alloc)["NatGateway"]["NatGatewayId"]
    assert ec2.describe_addresses(AllocationIds=[alloc])["Addresses"][0]["NetworkInterfaceId"] == \
        ec2.describe_nat_gateways(NatGatewayIds=[again])["NatGateways"][0]["NatGatewayAddresses"][0]["NetworkInterfaceId"]


def test_load_balancer_provisioning_then_active(aws):
    _vpc, subnets, sg = network(aws)
    on(aws, lb_provisioning=150)
    elb = aws.client("elbv2")
    lb = elb.create_load_balancer(Name="lb", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]

    def code():
        return elb.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"]])["LoadBalancers"][0]["State"]["Code"]
    assert code() == "provisioning"
    until(lambda: code() == "active", 5)


def test_instances_pending_then_in_service(aws):
    _vpc, subnets, _sg = network(aws)
    lt_id = launch_template(aws)
    on(aws, instance_pending=150)
    group(aws, subnets, lt_id, count=2)
    states = [i["LifecycleState"] for i in describe_group(aws)["Instances"]]
    assert states == ["Pending", "Pending"]
    until(lambda: [i["LifecycleState"] for i in describe_group(aws)["Instances"]] == ["InService"] * 2, 5)
    assert len(describe_group(aws)["Instances"]) == 2, "Pending instances were counted as missing"


def test_group_delete_in_progress_while_instances_terminate(aws):
    _vpc, subnets, _sg = network(aws)
    group(aws, subnets, launch_template(aws), count=2)
    on(aws, asg_delete=150)
    aws.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName="asg", ForceDelete=True)
    deleting = describe_group(aws)
    assert deleting["Status"] == "Delete in progress"
    assert {i["LifecycleState"] for i in deleting["Instances"]} == {"Terminating"}
    ids = [i["InstanceId"] for i in deleting["Instances"]]
    ec2 = aws.client("ec2")
    states = {i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]}
    assert states == {"shutting-down"}
    until(lambda: describe_group(aws) is None, 5)
    states = {i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]}
    assert states == {"terminated"}


def test_load_balancer_interfaces_linger_after_delete(aws):
    vpc, subnets, sg = network(aws)
    elb = aws.client("elbv2")
    lb = elb.create_load_balancer(Name="lb", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]
    on(aws, lb_eni_linger=150)
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    ec2 = aws.client("ec2")
    err = error_of(ec2.delete_subnet, SubnetId=subnets[0])
    assert err["Code"] == "DependencyViolation" and "has dependencies" in err["Message"]
    assert error_of(ec2.delete_security_group, GroupId=sg)["Code"] == "DependencyViolation"
    assert error_of(ec2.delete_vpc, VpcId=vpc)["Code"] == "DependencyViolation"
    eventually(ec2.delete_subnet, 5, SubnetId=subnets[0])
    ec2.delete_security_group(GroupId=sg)


def test_instance_profile_refused_by_auto_scaling_and_ec2_for_a_while(aws):
    _vpc, subnets, _sg = network(aws)
    on(aws, profile_propagation=150)
    iam = aws.client("iam")
    arn = iam.create_instance_profile(InstanceProfileName="prof")["InstanceProfile"]["Arn"]
    lt_id = launch_template(aws, profile={"Arn": arn})
    err = error_of(aws.client("autoscaling").create_auto_scaling_group, AutoScalingGroupName="asg", MinSize=1,
                   MaxSize=1, LaunchTemplate={"LaunchTemplateId": lt_id, "Version": "$Default"},
                   VPCZoneIdentifier=subnets[0])
    assert err["Code"] == "ValidationError"
    assert err["Message"] == ("You must use a valid fully-formed launch template. Value (%s) for parameter "
                              "iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN" % arn)
    image = aws.client("ssm").get_parameter(Name=X86_IMAGE)["Parameter"]["Value"]
    err = error_of(aws.client("ec2").run_instances, ImageId=image, MinCount=1, MaxCount=1,
                   IamInstanceProfile={"Name": "prof"})
    assert err["Code"] == "InvalidParameterValue"
    assert err["Message"] == ("Value (prof) for parameter iamInstanceProfile.name is invalid. "
                              "Invalid IAM Instance Profile name")
    time.sleep(1.6)
    group(aws, subnets, lt_id, count=1)


def test_new_bucket_answers_no_such_bucket_for_a_moment(aws):
    on(aws, s3_consistency=100)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="fresh")
    err = error_of(s3.put_bucket_tagging, Bucket="fresh", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    assert err["Code"] == "NoSuchBucket"
    eventually(s3.put_bucket_tagging, 5, Bucket="fresh", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})


def test_load_balancer_access_logs_need_a_bucket_policy_that_counts(aws):
    """ModifyLoadBalancerAttributes turning access logs on: refused (InvalidConfigurationRequest "Access
    Denied for bucket: <b>. Please check S3bucket permission") while the bucket's policy does not let
    Elastic Load Balancing write under <prefix>/AWSLogs/<account>/, and for a while after the policy
    was written (Elastic Load Balancing user guide, "Enable access logs for your Application Load
    Balancer", step 2; hashicorp/terraform-provider-aws#12010). Realism off, moto accepts any bucket."""
    _vpc, subnets, sg = network(aws)
    elb, s3 = aws.client("elbv2"), aws.client("s3")
    arn = elb.create_load_balancer(Name="lb", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]["LoadBalancerArn"]
    s3.create_bucket(Bucket="logs")
    account = aws.client("sts").get_caller_identity()["Account"]
    logs = [{"Key": "access_logs.s3.enabled", "Value": "true"}, {"Key": "access_logs.s3.bucket", "Value": "logs"},
            {"Key": "access_logs.s3.prefix", "Value": "router"}]
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=logs)   # realism off: no check
    grant = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::127311923021:root"}, "Action": "s3:PutObject",
             "Resource": "arn:aws:s3:::logs/router/AWSLogs/%s/*" % account}

    on(aws, bucket_policy_propagation=0)
    for policy in ({"Statement": [dict(grant, Resource="arn:aws:s3:::logs/other/*")]},          # elsewhere
                   {"Statement": [dict(grant, Principal={"AWS": "arn:aws:iam::%s:root" % account})]},  # not ELB
                   {"Statement": [dict(grant, Effect="Deny")]}):
        s3.put_bucket_policy(Bucket="logs", Policy=json.dumps(dict(policy, Version="2012-10-17")))
        err = error_of(elb.modify_load_balancer_attributes, LoadBalancerArn=arn, Attributes=logs)
        assert err == {"Type": "Sender", "Code": "InvalidConfigurationRequest",
                       "Message": "Access Denied for bucket: logs. Please check S3bucket permission"}, policy
    # newer Regions' service principal counts as the account does
    s3.put_bucket_policy(Bucket="logs", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        dict(grant, Principal={"Service": "logdelivery.elasticloadbalancing.amazonaws.com"})]}))
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=logs)

    on(aws, bucket_policy_propagation=300)     # 3 s
    s3.put_bucket_policy(Bucket="logs", Policy=json.dumps({"Version": "2012-10-17", "Statement": [grant]}))
    written = time.monotonic()
    err = error_of(elb.modify_load_balancer_attributes, LoadBalancerArn=arn, Attributes=logs)
    assert err["Code"] == "InvalidConfigurationRequest" and "Access Denied for bucket: logs" in err["Message"]
    # other attributes, and turning access logs off, are not checked
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "true"}, {"Key": "access_logs.s3.enabled", "Value": "false"}])
    eventually(elb.modify_load_balancer_attributes, 10, LoadBalancerArn=arn, Attributes=logs)
    assert time.monotonic() - written >= 2.5


def test_new_ec2_resource_answers_not_found_for_a_moment(aws):
    on(aws, ec2_consistency=100)
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    err = error_of(ec2.modify_vpc_attribute, VpcId=vpc, EnableDnsSupport={"Value": True})
    assert err == {"Code": "InvalidVpcID.NotFound", "Message": "The vpc ID '%s' does not exist" % vpc}
    assert error_of(ec2.describe_vpcs, VpcIds=[vpc])["Code"] == "InvalidVpcID.NotFound"
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    assert error_of(ec2.attach_internet_gateway, InternetGatewayId=igw, VpcId=vpc)["Code"].endswith(".NotFound")
    eventually(ec2.modify_vpc_attribute, 5, VpcId=vpc, EnableDnsSupport={"Value": True})


def test_tagging_api_lags_creates_and_deletes(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="old")
    s3.put_bucket_tagging(Bucket="old", Tagging={"TagSet": [{"Key": "System", "Value": "convox"}]})
    on(aws, tagging_lag=150)
    tagging = aws.client("resourcegroupstaggingapi")

    def listed():
        found = tagging.get_resources(TagFilters=[{"Key": "System", "Values": ["convox"]}])
        return sorted(r["ResourceARN"].split(":")[-1] for r in found["ResourceTagMappingList"])
    s3.create_bucket(Bucket="new")
    s3.put_bucket_tagging(Bucket="new", Tagging={"TagSet": [{"Key": "System", "Value": "convox"}]})
    assert listed() == ["old"], "a resource there before the mode was on is listed at once"
    until(lambda: listed() == ["new", "old"], 5)
    s3.delete_bucket(Bucket="old")
    assert listed() == ["new", "old"]
    until(lambda: listed() == ["new"], 5)


def test_capacity_provider_adds_amazon_ecs_managed_to_its_group(aws):
    _vpc, subnets, _sg = network(aws)
    group(aws, subnets, launch_template(aws), count=1)
    on(aws)
    arn = describe_group(aws)["AutoScalingGroupARN"]
    aws.client("ecs").create_capacity_provider(name="cp", autoScalingGroupProvider={"autoScalingGroupArn": arn})
    tags = {t["Key"]: t for t in describe_group(aws)["Tags"]}
    assert tags["AmazonECSManaged"]["Value"] == "" and tags["AmazonECSManaged"]["PropagateAtLaunch"] is True


def test_a_flow_log_to_a_bucket_appends_the_log_deliverys_statements_to_its_policy(aws):
    """CloudWatch Logs user guide, "Logs sent to Amazon S3": a policy without the statement gets it appended;
    AWS's own Sids (AWSLogDeliveryWrite, AWSLogDeliveryAclCheck), the policy's other statements kept, none twice."""
    s3, ec2 = aws.client("s3"), aws.client("ec2")
    s3.create_bucket(Bucket="flow-target")
    own = {"Sid": "Mine", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
           "Resource": "arn:aws:s3:::flow-target"}
    s3.put_bucket_policy(Bucket="flow-target", Policy=json.dumps({"Version": "2012-10-17", "Statement": [own]}))
    vpc, _subnets, _sg = network(aws)
    ec2.create_flow_logs(ResourceType="VPC", ResourceIds=[vpc], TrafficType="ALL", LogDestinationType="s3",
                         LogDestination="arn:aws:s3:::flow-target/logs/flow/")
    assert [st["Sid"] for st in json.loads(s3.get_bucket_policy(Bucket="flow-target")["Policy"])["Statement"]] == [
        "Mine"], "realism off: nothing appended"
    on(aws)
    for _vpc in (vpc, network(aws)[0]):
        ec2.create_flow_logs(ResourceType="VPC", ResourceIds=[_vpc], TrafficType="ALL", LogDestinationType="s3",
                             LogDestination="arn:aws:s3:::flow-target/logs/flow/")
    statements = json.loads(s3.get_bucket_policy(Bucket="flow-target")["Policy"])["Statement"]
    assert [st["Sid"] for st in statements] == ["Mine", "AWSLogDeliveryWrite", "AWSLogDeliveryAclCheck"]
    assert statements[1]["Resource"] == "arn:aws:s3:::flow-target/logs/flow/AWSLogs/123456789012/*"
    assert statements[1]["Principal"] == {"Service": "delivery.logs.amazonaws.com"}


def test_a_new_kms_key_is_not_found_by_kms_nor_usable_by_cloudwatch_logs_for_a_moment(aws):
    on(aws, kms_consistency=300)  # 3 s
    kms, logs = aws.client("kms"), aws.client("logs")
    key = kms.create_key()["KeyMetadata"]
    err = error_of(kms.enable_key_rotation, KeyId=key["KeyId"])
    assert err["Code"] == "NotFoundException" and key["KeyId"] in err["Message"]
    assert error_of(kms.create_alias, AliasName="alias/fresh", TargetKeyId=key["Arn"])["Code"] == "NotFoundException"
    err = error_of(logs.create_log_group, logGroupName="/fresh", kmsKeyId=key["Arn"])
    assert err["Code"] == "AccessDeniedException" and err["Message"].startswith(
        "The specified KMS key does not exist or is not allowed to be used with Arn 'arn:aws:logs:us-east-1:")
    eventually(kms.enable_key_rotation, KeyId=key["KeyId"])
    logs.create_log_group(logGroupName="/fresh", kmsKeyId=key["Arn"])
    assert logs.describe_log_groups(logGroupNamePrefix="/fresh")["logGroups"][0]["kmsKeyId"] == key["Arn"]


def test_failed_launch_is_a_scaling_activity(aws):
    _vpc, subnets, _sg = network(aws)
    lt_id = launch_template(aws, image_parameter=ARM_IMAGE)  # an arm64 image on t3.small (x86_64)
    on(aws)
    group(aws, subnets, lt_id, count=1)
    assert describe_group(aws)["Instances"] == []
    activities = aws.client("autoscaling").describe_scaling_activities(AutoScalingGroupName="asg")["Activities"]
    assert activities[0]["StatusCode"] == "Failed"
    assert activities[0]["StatusMessage"].startswith(
        "The architecture 'x86_64' of the specified instance type does not match the architecture 'arm64' of the "
        "specified AMI.")


def test_nat_gateway_tag_filters_apply_always(aws):
    """Not a realism behaviour: a fix of moto (scripts/moto_server.py, 4), on in every mode."""
    _vpc, subnets, _sg = network(aws)
    ec2 = aws.client("ec2")
    for i, rack in enumerate(("staging", "newone")):
        alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
        ec2.create_nat_gateway(SubnetId=subnets[i], AllocationId=alloc, TagSpecifications=[
            {"ResourceType": "natgateway", "Tags": [{"Key": "Rack", "Value": rack}]}])
    for mode in (False, True):
        aws.realism(enabled=mode, scale=SCALE)
        found = ec2.describe_nat_gateways(Filters=[{"Name": "tag:Rack", "Values": ["newone"]}])["NatGateways"]
        assert [t["Value"] for n in found for t in n["Tags"] if t["Key"] == "Rack"] == ["newone"]
        assert len(ec2.describe_nat_gateways(Filters=[{"Name": "tag-key", "Values": ["Rack"]}])["NatGateways"]) == 2
