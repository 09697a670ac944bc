# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rack parameters: defaults and validation (the argument spec is in spec.py).

Everything here runs before the first AWS call, so that bad input fails fast and leaves
nothing behind.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from .errors import ValidationError
from .naming import BUCKET_NAME_MAX, DIGEST_LEN, MAX_RACK_AND_APP, MAX_RACK_NAME
from .tags import RESERVED_TAG_KEYS, STATE_TAG_PREFIX

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                      1096, 1827, 2192, 2557, 2922, 3288, 3653)

RACK_NAME_RE = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?\Z")
# Convox's rule for app names (lowercase letters, digits and hyphens, starting with a letter), and
# an ending that ECR repository names accept (a letter or a digit).
APP_NAME_RE = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?\Z")
# family (letters, digits, hyphens, at least one digit: t3, m6gd, u-6tb1) "." size
INSTANCE_TYPE_RE = re.compile(
    r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|(?:[1-9][0-9]*)?xlarge|metal(-[1-9][0-9]*xl)?)\Z"
)
# The longest EC2 instance type has 20 characters (u7inh-32tb.480xlarge).
MAX_INSTANCE_TYPE = 32
# ECS registers at most 5,000 container instances in a cluster (a quota AWS does not raise).
MAX_INSTANCE_COUNT = 5000
# The longest wait_timeout: a day.
MAX_WAIT_TIMEOUT = 86400
IMAGE_ID_RE = re.compile(r"^ami-[0-9a-f]{8,17}\Z")
# image_id: latest moves the rack to today's ECS-optimised AMI of its architecture (parts/compute.py
# image_id); the AMI id it resolves to is what is recorded, so later runs keep it.
LATEST_IMAGE = "latest"
# A KMS key's ARN (CloudWatch Logs' kmsKeyId takes a key ARN only, not an alias: AssociateKmsKey API
# reference); the key id a UUID or a multi-Region key's mrk-<32 hex>.
KMS_KEY_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws(?:-[a-z]+)*):kms:(?P<region>[a-z0-9-]{1,63}):(?P<account>[0-9]{12}):key/"
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})\Z")
# The ARN of an ACM certificate (the HTTPS listener's: Elastic Load Balancing takes ACM or IAM
# certificates; the rack takes ACM's, of its own region).
CERTIFICATE_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws(?:-[a-z]+)*):acm:(?P<region>[a-z0-9-]{1,63}):(?P<account>[0-9]{12}):certificate/"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
# The ARN of an IAM managed policy: a customer managed policy of an account (12 digits) or an AWS
# managed one (account "aws"), with an optional path. Names and path segments take IAM's characters
# except the comma, which the rack's bucket tags (where the ARN is recorded) do not take.
POLICY_NAME_CHARS = "A-Za-z0-9+=.@_-"
POLICY_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws(?:-[a-z]+)*):iam::(?P<account>[0-9]{12}|aws):policy/"
    r"(?P<path>(?:[%s]+/)*)(?P<name>[%s]{1,128})\Z" % (POLICY_NAME_CHARS, POLICY_NAME_CHARS))
# A region is a DNS label of AWS's endpoints: 63 characters at most.
REGION_RE = re.compile(r"^(?=.{1,63}\Z)[a-z]{2,4}(-[a-z]+)+-[0-9]+\Z")
# Networks no instance can be addressed in: "this network", loopback, link-local (where the
# instance metadata service and the VPC's DNS answer), multicast and the reserved 240.0.0.0/4.
UNUSABLE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4"))

# AWS's tag limits (IAM, CloudWatch Logs, ELB, ECS: the strictest of the services a rack tags):
# keys of 1 to 128 characters, values of at most 256, both of letters, digits, spaces and
# _ . : / = + - @ only; 50 tags a resource. The rack's bucket carries up to 16 tags of the
# collection (System, Rack, Type, the parameters, version, status, lease, error), one more for each of
# the parameters recorded only when set: a permissions boundary (convox:permissions_boundary), a
# key of the user's (convox:kms_key) and a certificate (convox:certificate_arn); an app's 4.
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
TAG_PUNCTUATION = "_.:/=+-@"
MAX_RACK_USER_TAGS = 50 - 16
# One tag fewer for the user when the rack records a permissions boundary.
MAX_RACK_USER_TAGS_WITH_BOUNDARY = MAX_RACK_USER_TAGS - 1
MAX_APP_USER_TAGS = 50 - 4


# Parameters recorded on the rack (in its bucket's tags) and how to read them back.
PARAMETER_KINDS = {
    "instance_type": str,
    "instance_count": int,
    "private": bool,
    "high_availability": bool,
    "vpc_cidr": str,
    "internal_only": bool,
    "log_retention": int,
    "image_id": str,
    "permissions_boundary": str,
    "kms_key": str,
    "container_insights": bool,
    "flow_logs": bool,
    "certificate_arn": str,
}

DEFAULTS = {
    "instance_type": "t3.small",
    "private": False,
    "high_availability": True,
    "vpc_cidr": "10.0.0.0/16",
    "internal_only": False,
    "log_retention": 365,  # a year: CIS/Prowler ask at least 365 days (docs/security.md)
    "image_id": "",
    "permissions_boundary": "",
    "kms_key": "",          # "": the rack's own key, alias/convox/<rack> (parts/kms.py)
    "container_insights": True,
    "flow_logs": True,
    "certificate_arn": "",  # "": HTTP on port 80 only (no HTTPS listener)
}

# Parameters that cannot change once the rack exists, and the message why.
IMMUTABLE = {
    "vpc_cidr": "the VPC and its subnets are addressed from it",
    "high_availability": "the number of availability zones is fixed at install",
}


def shown(value, limit=64):
    """A value as a message shows it: its repr, cut after `limit` characters."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return "%s... (%d characters)" % (text[:limit], len(value) if isinstance(value, str) else len(text))


def validate_name(name, field="name", max_len=MAX_RACK_NAME):
    if not isinstance(name, str) or not name:
        raise ValidationError(field, "is required")
    if not RACK_NAME_RE.match(name):
        raise ValidationError(
            field,
            "must be lowercase letters, digits and hyphens, start with a letter and not end with a hyphen"
            " (got %s)" % shown(name),
        )
    if len(name) > max_len:
        raise ValidationError(
            field,
            "is %d characters; at most %d fit every AWS name derived from it"
            " (load balancer names are limited to 32 characters: convox-<name>)" % (len(name), max_len),
        )


def validate_vpc_cidr(value):
    try:
        net = ipaddress.ip_network(value, strict=True)
    except (TypeError, ValueError) as e:
        why = str(e) if len(str(e)) <= 120 else "got %s" % shown(value)
        raise ValidationError("vpc_cidr", "must be an IPv4 network in CIDR notation with no host bits set (%s)" % why)
    if net.version != 4:
        raise ValidationError("vpc_cidr", "must be an IPv4 network (got %s)" % value)
    if str(net) != value:
        # ipaddress also reads netmasks (10.0.0.0/255.255.0.0) and padded prefixes (/016), which
        # AWS does not; the recorded parameter must also compare equal to what AWS returns.
        raise ValidationError("vpc_cidr", "must be written in CIDR notation, address/prefix (got %s, which is %s)"
                              % (shown(value), net))
    if net.prefixlen < 16 or net.prefixlen > 24:
        raise ValidationError(
            "vpc_cidr",
            "must have a prefix between /16 and /24 so that six subnets of /27 or larger fit (got %s)" % value,
        )
    for unusable in UNUSABLE_NETWORKS:
        if net.overlaps(unusable):
            raise ValidationError(
                "vpc_cidr",
                "must not overlap %s, where no instance can be addressed (this network, loopback, link-local,"
                " multicast or reserved addresses; got %s)" % (unusable, value),
            )
    return net


def _tag_length(text):
    """Length as AWS counts it (UTF-16 code units: a character outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def _tag_text_ok(text):
    """AWS's tag pattern [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*: letters, separators (spaces), numbers, _.:/=+-@."""
    return all(c in TAG_PUNCTUATION or unicodedata.category(c)[0] in "LZN" for c in text)


def validate_tags(tags, limit=MAX_RACK_USER_TAGS, field="tags"):
    """The user's tags, as AWS takes them on every resource the collection tags. Values are data: a
    string, number or boolean, stored as its string; nothing in them is interpreted."""
    if tags is None:
        return
    if not isinstance(tags, dict):
        raise ValidationError(field, "must be a dictionary of tag names to values (got %s)" % type(tags).__name__)
    if len(tags) > limit:
        raise ValidationError(
            field, "has %d tags; at most %d fit next to the collection's own (AWS allows 50 a resource)"
            % (len(tags), limit))
    seen = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key or _tag_length(key) > TAG_KEY_MAX:
            raise ValidationError(field, "keys must be 1 to %d characters (got %s)" % (TAG_KEY_MAX, shown(key)))
        if not _tag_text_ok(key):
            raise ValidationError(
                field, "keys may hold only letters, digits, spaces and _ . : / = + - @, as AWS requires (got %s)"
                % shown(key))
        folded = key.lower()
        if folded.startswith("aws:"):
            raise ValidationError(field, "keys may not start with 'aws:' (got %s)" % shown(key))
        if folded in [k.lower() for k in RESERVED_TAG_KEYS] or folded.startswith(STATE_TAG_PREFIX):
            raise ValidationError(
                field, "%s is reserved for the collection (System, Rack, Type, App and convox:*), whatever its case"
                % shown(key))
        if folded in seen:
            raise ValidationError(
                field, "keys %s and %s differ only in case; IAM roles take them as one key"
                % (shown(seen[folded]), shown(key)))
        seen[folded] = key
        if value is None or isinstance(value, (dict, list, tuple, set)):
            raise ValidationError(
                field, "value of %s must be a string, a number or a boolean (got %s)" % (shown(key),
                                                                                         type(value).__name__))
        text = str(value)
        if _tag_length(text) > TAG_VALUE_MAX:
            raise ValidationError(
                field, "value of %s must be a string of at most %d characters (got %d)" % (shown(key), TAG_VALUE_MAX,
                                                                                           _tag_length(text)))
        if not _tag_text_ok(text):
            raise ValidationError(
                field, "value of %s may hold only letters, digits, spaces and _ . : / = + - @, as AWS requires"
                " (got %s)" % (shown(key), shown(text)))


def validate_request(params):
    """Validate what the user gave (None means 'not given'); raise ValidationError."""
    validate_name(params["name"])
    if params.get("create") is not None and not isinstance(params["create"], bool):
        raise ValidationError("create", "must be a boolean, true or false (got %s)" % shown(params["create"]))
    itype = params.get("instance_type")
    if itype is not None and (len(itype) > MAX_INSTANCE_TYPE or not INSTANCE_TYPE_RE.match(itype)):
        raise ValidationError(
            "instance_type",
            "must look like an EC2 instance type, family.size such as t3.small or m6g.xlarge, in at most %d"
            " characters (got %s)" % (MAX_INSTANCE_TYPE, shown(itype)),
        )
    if params.get("instance_count") is not None and params["instance_count"] < 1:
        raise ValidationError("instance_count", "must be at least 1 (got %d)" % params["instance_count"])
    if params.get("instance_count") is not None and params["instance_count"] > MAX_INSTANCE_COUNT:
        raise ValidationError(
            "instance_count", "must be at most %d, the most container instances ECS registers in a cluster (got %d)"
            % (MAX_INSTANCE_COUNT, params["instance_count"]))
    if params.get("high_availability") and params.get("instance_count") is not None and params["instance_count"] < 3:
        raise ValidationError(
            "instance_count",
            "must be at least 3 with high_availability (got %d); set high_availability: false for fewer"
            % params["instance_count"],
        )
    if params.get("vpc_cidr") is not None:
        validate_vpc_cidr(params["vpc_cidr"])
    validate_log_retention(params.get("log_retention"))
    if params.get("image_id") and params["image_id"] != LATEST_IMAGE and not IMAGE_ID_RE.match(params["image_id"]):
        raise ValidationError("image_id", "must be an AMI id such as ami-0123456789abcdef0 (got %s) or latest (today's"
                              " ECS-optimised AMI)" % shown(params["image_id"]))
    validate_permissions_boundary(params.get("permissions_boundary"))
    validate_kms_key(params.get("kms_key"))
    validate_certificate_arn(params.get("certificate_arn"))
    validate_wait_timeout(params.get("wait_timeout"))
    validate_tags(params.get("tags"), limit=user_tag_limit(params.get("permissions_boundary"), params.get("kms_key"),
                                                           params.get("certificate_arn")))


def user_tag_limit(boundary, kms_key=None, certificate_arn=None):
    """How many tags of the user's fit on the rack's bucket next to the collection's own."""
    return (MAX_RACK_USER_TAGS_WITH_BOUNDARY if boundary else MAX_RACK_USER_TAGS) - (1 if kms_key else 0) - (
        1 if certificate_arn else 0)


def validate_certificate_arn(arn):
    """The ARN of an ACM certificate for the router's HTTPS listener; empty or None: HTTP only."""
    if not arn:
        return None
    match = CERTIFICATE_ARN_RE.match(arn) if isinstance(arn, str) else None
    if not match:
        raise ValidationError(
            "certificate_arn", "must be the ARN of an ACM certificate, arn:<partition>:acm:<region>:<12-digit account"
            " id>:certificate/<certificate id>, such as arn:aws:acm:us-east-1:123456789012:certificate/"
            "1234abcd-12ab-34cd-56ef-1234567890ab (got %s)" % shown(arn))
    return match


def check_certificate_arn(arn, partition, region):
    """Before any write: the certificate is of the rack's partition and region (a load balancer uses an
    ACM certificate of its own region only: Elastic Load Balancing user guide, "SSL certificates for your
    Application Load Balancer")."""
    match = validate_certificate_arn(arn)
    if match and (match.group("partition") != partition or match.group("region") != region):
        raise ValidationError(
            "certificate_arn", "must be a certificate of the rack's region %s (partition %s): a load balancer uses"
            " ACM certificates of its own region only (got %s)" % (region, partition, shown(arn)))


def validate_kms_key(arn):
    """The ARN of a KMS key of the user's to encrypt with instead of the rack's own; empty or None: the
    rack's own."""
    if not arn:
        return None
    match = KMS_KEY_ARN_RE.match(arn) if isinstance(arn, str) else None
    if not match:
        raise ValidationError(
            "kms_key", "must be the ARN of a KMS key, arn:<partition>:kms:<region>:<12-digit account id>:key/<key id>,"
            " such as arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab (an alias is not"
            " taken: CloudWatch Logs needs the key's ARN) (got %s)" % shown(arn))
    return match


def check_kms_key(arn, partition, region):
    """Before any write: the key is in the rack's partition and region (S3, CloudWatch Logs and EBS use
    a key of their own region only)."""
    match = validate_kms_key(arn)
    if not match:
        return
    if match.group("partition") != partition or match.group("region") != region:
        raise ValidationError(
            "kms_key", "must be a key of the rack's region %s (partition %s): S3, CloudWatch Logs and EBS encrypt"
            " only with a key of their own region (got %s)" % (region, partition, shown(arn)))


def validate_permissions_boundary(arn):
    """The ARN of the managed policy to set as the instance role's permissions boundary; empty or None: none
    asked (an existing role's boundary is left as it is)."""
    if not arn:
        return None
    example = "such as arn:aws:iam::123456789012:policy/convox-rack-instance-boundary"
    if len(arn) > TAG_VALUE_MAX:
        raise ValidationError(
            "permissions_boundary", "must be at most %d characters, as the rack records it in a tag of its bucket"
            " (got %d)" % (TAG_VALUE_MAX, len(arn)))
    match = POLICY_ARN_RE.match(arn)
    if not match:
        raise ValidationError(
            "permissions_boundary",
            "must be the ARN of an IAM managed policy, arn:<partition>:iam::<12-digit account id or aws>:policy/"
            "[<path>/]<name>, %s; the path and name of letters, digits and + = . @ _ - (got %s)"
            % (example, shown(arn)))
    return match


def check_permissions_boundary(arn, partition, account):
    """After the caller's identity is known, before any write: the boundary is a policy of this account (or
    AWS's) in this partition, as IAM requires of a permissions boundary."""
    match = validate_permissions_boundary(arn)
    if not match:
        return
    if match.group("partition") != partition:
        raise ValidationError(
            "permissions_boundary", "must be in the partition of the account the rack is installed in (%s; got %s)"
            % (partition, shown(arn)))
    if match.group("account") not in (account, "aws"):
        raise ValidationError(
            "permissions_boundary", "must be a policy of the account the rack is installed in (%s) or an AWS managed"
            " policy (got %s): IAM sets no other account's policy as a boundary" % (account, shown(arn)))


def validate_log_retention(days):
    if days is not None and days not in LOG_RETENTION_DAYS:
        raise ValidationError(
            "log_retention",
            "must be one of CloudWatch Logs' retention periods %s (got %s)"
            % (", ".join(str(d) for d in LOG_RETENTION_DAYS), shown(days)),
        )


def validate_wait_timeout(seconds):
    if seconds is not None and seconds < 1:
        raise ValidationError("wait_timeout", "must be at least 1 second (got %d)" % seconds)
    if seconds is not None and seconds > MAX_WAIT_TIMEOUT:
        raise ValidationError(
            "wait_timeout", "must be at most %d seconds (a day): a run that dies holds its rack until wait_timeout"
            " has passed (got %s)" % (MAX_WAIT_TIMEOUT, shown(seconds)))


def validate_uninstall_request(params):
    """What state=absent uses: the name and wait_timeout (the rack's parameters play no part)."""
    validate_name(params["name"])
    validate_wait_timeout(params.get("wait_timeout"))


def effective_parameters(requested, recorded):
    """Merge what was asked with what the rack records and the defaults.

    An option left unset keeps the value recorded on an existing rack (as
    `convox rack params set` changes only what it names), else takes the default.
    """
    out = {}
    for key in PARAMETER_KINDS:
        if requested.get(key) is not None:
            out[key] = requested[key]
        elif recorded and key in recorded:
            out[key] = recorded[key]
        elif key == "instance_count":
            ha = requested.get("high_availability")
            if ha is None:
                ha = (recorded or {}).get("high_availability", DEFAULTS["high_availability"])
            out[key] = 3 if ha else 1
        else:
            out[key] = DEFAULTS[key]
    # Turning high_availability on after install is refused as such (check_immutable, next), not
    # for the instance_count it would need.
    ha_changes = bool(recorded) and "high_availability" in recorded and \
        recorded["high_availability"] != out["high_availability"]
    if out["high_availability"] and out["instance_count"] < 3 and not ha_changes:
        raise ValidationError(
            "instance_count",
            "must be at least 3 with high_availability (got %d); set high_availability: false for fewer"
            % out["instance_count"],
        )
    return out


def check_immutable(recorded, wanted):
    """Refuse changes AWS cannot make in place; raise ValidationError before any write."""
    if not recorded:
        return
    for key, why in IMMUTABLE.items():
        if key in recorded and recorded[key] != wanted[key]:
            raise ValidationError(
                key,
                "cannot change after install (%s): the rack has %r, asked %r" % (why, recorded[key], wanted[key]),
            )
    if recorded.get("private") and not wanted["private"]:
        raise ValidationError(
            "private", "cannot change from true to false after install (instances would be exposed to the internet)"
        )


def merge_user_tags(recorded, requested, purge):
    """Unset `tags` leaves the user's tags alone; purge drops those not asked for."""
    if requested is None:
        return dict(recorded)
    requested = {k: str(v) for k, v in requested.items()}
    if purge:
        return requested
    merged = dict(recorded)
    merged.update(requested)
    return merged


# -- apps -------------------------------------------------------------------------------------------------------
def validate_app_name(name, rack, field="name"):
    if not isinstance(name, str) or not name:
        raise ValidationError(field, "is required")
    if not APP_NAME_RE.match(name):
        raise ValidationError(
            field,
            "must be lowercase letters, digits and hyphens, start with a letter and not end with a hyphen"
            " (got %s)" % shown(name))
    if len(rack) + len(name) > MAX_RACK_AND_APP:
        raise ValidationError(
            field,
            "is %d characters; on rack %r (%d characters) an app name has at most %d, so that the app's bucket"
            " name convox-<rack>-<app>-<%d-character digest> fits S3's %d characters"
            % (len(name), rack, len(rack), MAX_RACK_AND_APP - len(rack), DIGEST_LEN, BUCKET_NAME_MAX))
    if name == rack:
        raise ValidationError(field, "must differ from the name of its rack (%r): Convox refuses an app named like its rack"
                              % rack)


def validate_app_request(params):
    """Validate what the user gave; raise ValidationError naming the option and the rule."""
    validate_name(params.get("rack"), field="rack")
    validate_app_name(params.get("name"), params["rack"])
    retention = params.get("log_retention")
    if retention is not None and retention not in LOG_RETENTION_DAYS:
        raise ValidationError(
            "log_retention", "must be one of CloudWatch Logs' retention periods %s (got %s)"
            % (", ".join(str(d) for d in LOG_RETENTION_DAYS), shown(retention)))
    validate_tags(params.get("tags"), limit=MAX_APP_USER_TAGS)


# -- each module's options, validated once by the module glue before any AWS call --------------------------------
def validate_rack_options(params):
    if params.get("state") == "absent":
        validate_uninstall_request(params)
    else:
        validate_request(params)


def validate_rack_info_options(params):
    if params.get("name") is not None:
        validate_name(params["name"])


def validate_app_info_options(params):
    validate_name(params["rack"], field="rack")
    if params.get("name") is not None:
        validate_app_name(params["name"], params["rack"])
