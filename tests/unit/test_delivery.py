"""The log deliveries' bucket policy statements and the router's listeners (delivery.py), for several
Regions and partitions. The local AWS evaluates no bucket policy, so what AWS would accept is checked
here against its documentation:

- "Enable access logs for your Application Load Balancer" (Elastic Load Balancing user guide), step 2:
  in a Region available before August 2022 the principal is Elastic Load Balancing's account of that
  Region (us-east-1 127311923021, eu-west-1 156460612806, us-gov-west-1 048591011584, cn-north-1
  638102146993, ...); in a newer Region the service principal logdelivery.elasticloadbalancing.amazonaws.com;
  the resource is <bucket>/<prefix>/AWSLogs/<account>/*.
- "Publish flow logs to Amazon S3" (Amazon VPC user guide), "Amazon S3 bucket permissions for flow
  logs": delivery.logs.amazonaws.com may s3:PutObject under <folder>/AWSLogs/<account>/ with
  s3:x-amz-acl bucket-owner-full-control, and s3:GetBucketAcl on the bucket, both with
  aws:SourceAccount and aws:SourceArn arn:<partition>:logs:<region>:<account>:*. "Logs sent to Amazon S3"
  (CloudWatch Logs user guide, a note): s3:ListBucket too, with the same conditions as s3:GetBucketAcl,
  else the delivery's checks show as AccessDenied in CloudTrail.
- "Enabling Amazon S3 server access logging" (S3 user guide): logging.s3.amazonaws.com may
  s3:PutObject under the target prefix, with aws:SourceArn the source bucket and aws:SourceAccount.
"""

from __future__ import annotations

import fnmatch
import json
import types

import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack import delivery as L
from ansible_collections.convox.rack.plugins.module_utils._rack import desired as D
from ansible_collections.convox.rack.plugins.module_utils._rack import install
from ansible_collections.convox.rack.plugins.module_utils._rack.naming import RackNames
from ansible_collections.convox.rack.plugins.module_utils._rack.params import DEFAULTS

ACCOUNT = "123456789012"


@pytest.mark.parametrize("partition, region, principal", [
    ("aws", "us-east-1", {"AWS": "arn:aws:iam::127311923021:root"}),
    ("aws", "eu-west-1", {"AWS": "arn:aws:iam::156460612806:root"}),
    ("aws", "ap-southeast-2", {"AWS": "arn:aws:iam::783225319266:root"}),
    ("aws-us-gov", "us-gov-west-1", {"AWS": "arn:aws-us-gov:iam::048591011584:root"}),
    ("aws-cn", "cn-north-1", {"AWS": "arn:aws-cn:iam::638102146993:root"}),
    # Regions opened since August 2022: the service principal.
    ("aws", "eu-central-2", {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}),
    ("aws", "ap-south-2", {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}),
    ("aws", "il-central-1", {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}),
])
def test_the_load_balancer_logs_principal_is_the_regions(partition, region, principal):
    names = RackNames("prod", region, ACCOUNT)
    statement = L.router_logs_statement(partition, region, names.bucket, ACCOUNT)
    assert statement["Principal"] == principal
    assert statement["Action"] == "s3:PutObject" and statement["Effect"] == "Allow"
    assert statement["Resource"] == "arn:%s:s3:::%s/logs/router/AWSLogs/%s/*" % (partition, names.bucket, ACCOUNT)
    # The objects ELB writes (bucket/prefix/AWSLogs/account/elasticloadbalancing/region/...) match it.
    written = "arn:%s:s3:::%s/%s/AWSLogs/%s/elasticloadbalancing/%s/2026/12/04/x.log.gz" % (
        partition, names.bucket, L.load_balancer_attributes(names.bucket)["access_logs.s3.prefix"], ACCOUNT, region)
    assert fnmatch.fnmatchcase(written, statement["Resource"])


def test_the_attributes_send_access_logs_to_the_given_bucket_and_protect_the_router():
    attrs = L.load_balancer_attributes("convox-prod-0123456789ab")
    assert attrs == {"routing.http.drop_invalid_header_fields.enabled": "true", "deletion_protection.enabled": "true",
                     "access_logs.s3.enabled": "true", "access_logs.s3.bucket": "convox-prod-0123456789ab",
                     "access_logs.s3.prefix": "logs/router"}
    # ELB: the prefix must not start or end with a slash, nor include AWSLogs.
    prefix = attrs["access_logs.s3.prefix"]
    assert not prefix.startswith("/") and not prefix.endswith("/") and "AWSLogs" not in prefix


@pytest.mark.parametrize("partition, region", [("aws", "us-east-1"), ("aws-cn", "cn-northwest-1"),
                                               ("aws-us-gov", "us-gov-east-1")])
def test_flow_logs_statements_are_the_documented_two_with_the_confused_deputy_guard(partition, region):
    bucket = RackNames("prod", region, ACCOUNT).bucket
    write, acl = L.flow_logs_statements(partition, region, bucket, ACCOUNT)
    source_arn = "arn:%s:logs:%s:%s:*" % (partition, region, ACCOUNT)
    assert write["Principal"] == acl["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == "arn:%s:s3:::%s/logs/flow/AWSLogs/%s/*" % (partition, bucket, ACCOUNT)
    assert write["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT, "s3:x-amz-acl": "bucket-owner-full-control"},
                                  "ArnLike": {"aws:SourceArn": source_arn}}
    assert acl["Action"] == ["s3:GetBucketAcl", "s3:ListBucket"] and acl["Resource"] == "arn:%s:s3:::%s" % (partition, bucket)
    assert acl["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": source_arn}}
    # The flow log's destination is that folder of the bucket.
    assert L.flow_logs_destination(partition, bucket) == "arn:%s:s3:::%s/logs/flow/" % (partition, bucket)


def test_the_log_bucket_takes_only_the_rack_buckets_access_logs():
    names = RackNames("prod", "eu-west-1", ACCOUNT)
    statement = L.bucket_logs_statement("aws", names.log_bucket, names.bucket, ACCOUNT)
    assert statement["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert statement["Resource"] == "arn:aws:s3:::%s/logs/bucket/*" % names.log_bucket
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                      "ArnLike": {"aws:SourceArn": "arn:aws:s3:::%s" % names.bucket}}


def a_run(region="eu-west-1", partition="aws"):
    """What install.rack_bucket and install.log_bucket read of a run."""
    return types.SimpleNamespace(
        names=RackNames("prod", region, ACCOUNT), region=region, tags={"System": "convox", "Rack": "prod"},
        identity=types.SimpleNamespace(partition=partition, account=ACCOUNT), wanted=dict(DEFAULTS, instance_count=1),
        state=types.SimpleNamespace(recorded_parameters={}), deadline=types.SimpleNamespace(seconds=1800))


@pytest.mark.parametrize("partition, region", [("aws", "us-east-1"), ("aws", "eu-central-2"), ("aws-cn", "cn-north-1")])
def test_the_log_bucket_takes_every_delivery_each_under_its_prefix_and_the_rack_bucket_none(partition, region):
    run = a_run(region, partition)
    names = run.names
    spec = install.log_bucket(run)
    assert spec.name == names.log_bucket and spec.kms_key is None, "SSE-S3: what ELB and S3 deliver to"
    by_sid = {st["Sid"]: st for st in spec.policy["Statement"]}
    assert sorted(by_sid) == ["AllowFlowLogsAclCheck", "AllowFlowLogsDelivery", "AllowLoadBalancerAccessLogs",
                              "AllowS3AccessLogsOfApps", "AllowS3AccessLogsOfTheRackBucket", "DenyInsecureTransport"]
    log_arn = "arn:%s:s3:::%s" % (partition, names.log_bucket)
    prefixes = {"AllowS3AccessLogsOfTheRackBucket": "/logs/bucket/", "AllowS3AccessLogsOfApps": "/logs/apps/",
                "AllowFlowLogsDelivery": "/logs/flow/AWSLogs/%s/" % ACCOUNT,
                "AllowLoadBalancerAccessLogs": "/logs/router/AWSLogs/%s/" % ACCOUNT}
    for sid, prefix in prefixes.items():
        assert by_sid[sid]["Resource"] == log_arn + prefix + "*", sid
    assert by_sid["AllowFlowLogsAclCheck"]["Resource"] == log_arn
    assert by_sid["AllowLoadBalancerAccessLogs"]["Principal"] == L.elb_log_principal(partition, region)
    # what points at it: the router's attributes and the flow log's destination
    assert L.load_balancer_attributes(names.log_bucket)["access_logs.s3.bucket"] == names.log_bucket
    assert L.flow_logs_destination(partition, names.log_bucket) == log_arn + "/logs/flow/"

    key = "arn:%s:kms:%s:%s:key/k" % (partition, region, ACCOUNT)
    rack = install.rack_bucket(run, key)
    assert rack.name == names.bucket and rack.kms_key == key
    assert [st["Sid"] for st in rack.policy["Statement"]] == ["DenyInsecureTransport"]
    assert rack.logging == {"TargetBucket": names.log_bucket, "TargetPrefix": "logs/bucket/"}


def test_the_log_bucket_name_fits_s3_for_the_longest_rack_name():
    names = RackNames("r" * 25, "ap-southeast-3", ACCOUNT)
    assert names.log_bucket == names.bucket + "-logs" and len(names.log_bucket) == 50 <= 63


def test_listeners_without_and_with_a_certificate():
    assert L.listeners("") == {80: ("HTTP", L.NOT_FOUND_404, None)}
    cert = "arn:aws:acm:us-east-1:%s:certificate/1234abcd-12ab-34cd-56ef-1234567890ab" % ACCOUNT
    https = L.listeners(cert)
    assert https[80] == ("HTTP", L.REDIRECT_TO_HTTPS, None)
    assert L.REDIRECT_TO_HTTPS["RedirectConfig"]["StatusCode"] == "HTTP_301"
    assert L.REDIRECT_TO_HTTPS["RedirectConfig"]["Protocol"] == "HTTPS"
    assert https[443] == ("HTTPS", L.NOT_FOUND_404, {"SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
                                                     "Certificates": [{"CertificateArn": cert}]})


def test_statements_aws_appends_for_log_delivery_are_no_drift_others_are():
    """CreateFlowLogs appends AWS's statements to a policy that lacks them (CloudWatch Logs user guide, "Logs
    sent to Amazon S3"); they are AWS's, not a change to undo. A statement of that Sid for anyone else is drift."""
    wanted = D.tls_only_bucket_policy("aws", "b-logs")
    wanted["Statement"] += L.flow_logs_statements("aws", "us-east-1", "b-logs", ACCOUNT)
    aws_write = {"Sid": "AWSLogDeliveryWrite", "Effect": "Allow", "Principal": {"Service": L.LOG_DELIVERY_SERVICE},
                 "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b-logs/logs/flow/AWSLogs/%s/*" % ACCOUNT}
    current = dict(wanted, Statement=wanted["Statement"] + [aws_write])
    assert D.policy_equal(json.dumps(current), wanted)
    someone = dict(aws_write, Principal={"AWS": "arn:aws:iam::210987654321:root"})
    assert not D.policy_equal(json.dumps(dict(wanted, Statement=wanted["Statement"] + [someone])), wanted)
    assert not D.policy_equal(json.dumps(dict(wanted, Statement=[aws_write])), wanted), "the rack's own still count"
