# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure documents of AWS's log deliveries into a rack's log bucket, and of its router's doors.

- VPC flow logs under logs/flow/ (delivered by delivery.logs.amazonaws.com);
- the load balancer's access logs under logs/router/ (delivered by Elastic Load Balancing: its
  account of the Region, or its service principal in newer Regions);
- the rack bucket's own server access logs under logs/bucket/ (delivered by logging.s3.amazonaws.com;
  the apps' buckets' under logs/apps/: desired.access_logs_statement);
- the load balancer's attributes and listeners (HTTPS with a certificate).

No AWS calls here: every document is unit tested (tests/unit/test_delivery.py)."""

from __future__ import annotations

from .naming import BUCKET_LOGS_PREFIX, FLOW_LOGS_PREFIX, LOG_DELIVERY_SERVICE, ROUTER_LOGS_PREFIX

# Elastic Load Balancing's account in each Region available before August 2022: the principal
# of the access logs' bucket policy there. Regions available since then take the service principal
# logdelivery.elasticloadbalancing.amazonaws.com instead (Elastic Load Balancing user guide,
# "Enable access logs for your Application Load Balancer", step 2, "Attach a policy to your S3 bucket").
ELB_ACCOUNTS = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
    "us-west-2": "797873946194", "af-south-1": "098369216593", "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580", "ap-south-1": "718504428378", "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887", "ap-southeast-1": "114774131450", "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864", "ca-central-1": "985666609251", "eu-central-1": "054676820928",
    "eu-west-1": "156460612806", "eu-west-2": "652711504416", "eu-south-1": "635631232127",
    "eu-west-3": "009996457667", "eu-north-1": "897822967062", "me-south-1": "076674570225",
    "sa-east-1": "507241528517", "us-gov-west-1": "048591011584", "us-gov-east-1": "190560391635",
    "cn-north-1": "638102146993", "cn-northwest-1": "037604701340",
}
ELB_LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"
S3_LOGGING_SERVICE = "logging.s3.amazonaws.com"
ROUTER_LOGS_SID = "AllowLoadBalancerAccessLogs"
FLOW_LOGS_WRITE_SID = "AllowFlowLogsDelivery"
FLOW_LOGS_ACL_SID = "AllowFlowLogsAclCheck"
BUCKET_LOGS_SID = "AllowS3AccessLogsOfTheRackBucket"

# The HTTPS listener's security policy: TLS 1.3, and TLS 1.2 for older clients; the one "Security
# policies for your Application Load Balancer" (Elastic Load Balancing user guide) recommends.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
HTTP_PORT = 80
HTTPS_PORT = 443
NOT_FOUND_404 = {
    "Type": "fixed-response",
    "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no such app"},
}
# Port 80 sends every request to 443, as Convox's router does (its rack.json: Redirect HTTP_301).
REDIRECT_TO_HTTPS = {
    "Type": "redirect",
    "RedirectConfig": {"Protocol": "HTTPS", "Port": str(HTTPS_PORT), "Host": "#{host}", "Path": "/#{path}",
                       "Query": "#{query}", "StatusCode": "HTTP_301"},
}


def elb_log_principal(partition, region):
    """Who writes the access logs of a load balancer of `region`."""
    account = ELB_ACCOUNTS.get(region)
    if account:
        return {"AWS": "arn:%s:iam::%s:root" % (partition, account)}
    return {"Service": ELB_LOG_DELIVERY_SERVICE}


def router_logs_statement(partition, region, bucket, account):
    """The load balancer may write its access logs under logs/router/AWSLogs/<account>/, nothing else."""
    return {
        "Sid": ROUTER_LOGS_SID,
        "Effect": "Allow",
        "Principal": elb_log_principal(partition, region),
        "Action": "s3:PutObject",
        "Resource": "arn:%s:s3:::%s/%s/AWSLogs/%s/*" % (partition, bucket, ROUTER_LOGS_PREFIX, account),
    }


def flow_logs_statements(partition, region, bucket, account):
    """The two statements of "Amazon S3 bucket permissions for flow logs" (Amazon VPC user guide,
    "Publish flow logs to Amazon S3"): the log delivery service writes under logs/flow/AWSLogs/<account>/
    and reads the bucket's ACL, only for this account's deliveries of this Region
    (aws:SourceAccount, aws:SourceArn: the confused-deputy guard the page shows). The second takes
    s3:ListBucket beside s3:GetBucketAcl, as CloudWatch Logs' "Logs sent to Amazon S3" asks (without it
    the delivery's checks show as AccessDenied in CloudTrail)."""
    source = {"StringEquals": {"aws:SourceAccount": account},
              "ArnLike": {"aws:SourceArn": "arn:%s:logs:%s:%s:*" % (partition, region, account)}}
    write = {
        "Sid": FLOW_LOGS_WRITE_SID,
        "Effect": "Allow",
        "Principal": {"Service": LOG_DELIVERY_SERVICE},
        "Action": "s3:PutObject",
        "Resource": "arn:%s:s3:::%s/%sAWSLogs/%s/*" % (partition, bucket, FLOW_LOGS_PREFIX, account),
        "Condition": {"StringEquals": dict(source["StringEquals"], **{"s3:x-amz-acl": "bucket-owner-full-control"}),
                      "ArnLike": source["ArnLike"]},
    }
    acl = {
        "Sid": FLOW_LOGS_ACL_SID,
        "Effect": "Allow",
        "Principal": {"Service": LOG_DELIVERY_SERVICE},
        "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
        "Resource": "arn:%s:s3:::%s" % (partition, bucket),
        "Condition": source,
    }
    return [write, acl]


def bucket_logs_statement(partition, log_bucket, source_bucket, account):
    """The log bucket takes the rack bucket's server access logs under logs/bucket/, from that bucket
    of this account only (S3 user guide, "Enabling Amazon S3 server access logging": a bucket policy
    for logging.s3.amazonaws.com with aws:SourceArn and aws:SourceAccount)."""
    return {
        "Sid": BUCKET_LOGS_SID,
        "Effect": "Allow",
        "Principal": {"Service": S3_LOGGING_SERVICE},
        "Action": "s3:PutObject",
        "Resource": "arn:%s:s3:::%s/%s*" % (partition, log_bucket, BUCKET_LOGS_PREFIX),
        "Condition": {"StringEquals": {"aws:SourceAccount": account},
                      "ArnLike": {"aws:SourceArn": "arn:%s:s3:::%s" % (partition, source_bucket)}},
    }


def flow_logs_destination(partition, bucket):
    return "arn:%s:s3:::%s/%s" % (partition, bucket, FLOW_LOGS_PREFIX)


def load_balancer_attributes(bucket):
    """What the router's attributes are: invalid header fields dropped, deletion protection on, access
    logs into `bucket` (the rack's log bucket) under logs/router/."""
    return {
        "routing.http.drop_invalid_header_fields.enabled": "true",
        "deletion_protection.enabled": "true",
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": bucket,
        "access_logs.s3.prefix": ROUTER_LOGS_PREFIX,
    }


def listeners(certificate_arn):
    """{port: (protocol, default action, HTTPS settings or None)} the router should have: without a
    certificate HTTP on 80 answering 404; with one HTTPS on 443 answering 404 and 80 redirecting to it."""
    if not certificate_arn:
        return {HTTP_PORT: ("HTTP", NOT_FOUND_404, None)}
    return {HTTP_PORT: ("HTTP", REDIRECT_TO_HTTPS, None),
            HTTPS_PORT: ("HTTPS", NOT_FOUND_404, {"SslPolicy": TLS_POLICY,
                                                  "Certificates": [{"CertificateArn": certificate_arn}]})}
