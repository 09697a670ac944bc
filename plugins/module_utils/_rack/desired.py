# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure functions: the desired configuration of each rack resource.

No AWS calls here, so that every document the rack applies can be unit tested.
"""

from __future__ import annotations

import base64
import json

from .naming import ACCESS_LOGS_PREFIX, LOG_DELIVERY_SERVICE, LOGS_PREFIX

# The ECS-optimised Amazon Linux 2023 image of today, per architecture (AWS: "Retrieving Amazon
# ECS-optimized Linux AMI metadata": .../amazon-linux-2023/recommended and .../arm64/recommended).
ECS_AMI_PARAMETERS = {
    "x86_64": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
    "arm64": "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id",
}
ECS_AMI_PARAMETER = ECS_AMI_PARAMETERS["x86_64"]
ROOT_DEVICE = "/dev/xvda"
ROOT_VOLUME_GIB = 30
NONCURRENT_VERSION_DAYS = 30
# Of every bucket: older versions expire, unfinished uploads are aborted.
NONCURRENT_VERSIONS_RULE = {
    "ID": "expire-noncurrent-versions",
    "Filter": {"Prefix": ""},
    "Status": "Enabled",
    "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_VERSION_DAYS},
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
}


def ec2_trust_policy():
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }


def instance_role_policy(partition, region, account, cluster, log_group):
    """What an ECS container instance needs, and no more: join this cluster, pull images, write logs."""
    cluster_arn = "arn:%s:ecs:%s:%s:cluster/%s" % (partition, region, account, cluster)
    instances_arn = "arn:%s:ecs:%s:%s:container-instance/%s/*" % (partition, region, account, cluster)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "JoinCluster",
                "Effect": "Allow",
                "Action": [
                    "ecs:RegisterContainerInstance",
                    "ecs:DeregisterContainerInstance",
                    "ecs:SubmitAttachmentStateChanges",
                    "ecs:SubmitContainerStateChange",
                    "ecs:SubmitTaskStateChange",
                ],
                "Resource": cluster_arn,
            },
            {
                "Sid": "AgentSession",
                "Effect": "Allow",
                "Action": ["ecs:Poll", "ecs:StartTelemetrySession", "ecs:UpdateContainerInstancesState"],
                "Resource": instances_arn,
            },
            {
                # These actions do not support resource-level permissions.
                "Sid": "AgentDiscovery",
                "Effect": "Allow",
                "Action": ["ecs:DiscoverPollEndpoint", "ecr:GetAuthorizationToken"],
                "Resource": "*",
            },
            {
                # Only the rack's apps' repositories, convox/<rack>/<app> (app.AppNames.repository): the
                # rack's log group name without its leading slash, then the app.
                "Sid": "PullImages",
                "Effect": "Allow",
                "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                "Resource": "arn:%s:ecr:%s:%s:repository/%s/*" % (partition, region, account, log_group.lstrip("/")),
            },
            {
                "Sid": "WriteLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [
                    "arn:%s:logs:%s:%s:log-group:%s:*" % (partition, region, account, log_group),
                    "arn:%s:logs:%s:%s:log-group:%s/*" % (partition, region, account, log_group),
                ],
            },
        ],
    }


def tls_only_bucket_policy(partition, bucket):
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": ["arn:%s:s3:::%s" % (partition, bucket), "arn:%s:s3:::%s/*" % (partition, bucket)],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def lifecycle_rules(log_days):
    return [
        {
            "ID": "expire-logs",
            "Filter": {"Prefix": LOGS_PREFIX},
            "Status": "Enabled",
            "Expiration": {"Days": int(log_days)},
        },
        NONCURRENT_VERSIONS_RULE,
    ]


def lifecycle_key(rules):
    """What we compare of lifecycle rules, whatever shape AWS returns them in."""
    out = []
    for r in rules or []:
        flt = r.get("Filter") or {}
        prefix = flt.get("Prefix", r.get("Prefix", "")) or ""
        out.append((
            r.get("ID"),
            prefix,
            r.get("Status"),
            (r.get("Expiration") or {}).get("Days"),
            (r.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays"),
            (r.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation"),
        ))
    return sorted(out, key=str)


def user_data(cluster):
    script = "\n".join([
        "#!/bin/bash",
        "cat >> /etc/ecs/ecs.config <<'CONFIG'",
        "ECS_CLUSTER=%s" % cluster,
        "ECS_ENABLE_CONTAINER_METADATA=true",
        "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true",
        "CONFIG",
        "",
    ])
    return base64.b64encode(script.encode()).decode()


def launch_template_data(image_id, instance_type, profile_arn, security_group_id, cluster, tags, kms_key=None):
    ebs = {"VolumeSize": ROOT_VOLUME_GIB, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True}
    if kms_key:
        ebs["KmsKeyId"] = kms_key   # the rack's key; without it EC2 uses the account's aws/ebs key
    return {
        "ImageId": image_id,
        "InstanceType": instance_type,
        "IamInstanceProfile": {"Arn": profile_arn},
        "SecurityGroupIds": [security_group_id],
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"},
        "BlockDeviceMappings": [
            {
                "DeviceName": ROOT_DEVICE,
                "Ebs": ebs,
            }
        ],
        "UserData": user_data(cluster),
        "TagSpecifications": [
            {"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}
        ],
    }


def launch_template_key(data):
    """The parts of launch template data we manage, normalised for comparison."""
    data = data or {}
    md = data.get("MetadataOptions") or {}
    bdm = []
    for m in data.get("BlockDeviceMappings") or []:
        ebs = m.get("Ebs") or {}
        bdm.append((m.get("DeviceName"), ebs.get("VolumeSize"), ebs.get("VolumeType"), bool(ebs.get("Encrypted")),
                    ebs.get("KmsKeyId")))
    vol_tags = []
    for spec in data.get("TagSpecifications") or []:
        if spec.get("ResourceType") == "volume":
            vol_tags = sorted((t["Key"], t["Value"]) for t in spec.get("Tags", []))
    return {
        "ImageId": data.get("ImageId"),
        "InstanceType": data.get("InstanceType"),
        "IamInstanceProfile": (data.get("IamInstanceProfile") or {}).get("Arn"),
        "SecurityGroupIds": sorted(data.get("SecurityGroupIds") or []),
        "Metadata": (md.get("HttpTokens"), int(md.get("HttpPutResponseHopLimit") or 0)),
        "BlockDeviceMappings": bdm,
        "UserData": data.get("UserData"),
        "VolumeTags": vol_tags,
    }


def router_ingress():
    """The load balancer's door: HTTP and HTTPS from anywhere, nothing else."""
    return [
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        for port in (80, 443)
    ]


def instance_ingress(router_sg_id, instances_sg_id):
    """Instances admit the load balancer and each other, never the VPC or the internet."""
    return [
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": router_sg_id}]},
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": instances_sg_id}]},
    ]


# The default network ACL's inbound rules (AWS makes it with the VPC admitting everything; every subnet of the
# rack uses it). The VPC itself is admitted first; from anywhere else SSH and RDP are refused, TCP and the UDP
# ephemeral ports (answers to what the instances sent out) and ICMP (path MTU discovery) admitted; every other
# protocol meets the ACL's last rule (*, deny), which AWS keeps. Security groups still decide what reaches an
# instance: this is the second layer that CIS AWS Foundations 5.1 (and Security Hub EC2.21) ask for.
# Outbound rules stay as AWS makes them (everything). [(rule number, protocol, action, cidr, from, to)]: from and to
# are the ports of TCP and UDP, ICMP's type and code (-1: all), None for all protocols.
ACL_ANYWHERE = "0.0.0.0/0"


def network_acl_ingress(vpc_cidr):
    return [
        (100, "-1", "allow", vpc_cidr, None, None),
        (110, "6", "deny", ACL_ANYWHERE, 22, 22),
        (120, "6", "deny", ACL_ANYWHERE, 3389, 3389),
        (130, "6", "allow", ACL_ANYWHERE, 0, 65535),
        (140, "17", "allow", ACL_ANYWHERE, 1024, 65535),
        (150, "1", "allow", ACL_ANYWHERE, -1, -1),
    ]


def acl_entry_key(entry):
    """An inbound IPv4 entry of DescribeNetworkAcls as network_acl_ingress's tuple."""
    ports, icmp = entry.get("PortRange") or {}, entry.get("IcmpTypeCode") or {}
    proto = str(entry.get("Protocol"))
    lo, hi = ((ports.get("From"), ports.get("To")) if proto in ("6", "17") else
              (icmp.get("Type"), icmp.get("Code")) if proto == "1" else (None, None))
    return (entry.get("RuleNumber"), proto, entry.get("RuleAction"), entry.get("CidrBlock"), lo, hi)


def acl_entry_args(key):
    """CreateNetworkAclEntry's (and ReplaceNetworkAclEntry's) arguments for one network_acl_ingress tuple."""
    number, proto, action, cidr, lo, hi = key
    args = {"RuleNumber": number, "Protocol": proto, "RuleAction": action, "Egress": False, "CidrBlock": cidr}
    if proto == "1":
        args["IcmpTypeCode"] = {"Type": lo, "Code": hi}
    elif lo is not None:
        args["PortRange"] = {"From": lo, "To": hi}
    return args


def permission_keys(permissions):
    """Flatten IpPermissions into comparable (protocol, from, to, source) tuples."""
    keys = set()
    for p in permissions or []:
        proto = str(p.get("IpProtocol"))
        lo = p.get("FromPort", -1) if proto != "-1" else -1
        hi = p.get("ToPort", -1) if proto != "-1" else -1
        for r in p.get("IpRanges", []):
            keys.add((proto, lo, hi, "cidr", r["CidrIp"]))
        for r in p.get("Ipv6Ranges", []):
            keys.add((proto, lo, hi, "cidr6", r["CidrIpv6"]))
        for g in p.get("UserIdGroupPairs", []):
            keys.add((proto, lo, hi, "sg", g["GroupId"]))
    return keys


def permissions_from_keys(keys):
    out = []
    for proto, lo, hi, kind, src in sorted(keys):
        perm = {"IpProtocol": proto}
        if proto != "-1":
            perm.update(FromPort=lo, ToPort=hi)
        if kind == "cidr":
            perm["IpRanges"] = [{"CidrIp": src}]
        elif kind == "cidr6":
            perm["Ipv6Ranges"] = [{"CidrIpv6": src}]
        else:
            perm["UserIdGroupPairs"] = [{"GroupId": src}]
        out.append(perm)
    return out


def _document(policy):
    """A policy document as a dict (AWS returns some as JSON text), or None when it is none or unreadable."""
    if isinstance(policy, str):
        try:
            return json.loads(policy)
        except ValueError:
            return None
    return policy


# The statements AWS itself appends to a bucket's policy when a log delivery to it is set up and the policy
# lacks them (CloudWatch Logs user guide, "Logs sent to Amazon S3": "that statement is appended to the
# bucket's resource policy"; Amazon VPC user guide, "Amazon S3 bucket permissions for flow logs"), under these
# Sids, for the log delivery service. The rack's own statements already allow the delivery: AWS's are no drift.
AWS_LOG_DELIVERY_SIDS = ("AWSLogDeliveryWrite", "AWSLogDeliveryAclCheck")


def added_by_aws(statement):
    principal = statement.get("Principal")
    return (str(statement.get("Sid") or "").startswith(AWS_LOG_DELIVERY_SIDS)
            and isinstance(principal, dict) and principal.get("Service") == LOG_DELIVERY_SERVICE)


def policy_equal(current, wanted):
    """Whether a bucket's policy is the wanted one, the statements AWS adds for log deliveries aside."""
    current = _document(current)
    if current is None:
        return False
    if isinstance(current.get("Statement"), list):
        current = dict(current, Statement=[st for st in current["Statement"] if not added_by_aws(st)])
    return _canon(current) == _canon(wanted)


def _canon(doc):
    if isinstance(doc, dict):
        return {k: _canon(v) for k, v in doc.items()}
    if isinstance(doc, list):
        items = [_canon(v) for v in doc]
        if len(items) == 1 and not isinstance(doc[0], dict):
            return items[0]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
    return doc


# -- buckets: encryption, and what an app's bucket adds (pure) ------------------------------------------------------
ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]}
ACCESS_LOGS_SID = "AllowS3AccessLogsOfApps"
LOGGING_SERVICE = "logging.s3.amazonaws.com"


def access_logs_statement(partition, bucket, rack, account):
    """The log bucket's policy statement that lets S3 deliver the rack's apps' access logs (the rack's
    own bucket's, on a rack installed by 0.1.0 until its next update).

    With owner-enforced object ownership, ACL grants to the log delivery group do not work: a
    bucket policy must allow the logging service to put objects, here only under logs/apps/,
    only for source buckets of this account named as this rack's apps' buckets are."""
    return {
        "Sid": ACCESS_LOGS_SID,
        "Effect": "Allow",
        "Principal": {"Service": LOGGING_SERVICE},
        "Action": "s3:PutObject",
        "Resource": "arn:%s:s3:::%s/%s*" % (partition, bucket, ACCESS_LOGS_PREFIX),
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": "arn:%s:s3:::convox-%s-*" % (partition, rack)},
        },
    }


def with_statement(policy, statement):
    """The policy document (a JSON string, a dict or None) with `statement` in place of any
    statement of the same Sid, every other statement kept."""
    if isinstance(policy, str):
        policy = json.loads(policy)
    doc = dict(policy or {"Version": "2012-10-17"})
    others = [s for s in doc.get("Statement", []) if s.get("Sid") != statement["Sid"]]
    doc["Statement"] = others + [statement]
    return doc


def has_sid(policy, sid):
    """Whether the policy document has a statement of that Sid."""
    return any(s.get("Sid") == sid for s in (_document(policy) or {}).get("Statement", []))


def has_statement(policy, statement):
    policy = _document(policy)
    if not policy:
        return False
    return any(s.get("Sid") == statement["Sid"] and policy_equal(s, statement) for s in policy.get("Statement", []))


def app_lifecycle_rules():
    """Noncurrent versions of release artifacts expire; current ones stay."""
    return [NONCURRENT_VERSIONS_RULE]


def logging_config(names, target=None):
    """Where an app's bucket logs its accesses: the rack's log bucket (`target`: the rack's own bucket
    on a rack that has no log bucket yet), under logs/apps/<app>/."""
    return {"TargetBucket": target or names.log_bucket, "TargetPrefix": names.access_logs_prefix}


# -- the rack's KMS key (parts/kms.py) ------------------------------------------------------------------------------
# The service-linked role Auto Scaling launches instances with: it creates their encrypted EBS
# volumes, so the key policy must let it use the key and create grants for the volumes (AWS Auto
# Scaling user guide, "Required AWS KMS key policy for use with encrypted volumes").
AUTOSCALING_SERVICE_ROLE = "aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


def kms_alias(rack):
    return "alias/convox/%s" % rack


def kms_key_policy(partition, region, account, log_group):
    """The rack key's policy: the account administers it (and IAM policies of the account may grant
    its use, which is how the operator writes the apps' SSE-KMS buckets: S3 uses the key on behalf of
    whoever writes the object); CloudWatch Logs uses it only for the rack's log groups and its apps'
    (encryption context aws:logs:arn: CloudWatch Logs user guide, "Encrypt log data in CloudWatch
    Logs using AWS KMS", step 2); Auto Scaling's service-linked role for the instances' volumes."""
    root = "arn:%s:iam::%s:root" % (partition, account)
    asg_role = "arn:%s:iam::%s:role/%s" % (partition, account, AUTOSCALING_SERVICE_ROLE)
    group_arn = "arn:%s:logs:%s:%s:log-group:%s" % (partition, region, account, log_group)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*",
             "Resource": "*"},
            {"Sid": "CloudWatchLogsOfTheRack", "Effect": "Allow",
             "Principal": {"Service": "logs.%s.amazonaws.com" % region},
             "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
             "Resource": "*",
             "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": [group_arn, group_arn + "/*"]}}},
            {"Sid": "AutoScalingVolumes", "Effect": "Allow", "Principal": {"AWS": asg_role},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
             "Resource": "*"},
            {"Sid": "AutoScalingVolumeGrants", "Effect": "Allow", "Principal": {"AWS": asg_role},
             "Action": "kms:CreateGrant", "Resource": "*",
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
        ],
    }


def kms_encryption(key_arn):
    """Default encryption of a bucket with the rack's key: SSE-KMS with an S3 Bucket Key (fewer KMS
    requests, hence cost: S3 user guide, "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys")."""
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                       "BucketKeyEnabled": True}]}
