# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rack parameters: the argument spec shared with the doc fragment, defaults and validation.

Everything here runs before the first AWS call, so that bad input fails fast and leaves
nothing behind.
"""

from __future__ import annotations

import ipaddress
import re
import time

from .errors import ValidationError
from .naming import MAX_RACK_NAME

COLLECTION_VERSION = "0.1.0"

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                      1096, 1827, 2192, 2557, 2922, 3288, 3653)

RACK_NAME_RE = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?\Z")
# family (letters, digits, hyphens, at least one digit: t3, m6gd, u-6tb1) "." size
INSTANCE_TYPE_RE = re.compile(
    r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|[0-9]*xlarge|metal(-[0-9]+xl)?)\Z"
)
IMAGE_ID_RE = re.compile(r"^ami-[0-9a-f]{8,17}\Z")
REGION_RE = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-[0-9]+\Z")

# Tags the collection owns; users cannot set them through `tags`.
RESERVED_TAG_KEYS = ("System", "Rack", "Type", "App")
STATE_TAG_PREFIX = "convox:"

# While a run holds a rack, its bucket carries convox:status (installing, updating,
# uninstalling) and convox:lease, the epoch second until which the run may still be working
# (wait_timeout plus a margin). A status whose lease has expired is stale: the run died.
LEASE_TAG = STATE_TAG_PREFIX + "lease"
LEASE_MARGIN = 300


def lease_until(wait_timeout, now=None):
    return str(int((now if now is not None else time.time()) + wait_timeout + LEASE_MARGIN))


def lease_active(tags, now=None):
    try:
        until = int((tags or {}).get(LEASE_TAG, "0"))
    except ValueError:
        return False
    return until > (now if now is not None else time.time())


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
}

DEFAULTS = {
    "instance_type": "t3.small",
    "private": False,
    "high_availability": True,
    "vpc_cidr": "10.0.0.0/16",
    "internal_only": False,
    "log_retention": 7,
    "image_id": "",
}

# Parameters that cannot change once the rack exists, and the message why.
IMMUTABLE = {
    "vpc_cidr": "the VPC and its subnets are addressed from it",
    "high_availability": "the number of availability zones is fixed at install",
}

# Argument spec shared by rack (state=present/absent); docs live in doc_fragments/rack.py.
RACK_ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    instance_type=dict(type="str"),
    instance_count=dict(type="int"),
    private=dict(type="bool"),
    high_availability=dict(type="bool"),
    vpc_cidr=dict(type="str"),
    internal_only=dict(type="bool"),
    log_retention=dict(type="int"),
    image_id=dict(type="str"),
    tags=dict(type="dict", aliases=["resource_tags"]),
    purge_tags=dict(type="bool", default=True),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=900),
    force=dict(type="bool", default=False),
    purge_data=dict(type="bool", default=False),
)


def validate_name(name, field="name", max_len=MAX_RACK_NAME):
    if not isinstance(name, str) or not name:
        raise ValidationError(field, "is required")
    if not RACK_NAME_RE.match(name):
        raise ValidationError(
            field,
            "must be lowercase letters, digits and hyphens, start with a letter and not end with a hyphen"
            " (got %r)" % name,
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
    except ValueError as e:
        raise ValidationError("vpc_cidr", "must be an IPv4 network in CIDR notation with no host bits set (%s)" % e)
    if net.version != 4:
        raise ValidationError("vpc_cidr", "must be an IPv4 network (got %s)" % value)
    if net.prefixlen < 16 or net.prefixlen > 24:
        raise ValidationError(
            "vpc_cidr",
            "must have a prefix between /16 and /24 so that six subnets of /27 or larger fit (got %s)" % value,
        )
    return net


def validate_tags(tags):
    if tags is None:
        return
    for key, value in tags.items():
        if not isinstance(key, str) or not key or len(key) > 128:
            raise ValidationError("tags", "keys must be 1 to 128 characters (got %r)" % (key,))
        if key.lower().startswith("aws:"):
            raise ValidationError("tags", "keys may not start with 'aws:' (got %r)" % key)
        if key in RESERVED_TAG_KEYS or key.startswith(STATE_TAG_PREFIX):
            raise ValidationError(
                "tags", "%r is reserved for the collection (System, Rack, Type, App and convox:*)" % key
            )
        if value is None or len(str(value)) > 256:
            raise ValidationError("tags", "value of %r must be a string of at most 256 characters" % key)


def validate_request(params):
    """Validate what the user gave (None means 'not given'); raise ValidationError."""
    validate_name(params["name"])
    if params.get("instance_type") is not None and not INSTANCE_TYPE_RE.match(params["instance_type"]):
        raise ValidationError(
            "instance_type",
            "must look like an EC2 instance type, family.size such as t3.small or m6g.xlarge (got %r)"
            % params["instance_type"],
        )
    if params.get("instance_count") is not None and params["instance_count"] < 1:
        raise ValidationError("instance_count", "must be at least 1 (got %d)" % params["instance_count"])
    if params.get("high_availability") and params.get("instance_count") is not None and params["instance_count"] < 3:
        raise ValidationError(
            "instance_count",
            "must be at least 3 with high_availability (got %d); set high_availability: false for fewer"
            % params["instance_count"],
        )
    if params.get("vpc_cidr") is not None:
        validate_vpc_cidr(params["vpc_cidr"])
    if params.get("log_retention") is not None and params["log_retention"] not in LOG_RETENTION_DAYS:
        raise ValidationError(
            "log_retention",
            "must be one of CloudWatch Logs' retention periods %s (got %d)"
            % (", ".join(str(d) for d in LOG_RETENTION_DAYS), params["log_retention"]),
        )
    if params.get("image_id") and not IMAGE_ID_RE.match(params["image_id"]):
        raise ValidationError("image_id", "must be an AMI id such as ami-0123456789abcdef0 (got %r)" % params["image_id"])
    if params.get("wait_timeout") is not None and params["wait_timeout"] < 1:
        raise ValidationError("wait_timeout", "must be at least 1 second (got %d)" % params["wait_timeout"])
    validate_tags(params.get("tags"))


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
    if out["high_availability"] and out["instance_count"] < 3:
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


def parameters_to_tags(params):
    """Encode parameters as bucket tags (values restricted to AWS tag characters)."""
    tags = {}
    for key, kind in PARAMETER_KINDS.items():
        value = params[key]
        if value == "":
            continue  # an empty tag value is not kept by every S3 implementation: absent means default
        if kind is bool:
            value = "true" if value else "false"
        tags[STATE_TAG_PREFIX + key] = str(value)
    return tags


def parameters_from_tags(tags):
    out = {}
    for key, kind in PARAMETER_KINDS.items():
        raw = tags.get(STATE_TAG_PREFIX + key)
        if raw is None:
            continue
        if kind is bool:
            out[key] = raw == "true"
        elif kind is int:
            try:
                out[key] = int(raw)
            except ValueError:
                continue
        else:
            out[key] = raw
    return out


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
