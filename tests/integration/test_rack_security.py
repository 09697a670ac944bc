"""Secure by default (issue 14), against the local AWS through the real playbooks: a private rack
with an app installed by install_rack.yml and create_app.yml, every new setting read back with
boto3, a rerun that changes nothing, settings lost by hand put back, and uninstall without and
with purge_data. And a rack given a key of the user's (kms_key), which it uses and never deletes.

AWS behaviour modelled here, each from AWS's documentation:
- CloudWatch Logs encrypts a log group with a KMS key given at creation (kmsKeyId) or later
  (AssociateKmsKey); the key policy must allow logs.<region>.amazonaws.com with the encryption
  context kms:EncryptionContext:aws:logs:arn ("Encrypt log data in CloudWatch Logs using AWS KMS").
- Auto Scaling launches instances with encrypted volumes of a customer managed key only when the
  key policy allows its service-linked role AWSServiceRoleForAutoScaling ("Required AWS KMS key
  policy for use with encrypted volumes").
- ScheduleKeyDeletion takes a waiting period of 7 to 30 days (AWS KMS API reference).
- ECS cluster setting containerInsights (ECS API reference, ClusterSetting).

The local AWS (moto 5.2.5) evaluates no key policy and encrypts nothing: these tests prove what
the collection asks of AWS (the key, its policy, each resource naming it), not that AWS accepts it.
It lacks Logs' AssociateKmsKey: scripts/moto_server.py adds it (fix 5).
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import REGION, live_tagged

RACK = "secured"
APP = "web"
OWN_KEY_RACK = "ownkey"
ALIAS = "alias/convox/%s" % RACK
VARS = {"rack": RACK, "rack_private": True, "rack_high_availability": False, "rack_instance_count": 1}


def key_of(aws, alias=ALIAS):
    return aws.client("kms").describe_key(KeyId=alias)["KeyMetadata"]


def bucket_encryption(aws, bucket):
    rule = aws.client("s3").get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    return rule["ApplyServerSideEncryptionByDefault"], rule.get("BucketKeyEnabled")


def log_group(aws, name):
    return [g for g in aws.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
            if g["logGroupName"] == name][0]


def left_of_public(aws, rack):
    """What is left of a public rack: moto 5.2.5 ignores tag filters on DescribeNatGateways
    (FIELD-NOTES section 2), so another (private) rack's NAT gateways are not this one's."""
    return [r for r in live_tagged(aws, rack) if not r.startswith("nat ")]


def rack_info(runner, name=RACK):
    result = runner.module({"name": name}, module_name="rack_info")
    assert not result.get("failed"), result.get("msg")
    return result["racks"][0]


@pytest.fixture(scope="module")
def secured(runner, local_aws):
    installed = runner.playbook("playbooks/install_rack.yml", VARS)
    app = runner.playbook("playbooks/create_app.yml", {"rack": RACK, "app": APP})
    info = rack_info(runner)
    yield {"installed": installed, "app": app, "info": info}
    runner.playbook("playbooks/uninstall_rack.yml", {"rack": RACK, "rack_force": True, "rack_purge_data": True})


def test_the_rack_has_its_own_key_rotated_and_tagged(secured, local_aws):
    key = key_of(local_aws)
    assert key["KeyState"] == "Enabled" and key["KeyUsage"] == "ENCRYPT_DECRYPT"
    kms = local_aws.client("kms")
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]}
    assert {"System": "convox", "Rack": RACK, "Type": "rack"}.items() <= tags.items()
    assert secured["info"]["kms_key"] == key["Arn"], "rack_info names the key"


def test_the_region_wide_listing_names_the_key_too(secured, runner, local_aws):
    result = runner.module({}, module_name="rack_info")
    rack = [r for r in result["racks"] if r["name"] == RACK][0]
    assert rack["kms_key"] == key_of(local_aws)["Arn"]


def test_the_key_policy_grants_only_the_services_that_use_it(secured, local_aws):
    key = key_of(local_aws)
    account = key["Arn"].split(":")[4]
    policy = json.loads(local_aws.client("kms").get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert sorted(by_sid) == ["AccountAdministers", "AutoScalingVolumeGrants", "AutoScalingVolumes",
                              "CloudWatchLogsOfTheRack"]
    assert by_sid["AccountAdministers"]["Principal"] == {"AWS": "arn:aws:iam::%s:root" % account}
    logs = by_sid["CloudWatchLogsOfTheRack"]
    assert logs["Principal"] == {"Service": "logs.%s.amazonaws.com" % REGION}
    group_arn = "arn:aws:logs:%s:%s:log-group:/convox/%s" % (REGION, account, RACK)
    assert logs["Condition"] == {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": [group_arn, group_arn + "/*"]}}
    role = "arn:aws:iam::%s:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling" % account
    assert by_sid["AutoScalingVolumes"]["Principal"] == {"AWS": role}
    assert by_sid["AutoScalingVolumeGrants"]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    # The role the policy names exists (KMS refuses a policy naming an unknown principal).
    local_aws.client("iam").get_role(RoleName="AWSServiceRoleForAutoScaling")


def test_log_groups_of_the_rack_and_its_app_use_the_key(secured, local_aws):
    arn = key_of(local_aws)["Arn"]
    assert log_group(local_aws, "/convox/%s" % RACK).get("kmsKeyId") == arn
    assert log_group(local_aws, "/convox/%s/apps/%s" % (RACK, APP)).get("kmsKeyId") == arn


def test_the_apps_bucket_is_sse_kms_with_a_bucket_key(secured, local_aws):
    arn = key_of(local_aws)["Arn"]
    app_bucket = [b["Name"] for b in local_aws.client("s3").list_buckets()["Buckets"]
                  if b["Name"].startswith("convox-%s-%s-" % (RACK, APP))][0]
    default, bucket_key = bucket_encryption(local_aws, app_bucket)
    assert default == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": arn} and bucket_key is True


def test_the_rack_bucket_is_sse_kms_with_a_bucket_key(secured, local_aws):
    """It receives no log delivery (the log bucket takes them all, SSE-S3 as AWS's deliveries require):
    SSE-KMS with the rack's key, as the apps' buckets (docs/security.md)."""
    default, bucket_key = bucket_encryption(local_aws, secured["info"]["bucket"])
    assert default == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_of(local_aws)["Arn"]} and bucket_key is True
    assert bucket_encryption(local_aws, secured["info"]["log_bucket"])[0] == {"SSEAlgorithm": "AES256"}


def test_instance_volumes_use_the_key(secured, local_aws):
    arn = key_of(local_aws)["Arn"]
    ec2 = local_aws.client("ec2")
    data = ec2.describe_launch_template_versions(LaunchTemplateName="convox-%s" % RACK, Versions=["$Default"])[
        "LaunchTemplateVersions"][0]["LaunchTemplateData"]
    ebs = data["BlockDeviceMappings"][0]["Ebs"]
    assert ebs["Encrypted"] is True and ebs["KmsKeyId"] == arn


def test_container_insights_are_on(secured, local_aws):
    cluster = local_aws.client("ecs").describe_clusters(clusters=["convox-%s" % RACK], include=["SETTINGS"])[
        "clusters"][0]
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]
    assert secured["info"]["parameters"]["container_insights"] is True


# -- flow logs, the router, the log bucket ----------------------------------------------------------------------

def flow_logs_of(aws, rack=RACK):
    """The flow logs found by the rack's tags, the rack's tags confirmed on each."""
    found = aws.client("ec2").describe_flow_logs(Filters=[{"Name": "tag:Rack", "Values": [rack]},
                                                          {"Name": "tag:System", "Values": ["convox"]}])["FlowLogs"]
    for f in found:
        assert {"System": "convox", "Rack": rack, "Type": "rack"}.items() <= {t["Key"]: t["Value"] for t in f["Tags"]}.items()
    return found


def policy_of(aws, bucket):
    return {s["Sid"]: s for s in json.loads(aws.client("s3").get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]}


def lb_attributes(aws, rack=RACK):
    elb = aws.client("elbv2")
    arn = elb.describe_load_balancers(Names=["convox-%s" % rack])["LoadBalancers"][0]["LoadBalancerArn"]
    return {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]}


def listeners_of(aws, rack=RACK):
    elb = aws.client("elbv2")
    arn = elb.describe_load_balancers(Names=["convox-%s" % rack])["LoadBalancers"][0]["LoadBalancerArn"]
    return {x["Port"]: x for x in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]}


def test_the_vpc_has_a_flow_log_of_all_traffic_into_the_log_bucket(secured, local_aws):
    bucket, vpc = secured["info"]["log_bucket"], secured["info"]["vpc_id"]
    flow = flow_logs_of(local_aws)
    assert len(flow) == 1
    assert flow[0]["ResourceId"] == vpc and flow[0]["TrafficType"] == "ALL"
    assert flow[0]["LogDestinationType"] == "s3" and flow[0]["LogDestination"] == "arn:aws:s3:::%s/logs/flow/" % bucket
    assert secured["info"]["flow_log_id"] == flow[0]["FlowLogId"]
    assert secured["info"]["parameters"]["flow_logs"] is True


def test_the_rack_bucket_takes_no_delivery_and_is_tls_only(secured, local_aws):
    assert set(policy_of(local_aws, secured["info"]["bucket"])) == {"DenyInsecureTransport"}


def test_the_log_bucket_lets_aws_deliver_every_log_of_the_rack_only(secured, local_aws):
    """The statements AWS documents ("Publish flow logs to Amazon S3"; "Enable access logs for your
    Application Load Balancer": us-east-1's Elastic Load Balancing account 127311923021; "Enabling
    Amazon S3 server access logging"), each for its prefix."""
    bucket, rack_bucket = secured["info"]["log_bucket"], secured["info"]["bucket"]
    account = secured["info"]["kms_key"].split(":")[4]
    by_sid = policy_of(local_aws, bucket)
    assert set(by_sid) == {"DenyInsecureTransport", "AllowS3AccessLogsOfTheRackBucket", "AllowS3AccessLogsOfApps",
                           "AllowLoadBalancerAccessLogs", "AllowFlowLogsDelivery", "AllowFlowLogsAclCheck"}
    apps = by_sid["AllowS3AccessLogsOfApps"]
    assert apps["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert apps["Resource"] == "arn:aws:s3:::%s/logs/apps/*" % bucket
    assert apps["Condition"] == {"StringEquals": {"aws:SourceAccount": account},
                                 "ArnLike": {"aws:SourceArn": "arn:aws:s3:::convox-%s-*" % RACK}}
    own = by_sid["AllowS3AccessLogsOfTheRackBucket"]
    assert own["Resource"] == "arn:aws:s3:::%s/logs/bucket/*" % bucket
    assert own["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:s3:::%s" % rack_bucket}
    router = by_sid["AllowLoadBalancerAccessLogs"]
    assert router["Principal"] == {"AWS": "arn:aws:iam::127311923021:root"}
    assert router["Resource"] == "arn:aws:s3:::%s/logs/router/AWSLogs/%s/*" % (bucket, account)
    flow = by_sid["AllowFlowLogsDelivery"]
    assert flow["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert flow["Condition"]["StringEquals"]["aws:SourceAccount"] == account
    assert flow["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:logs:%s:%s:*" % (REGION, account)}


def test_the_router_logs_into_the_log_bucket_is_protected_and_drops_invalid_headers(secured, local_aws):
    bucket = secured["info"]["log_bucket"]
    attrs = lb_attributes(local_aws)
    assert attrs["access_logs.s3.enabled"] == "true" and attrs["access_logs.s3.bucket"] == bucket
    assert attrs["access_logs.s3.prefix"] == "logs/router"
    assert attrs["deletion_protection.enabled"] == "true"
    assert attrs["routing.http.drop_invalid_header_fields.enabled"] == "true"
    lb = secured["info"]["load_balancer"]
    assert lb["access_logs"] == "s3://%s/logs/router" % bucket and lb["deletion_protection"] is True
    assert lb["listeners"] == [{"port": 80, "protocol": "HTTP", "action": "fixed-response"}]


def test_the_rack_bucket_logs_into_a_log_bucket_of_its_own(secured, local_aws):
    s3 = local_aws.client("s3")
    bucket = secured["info"]["bucket"]
    log_bucket = bucket + "-logs"
    assert secured["info"]["log_bucket"] == log_bucket
    logging = s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
    assert logging == {"TargetBucket": log_bucket, "TargetPrefix": "logs/bucket/"}
    # Hardened as every bucket of the rack (storage.py), SSE-S3 as S3's log delivery requires, no logging itself.
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=log_bucket)["TagSet"]}
    assert {"System": "convox", "Rack": RACK, "Type": "rack"}.items() <= tags.items()
    assert all(s3.get_public_access_block(Bucket=log_bucket)["PublicAccessBlockConfiguration"].values())
    assert bucket_encryption(local_aws, log_bucket)[0] == {"SSEAlgorithm": "AES256"}
    assert s3.get_bucket_versioning(Bucket=log_bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_lifecycle_configuration(Bucket=log_bucket)["Rules"]
    assert {"ID": "expire-logs", "Expiration": {"Days": 365}}.items() <= [r for r in rules if r["ID"] == "expire-logs"][
        0].items()
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=log_bucket)
    logs = policy_of(local_aws, log_bucket)["AllowS3AccessLogsOfTheRackBucket"]
    assert logs["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert logs["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:s3:::%s" % bucket}
    # and the app's bucket logs into it too, under its own prefix
    app_bucket = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("convox-%s-%s-" % (RACK, APP))][0]
    assert s3.get_bucket_logging(Bucket=app_bucket)["LoggingEnabled"] == {"TargetBucket": log_bucket,
                                                                          "TargetPrefix": "logs/apps/%s/" % APP}


def put_back_the_placement_before_the_log_bucket(aws, info):
    """By hand, a rack as the releases before this one left it: its own bucket SSE-S3 and taking every
    delivery (its policy's statements then), the flow log, the router and the app logging into it.
    Returns the old flow log's id and the app's bucket."""
    bucket, log_bucket, vpc = info["bucket"], info["log_bucket"], info["vpc_id"]
    s3, ec2 = aws.client("s3"), aws.client("ec2")
    flow = flow_logs_of(aws)[0]
    ec2.delete_flow_logs(FlowLogIds=[flow["FlowLogId"]])
    old_id = ec2.create_flow_logs(
        ResourceType="VPC", ResourceIds=[vpc], TrafficType="ALL", LogDestinationType="s3",
        LogDestination="arn:aws:s3:::%s/logs/flow/" % bucket,
        TagSpecifications=[{"ResourceType": "vpc-flow-log", "Tags": flow["Tags"]}])["FlowLogIds"][0]
    aws.client("elbv2").modify_load_balancer_attributes(LoadBalancerArn=info["load_balancer"]["arn"], Attributes=[
        {"Key": "access_logs.s3.bucket", "Value": bucket}])
    # the log bucket's statements, as they were on the rack's bucket (log_bucket is bucket + "-logs")
    doc = json.loads(json.dumps(json.loads(s3.get_bucket_policy(Bucket=log_bucket)["Policy"])).replace(log_bucket, bucket))
    doc["Statement"] = [st for st in doc["Statement"] if st["Sid"] != "AllowS3AccessLogsOfTheRackBucket"]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc))
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
    app_bucket = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("convox-%s-%s-" % (RACK, APP))][0]
    s3.put_bucket_logging(Bucket=app_bucket, BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": bucket, "TargetPrefix": "logs/apps/%s/" % APP}})
    return old_id, app_bucket


def test_an_update_moves_the_deliveries_of_an_older_rack_into_the_log_bucket(secured, runner, local_aws):
    """A flow log's destination cannot change (CreateFlowLogs and DeleteFlowLogs only, Amazon EC2 API
    reference): the update replaces it, and says so before (drift) and when it does; then a rerun changes
    nothing."""
    info = secured["info"]
    bucket, log_bucket = info["bucket"], info["log_bucket"]
    old_id, app_bucket = put_back_the_placement_before_the_log_bucket(local_aws, info)
    drift = runner.module({"name": RACK, "drift": True}, module_name="rack_info")["drift"]
    words = [d["message"] for d in drift]
    assert ("flow log %s: delivered to arn:aws:s3:::%s/logs/flow/, not to the log bucket (a destination cannot"
            " change); an update replaces it" % (old_id, bucket)) in words, words
    assert any(m.startswith("bucket %s: default encryption AES256, wanted aws:kms" % bucket) for m in words), words
    assert any(m.startswith("bucket %s: access logging s3://%s/logs/apps/%s/" % (app_bucket, bucket, APP))
               for m in words), words
    done = runner.playbook("playbooks/update_rack.yml", {"rack": RACK})
    assert "replaced flow log %s" % old_id in done.stdout, done.stdout[-3000:]
    assert "updated bucket %s" % app_bucket in done.stdout, done.stdout[-3000:]
    flow = flow_logs_of(local_aws)
    assert [f["LogDestination"] for f in flow] == ["arn:aws:s3:::%s/logs/flow/" % log_bucket]
    assert flow[0]["FlowLogId"] != old_id and rack_info(runner)["flow_log_id"] == flow[0]["FlowLogId"]
    assert lb_attributes(local_aws)["access_logs.s3.bucket"] == log_bucket
    assert set(policy_of(local_aws, bucket)) == {"DenyInsecureTransport"}, "exactly the new statements"
    assert bucket_encryption(local_aws, bucket) == ({"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_of(local_aws)[
        "Arn"]}, True)
    assert local_aws.client("s3").get_bucket_logging(Bucket=app_bucket)["LoggingEnabled"] == {
        "TargetBucket": log_bucket, "TargetPrefix": "logs/apps/%s/" % APP}
    again = runner.playbook("playbooks/update_rack.yml", {"rack": RACK})
    assert "no change" in again.stdout, again.stdout[-3000:]
    app = runner.playbook("playbooks/create_app.yml", {"rack": RACK, "app": APP})
    assert "app %s of rack %s is running: no change" % (APP, RACK) in app.stdout, app.stdout[-3000:]


def test_flow_logs_can_be_turned_off_and_on_and_it_is_recorded(secured, runner, local_aws):
    off = runner.playbook("playbooks/update_rack.yml", {"rack": RACK, "rack_flow_logs": False})
    assert re.search(r"is running at \S+: 2 changes\"", off.stdout), off.stdout[-3000:]
    assert flow_logs_of(local_aws) == []
    info = rack_info(runner)
    assert info["flow_log_id"] is None and info["parameters"]["flow_logs"] is False
    kept = runner.playbook("playbooks/update_rack.yml", {"rack": RACK})
    assert "no change" in kept.stdout, "unset keeps the recorded setting"
    runner.playbook("playbooks/update_rack.yml", {"rack": RACK, "rack_flow_logs": True})
    assert len(flow_logs_of(local_aws)) == 1


@pytest.fixture(scope="module")
def certificate(local_aws):
    """An ACM certificate of the rack's region (the local AWS issues requested ones at once)."""
    acm = local_aws.client("acm")
    return acm.request_certificate(DomainName="secured.example.com", ValidationMethod="DNS")["CertificateArn"]


def test_with_a_certificate_the_router_serves_https_and_redirects_http(secured, runner, local_aws, certificate):
    done = runner.playbook("playbooks/update_rack.yml", {"rack": RACK, "rack_certificate_arn": certificate})
    assert "created listener convox-%s:443" % RACK in done.stdout, done.stdout[-3000:]
    listeners = listeners_of(local_aws)
    assert sorted(listeners) == [80, 443]
    https = listeners[443]
    assert https["Protocol"] == "HTTPS" and https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert [c["CertificateArn"] for c in https["Certificates"]] == [certificate]
    assert https["DefaultActions"][0]["Type"] == "fixed-response"
    redirect = listeners[80]["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS" and redirect["RedirectConfig"]["Port"] == "443"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"
    # The router's security group already lets 443 in.
    sg = local_aws.client("ec2").describe_security_groups(Filters=[
        {"Name": "tag:Rack", "Values": [RACK]}, {"Name": "tag:convox:role", "Values": ["router"]}])["SecurityGroups"][0]
    assert {(p.get("FromPort"), p.get("ToPort")) for p in sg["IpPermissions"]} >= {(443, 443), (80, 80)}
    info = rack_info(runner)
    assert info["parameters"]["certificate_arn"] == certificate
    assert info["load_balancer"]["listeners"] == [{"port": 80, "protocol": "HTTP", "action": "redirect"},
                                                  {"port": 443, "protocol": "HTTPS", "action": "fixed-response"}]
    again = runner.playbook("playbooks/update_rack.yml", {"rack": RACK})
    assert "no change" in again.stdout, "unset keeps the recorded certificate"
    # A policy changed by hand is put back.
    elb = local_aws.client("elbv2")
    elb.modify_listener(ListenerArn=https["ListenerArn"], SslPolicy="ELBSecurityPolicy-2016-08")
    fixed = runner.playbook("playbooks/update_rack.yml", {"rack": RACK})
    assert "updated listener convox-%s:443" % RACK in fixed.stdout, fixed.stdout[-3000:]
    assert listeners_of(local_aws)[443]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"


def test_removing_the_certificate_leaves_http_only(secured, runner, local_aws, certificate):
    runner.playbook("playbooks/update_rack.yml", {"rack": RACK, "rack_certificate_arn": certificate})
    removed = runner.playbook("playbooks/update_rack.yml", {"rack": RACK, "rack_certificate_arn": ""})
    assert "deleted listener convox-%s:443" % RACK in removed.stdout, removed.stdout[-3000:]
    listeners = listeners_of(local_aws)
    assert sorted(listeners) == [80] and listeners[80]["DefaultActions"][0]["Type"] == "fixed-response"
    assert "certificate_arn" not in rack_info(runner)["parameters"] or not rack_info(runner)["parameters"][
        "certificate_arn"]
    again = runner.playbook("playbooks/update_rack.yml", {"rack": RACK})
    assert "no change" in again.stdout


def test_a_certificate_of_another_region_is_refused_before_any_change(secured, runner, local_aws):
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/1234abcd-12ab-34cd-56ef-1234567890ab"
    before = local_aws.client("elbv2").describe_listeners(
        LoadBalancerArn=secured["info"]["load_balancer"]["arn"])["Listeners"]
    refused = runner.playbook("playbooks/update_rack.yml", {"rack": RACK, "rack_certificate_arn": arn}, expect_rc=2)
    assert "certificate_arn: must be a certificate of the rack's region" in refused.stdout, refused.stdout[-3000:]
    assert local_aws.client("elbv2").describe_listeners(
        LoadBalancerArn=secured["info"]["load_balancer"]["arn"])["Listeners"] == before


def default_group(aws, vpc):
    groups = aws.client("ec2").describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    return [g for g in groups if g["VpcId"] == vpc and g["GroupName"] == "default"][0]


def default_acl(aws, vpc):
    acls = aws.client("ec2").describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"]
    return [a for a in acls if a["VpcId"] == vpc and a["IsDefault"]][0]


def admitted(acl, protocol, port, source="0.0.0.0/0"):
    """Whether the ACL admits this inbound IPv4 traffic: "Rules are evaluated starting with the lowest
    numbered rule. As soon as a rule matches traffic, it's applied regardless of any higher-numbered rule
    that might contradict it" (Amazon VPC User Guide, "Network ACL rules"). The source is the internet
    (0.0.0.0/0 entries) or the VPC's own address (its CIDR's entries)."""
    for entry in sorted((e for e in acl["Entries"] if not e["Egress"] and e.get("CidrBlock")),
                        key=lambda e: e["RuleNumber"]):
        if entry["CidrBlock"] != source:
            continue
        ports = entry.get("PortRange")
        if entry["Protocol"] == "-1" or (entry["Protocol"] == protocol and (
                ports is None or ports["From"] <= port <= ports["To"])):
            return entry["RuleAction"] == "allow"
    return False


def test_the_vpcs_default_group_has_no_rule_and_its_default_acl_refuses_ssh_and_rdp(secured, local_aws):
    """AWS makes a default security group (admitting itself, letting everything out) and a default network
    ACL (admitting everything) with each VPC (Amazon VPC User Guide, "Default security groups for your VPCs",
    "Default network ACL"). CIS AWS Foundations 5.4 and Security Hub EC2.2 want the group without rules; 5.1
    and EC2.21 the ACL refusing SSH and RDP from anywhere (Prowler's ec2_securitygroup_default_restrict_traffic
    and ec2_networkacl_allow_ingress_* checks)."""
    vpc = secured["info"]["vpc_id"]
    group = default_group(local_aws, vpc)
    assert (group["IpPermissions"], group["IpPermissionsEgress"]) == ([], [])
    acl = default_acl(local_aws, vpc)
    subnets = {s["SubnetId"] for s in local_aws.client("ec2").describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]}
    assert {a["SubnetId"] for a in acl["Associations"]} == subnets, "every subnet of the rack uses it"
    assert not admitted(acl, "6", 22) and not admitted(acl, "6", 3389)
    assert admitted(acl, "6", 443) and admitted(acl, "6", 80) and admitted(acl, "6", 40000), "the router and answers"
    assert admitted(acl, "17", 40000) and not admitted(acl, "17", 53), "UDP answers only"
    assert not admitted(acl, "50", 0), "other protocols (here ESP) meet the last rule"
    cidr = local_aws.client("ec2").describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlock"]
    assert admitted(acl, "6", 22, source=cidr) and admitted(acl, "17", 53, source=cidr), "the VPC admits itself"
    assert not [e for e in acl["Entries"] if not e["Egress"] and e.get("CidrBlock") == "0.0.0.0/0"
                and e["Protocol"] == "-1" and e["RuleAction"] == "allow"], "no allow-everything from anywhere"
    assert [(e["Protocol"], e["RuleAction"], e["CidrBlock"]) for e in acl["Entries"]
            if e["Egress"] and e["RuleNumber"] == 100] == [("-1", "allow", "0.0.0.0/0")], "outbound as AWS made it"


def test_rules_added_by_hand_to_the_defaults_are_shown_as_drift_and_removed_by_an_update(secured, runner, local_aws):
    vpc = secured["info"]["vpc_id"]
    ec2 = local_aws.client("ec2")
    group, acl = default_group(local_aws, vpc), default_acl(local_aws, vpc)
    ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.replace_network_acl_entry(NetworkAclId=acl["NetworkAclId"], RuleNumber=110, Protocol="-1", RuleAction="allow",
                                  Egress=False, CidrBlock="0.0.0.0/0")
    # ICMP narrowed to echo requests: path MTU discovery's "fragmentation needed" (type 3) no longer comes in.
    # The type and code are compared as AWS returns them (NetworkAclEntry.IcmpTypeCode; moto_server.py fix 14).
    ec2.replace_network_acl_entry(NetworkAclId=acl["NetworkAclId"], RuleNumber=150, Protocol="1", RuleAction="allow",
                                  Egress=False, CidrBlock="0.0.0.0/0", IcmpTypeCode={"Type": 8, "Code": 0})
    assert admitted(default_acl(local_aws, vpc), "6", 22)
    drift = runner.module({"name": RACK, "drift": True}, module_name="rack_info")["drift"]
    words = [d["message"] for d in drift]
    assert any(m.startswith("security group %s: ingress rule" % group["GroupId"]) and "default group" in m
               for m in words), words
    assert any(m.startswith("network ACL %s: inbound replace rule 110" % acl["NetworkAclId"]) for m in words), words
    assert any(m.startswith("network ACL %s: inbound replace rule 150" % acl["NetworkAclId"]) for m in words), words
    done = runner.playbook("playbooks/update_rack.yml", {"rack": RACK})
    assert "updated security group %s" % group["GroupId"] in done.stdout, done.stdout[-3000:]
    assert "updated network ACL %s" % acl["NetworkAclId"] in done.stdout, done.stdout[-3000:]
    assert default_group(local_aws, vpc)["IpPermissions"] == []
    assert not admitted(default_acl(local_aws, vpc), "6", 22)
    assert [e.get("IcmpTypeCode") for e in default_acl(local_aws, vpc)["Entries"]
            if e["RuleNumber"] == 150 and not e["Egress"]] == [{"Type": -1, "Code": -1}], "every ICMP type again"
    again = runner.playbook("playbooks/update_rack.yml", {"rack": RACK})
    assert "no change" in again.stdout, again.stdout[-3000:]


def test_a_rerun_changes_nothing(secured, runner):
    again = runner.playbook("playbooks/install_rack.yml", VARS)
    assert re.search(r"rack %s is running at \S+: no change" % RACK, again.stdout), again.stdout[-3000:]
    app = runner.playbook("playbooks/create_app.yml", {"rack": RACK, "app": APP})
    assert "app %s of rack %s is running: no change" % (APP, RACK) in app.stdout, app.stdout[-3000:]


def test_what_was_undone_by_hand_is_put_back_then_left_alone(secured, runner, local_aws):
    """As a rack converged before this release: a log group without the key, rotation and Container
    Insights off. The next run puts each back; the one after changes nothing."""
    key = key_of(local_aws)
    local_aws.client("kms").disable_key_rotation(KeyId=key["KeyId"])
    local_aws.client("ecs").update_cluster_settings(
        cluster="convox-%s" % RACK, settings=[{"name": "containerInsights", "value": "disabled"}])
    runner.playbook("playbooks/update_rack.yml", {"rack": RACK})
    assert local_aws.client("kms").get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    cluster = local_aws.client("ecs").describe_clusters(clusters=["convox-%s" % RACK], include=["SETTINGS"])[
        "clusters"][0]
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]
    again = runner.playbook("playbooks/update_rack.yml", {"rack": RACK})
    assert "no change" in again.stdout


def test_container_insights_can_be_turned_off_and_it_is_recorded(secured, runner, local_aws):
    off = runner.playbook("playbooks/update_rack.yml", {"rack": RACK, "rack_container_insights": False})
    # Two changes: the cluster's setting, and the rack's record (convox:container_insights=false on its bucket).
    assert re.search(r"is running at \S+: 2 changes\"", off.stdout), off.stdout[-3000:]
    assert "updated ECS cluster convox-%s" % RACK in off.stdout and "updated bucket convox-%s-" % RACK in off.stdout
    cluster = local_aws.client("ecs").describe_clusters(clusters=["convox-%s" % RACK], include=["SETTINGS"])[
        "clusters"][0]
    assert {"name": "containerInsights", "value": "disabled"} in cluster["settings"]
    kept = runner.playbook("playbooks/update_rack.yml", {"rack": RACK})
    assert "no change" in kept.stdout, "unset keeps the recorded setting"
    runner.playbook("playbooks/update_rack.yml", {"rack": RACK, "rack_container_insights": True})


def test_uninstall_keeps_the_key_without_purge_and_schedules_its_deletion_with_it(secured, runner, local_aws):
    arn = key_of(local_aws)["Arn"]
    log_bucket = secured["info"]["log_bucket"]
    kept = runner.playbook("playbooks/uninstall_rack.yml", {"rack": RACK, "rack_force": True})
    assert "kept KMS key (rack_purge_data=true schedules its deletion): %s" % arn in kept.stdout, kept.stdout[-3000:]
    # The log bucket holds the rack bucket's access logs (the local AWS delivers them at once): data, kept.
    assert re.search(r"kept buckets holding data \(rack_purge_data=true deletes them\): [^\"]*%s" % log_bucket,
                     kept.stdout), kept.stdout[-3000:]
    assert key_of(local_aws)["KeyState"] == "Enabled", "kept, alias and all"
    purged = runner.playbook("playbooks/uninstall_rack.yml", {"rack": RACK, "rack_purge_data": True})
    assert "kept KMS key" not in purged.stdout
    key = local_aws.client("kms").describe_key(KeyId=arn)["KeyMetadata"]
    assert key["KeyState"] == "PendingDeletion"
    aliases = local_aws.client("kms").list_aliases()["Aliases"]
    assert ALIAS not in [a["AliasName"] for a in aliases]
    assert live_tagged(local_aws, RACK) == []
    vpc = secured["info"]["vpc_id"]
    assert local_aws.client("ec2").describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
        "NetworkAcls"] == [], "the default network ACL went with the VPC"
    assert log_bucket not in [b["Name"] for b in local_aws.client("s3").list_buckets()["Buckets"]], "purged too"


def test_a_key_of_the_users_is_used_and_never_deleted(runner, local_aws):
    kms = local_aws.client("kms")
    arn = kms.create_key(Description="the user's")["KeyMetadata"]["Arn"]
    own = {"rack": OWN_KEY_RACK, "rack_high_availability": False, "rack_instance_count": 1, "rack_kms_key": arn}
    runner.playbook("playbooks/install_rack.yml", own)
    try:
        assert log_group(local_aws, "/convox/%s" % OWN_KEY_RACK).get("kmsKeyId") == arn
        default, bucket_key = bucket_encryption(local_aws, rack_info(runner, OWN_KEY_RACK)["bucket"])
        assert default == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": arn} and bucket_key is True
        aliases = [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
        assert "alias/convox/%s" % OWN_KEY_RACK not in aliases, "no key of the rack's own"
        info = rack_info(runner, OWN_KEY_RACK)
        assert info["kms_key"] == arn and info["parameters"]["kms_key"] == arn and info["missing"] == []
        again = runner.playbook("playbooks/install_rack.yml", {"rack": OWN_KEY_RACK})
        assert "no change" in again.stdout, "unset keeps the recorded key"
    finally:
        runner.playbook("playbooks/uninstall_rack.yml", {"rack": OWN_KEY_RACK, "rack_purge_data": True})
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Enabled"
    assert left_of_public(local_aws, OWN_KEY_RACK) == []


def test_a_key_of_another_region_is_refused_before_any_change(runner, local_aws):
    arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    refused = runner.playbook("playbooks/install_rack.yml", {"rack": "wrongkey", "rack_kms_key": arn}, expect_rc=2)
    assert "kms_key: must be a key of the rack's region" in refused.stdout
    assert left_of_public(local_aws, "wrongkey") == []
