"""Rack parameters: validation before any AWS call, merging with what a rack records,
immutable parameters, and the bucket tags that record them."""

from __future__ import annotations

import os
import re
import json

import botocore
import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack.errors import ValidationError
from ansible_collections.convox.rack.plugins.module_utils._rack.params import (
    DEFAULTS, PARAMETER_KINDS, REGION_RE, check_immutable, effective_parameters, validate_request)
from ansible_collections.convox.rack.plugins.module_utils._rack.record import (
    parameters_from_tags, parameters_to_tags, status_current, status_expires)


def request(**kw):
    """The module's params as AnsibleModule passes them: every option present, None when not given."""
    params = {key: None for key in PARAMETER_KINDS}
    params.update(name="prod", tags=None, wait_timeout=900)
    params.update(kw)
    return params


def refused(**kw):
    with pytest.raises(ValidationError) as e:
        validate_request(request(**kw))
    return e.value


# -- name ------------------------------------------------------------------------------------------------

NAME_RULE = "must be lowercase letters, digits and hyphens, start with a letter and not end with a hyphen"


@pytest.mark.parametrize("name", ["Prod", "1prod", "prod-", "my_rack", "prod.eu", "prod rack"])
def test_bad_rack_name_names_field_rule_and_value(name):
    err = refused(name=name)
    assert err.field == "name"
    assert err.details == {"field": "name"}
    assert err.msg == "name: %s (got %r)" % (NAME_RULE, name)


def test_rack_name_of_26_characters_is_too_long_and_says_why():
    name = "a" * 26
    err = refused(name=name)
    assert err.field == "name"
    assert "is 26 characters; at most 25" in err.msg
    assert "load balancer names are limited to 32 characters" in err.msg


@pytest.mark.parametrize("name", ["", None])
def test_empty_rack_name_is_required(name):
    err = refused(name=name)
    assert (err.field, err.msg) == ("name", "name: is required")


@pytest.mark.parametrize("name", ["a", "prod", "prod-2", "a" * 25, "production-eu-west-rack-1"])
def test_good_rack_names_pass(name):
    validate_request(request(name=name))


# -- vpc_cidr --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cidr, rule", [
    ("garbage", "must be an IPv4 network in CIDR notation with no host bits set"),
    ("10.0.0.1/16", "has host bits set"),
    ("10.0.0.0/33", "must be an IPv4 network in CIDR notation"),
    ("fd00::/56", "must be an IPv4 network (got fd00::/56)"),
    ("10.0.0.0/25", "must have a prefix between /16 and /24 so that six subnets of /27 or larger fit (got 10.0.0.0/25)"),
    ("10.0.0.0/15", "must have a prefix between /16 and /24 so that six subnets of /27 or larger fit (got 10.0.0.0/15)"),
])
def test_bad_vpc_cidr_names_field_and_rule(cidr, rule):
    err = refused(vpc_cidr=cidr)
    assert err.field == "vpc_cidr"
    assert err.msg.startswith("vpc_cidr: ")
    assert rule in err.msg


@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "172.16.0.0/20", "192.168.10.0/24"])
def test_good_vpc_cidr_passes(cidr):
    validate_request(request(vpc_cidr=cidr))


# -- create --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["no", "false", 0, 1, "maybe"])
def test_create_must_be_a_boolean(value):
    """AnsibleModule converts "no" and 0 for the module; the service takes only a boolean, never a truthy string."""
    err = refused(create=value)
    assert err.field == "create" and err.msg.startswith("create: must be a boolean, true or false (got ")


@pytest.mark.parametrize("value", [True, False, None])
def test_create_true_false_or_unset_passes(value):
    validate_request(request(create=value))


# -- instance_count, instance_type, log_retention, image_id, wait_timeout ----------------------------------

def test_instance_count_zero_is_refused():
    err = refused(instance_count=0)
    assert (err.field, err.msg) == ("instance_count", "instance_count: must be at least 1 (got 0)")


@pytest.mark.parametrize("ha", [True, None])
def test_two_instances_with_high_availability_are_refused(ha):
    """high_availability is on by default: unset counts as true."""
    with pytest.raises(ValidationError) as e:
        effective_parameters(request(instance_count=2, high_availability=ha), {})
    assert e.value.field == "instance_count"
    assert "must be at least 3 with high_availability (got 2)" in e.value.msg
    assert "set high_availability: false for fewer" in e.value.msg


def test_two_instances_without_high_availability_are_fine():
    assert effective_parameters(request(instance_count=2, high_availability=False), {})["instance_count"] == 2


def test_two_instances_on_a_rack_recorded_with_high_availability_are_refused():
    with pytest.raises(ValidationError) as e:
        effective_parameters(request(instance_count=2), {"high_availability": True, "instance_count": 3})
    assert e.value.field == "instance_count"


@pytest.mark.parametrize("itype", ["t3small", "T3.small", "t3.huge", "t3.", ".small", "small.t3", "t.small"])
def test_bad_instance_type_names_field_rule_and_value(itype):
    err = refused(instance_type=itype)
    assert err.field == "instance_type"
    assert "must look like an EC2 instance type, family.size such as t3.small" in err.msg
    assert "(got %r)" % itype in err.msg


@pytest.mark.parametrize("itype", ["t3.small", "m6gd.16xlarge", "u-6tb1.metal", "c5.metal", "c7i.metal-24xl",
                                   "t3a.nano", "r5.xlarge", "x2iezn.12xlarge", "inf2.48xlarge"])
def test_good_instance_types_pass(itype):
    validate_request(request(instance_type=itype))


@pytest.mark.parametrize("days", [0, 8, 10, 366, 4000])
def test_log_retention_must_be_a_cloudwatch_period(days):
    err = refused(log_retention=days)
    assert err.field == "log_retention"
    assert "must be one of CloudWatch Logs' retention periods 1, 3, 5, 7, 14, 30" in err.msg
    assert err.msg.endswith("(got %d)" % days)


@pytest.mark.parametrize("days", [1, 7, 14, 365, 3653])
def test_cloudwatch_retention_periods_pass(days):
    validate_request(request(log_retention=days))


@pytest.mark.parametrize("image", ["ami-123", "ami-0123456789ABCDEF0", "img-0123456789abcdef0", "ami-0123456789abcdef01",
                                   "0123456789abcdef0", "ami-0123456789abcdefg", "newest", "Latest"])
def test_bad_image_id_names_field_and_example(image):
    err = refused(image_id=image)
    assert err.field == "image_id"
    assert "must be an AMI id such as ami-0123456789abcdef0 (got %r)" % image in err.msg


@pytest.mark.parametrize("image", ["ami-12345678", "ami-0123456789abcdef0", "", "latest"])
def test_good_or_empty_image_id_passes(image):
    validate_request(request(image_id=image))


def test_wait_timeout_below_one_second_is_refused():
    err = refused(wait_timeout=0)
    assert (err.field, err.msg) == ("wait_timeout", "wait_timeout: must be at least 1 second (got 0)")


# -- tags --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["aws:createdBy", "AWS:x", "Aws:cloudformation:stack-name"])
def test_tag_keys_with_aws_prefix_are_refused(key):
    err = refused(tags={key: "x"})
    assert err.field == "tags"
    assert "keys may not start with 'aws:' (got %r)" % key in err.msg


@pytest.mark.parametrize("key", ["System", "Rack", "Type", "App", "convox:x", "convox:status"])
def test_reserved_tag_keys_are_refused(key):
    err = refused(tags={key: "x"})
    assert err.field == "tags"
    assert "%r is reserved for the collection (System, Rack, Type, App and convox:*)" % key in err.msg


def test_tag_value_longer_than_256_is_refused():
    err = refused(tags={"Team": "x" * 257})
    assert err.field == "tags"
    assert "value of 'Team' must be a string of at most 256 characters" in err.msg


def test_tag_key_longer_than_128_is_refused():
    err = refused(tags={"k" * 129: "x"})
    assert err.field == "tags"
    assert "keys must be 1 to 128 characters" in err.msg


def test_tags_at_the_limits_pass():
    validate_request(request(tags={"k" * 128: "v" * 256, "Name": "", "Owner": "ops@example.com"}))


# -- effective_parameters --------------------------------------------------------------------------------

def test_fresh_rack_takes_the_defaults_with_three_instances():
    out = effective_parameters(request(), {})
    assert out == dict(DEFAULTS, instance_count=3)


def test_without_high_availability_the_default_is_one_instance():
    assert effective_parameters(request(high_availability=False), {})["instance_count"] == 1


def test_unset_options_keep_what_the_rack_records():
    recorded = {"instance_type": "m5.large", "instance_count": 5, "private": True, "high_availability": True,
                "vpc_cidr": "10.1.0.0/16", "internal_only": True, "log_retention": 30, "image_id": "ami-12345678",
                "permissions_boundary": "arn:aws:iam::123456789012:policy/convox-rack-instance-boundary",
                "kms_key": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "container_insights": False, "flow_logs": False,
                "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/1234abcd-12ab-34cd-56ef-1234567890ab"}
    out = effective_parameters(request(instance_type="c5.large"), recorded)
    assert out == dict(recorded, instance_type="c5.large")


def test_recorded_rack_without_high_availability_keeps_its_default_of_one():
    """A rack recorded before instance_count was recorded: the count follows its recorded HA."""
    out = effective_parameters(request(), {"high_availability": False})
    assert out["high_availability"] is False
    assert out["instance_count"] == 1


def test_given_false_overrides_recorded_true():
    out = effective_parameters(request(private=False, internal_only=False),
                               {"private": True, "internal_only": True})
    assert out["private"] is False
    assert out["internal_only"] is False


# -- check_immutable -------------------------------------------------------------------------------------

RECORDED = {"instance_type": "t3.small", "instance_count": 3, "private": False, "high_availability": True,
            "vpc_cidr": "10.0.0.0/16", "internal_only": False, "log_retention": 7, "image_id": "",
            "permissions_boundary": "", "kms_key": "", "container_insights": True, "flow_logs": True,
            "certificate_arn": ""}


def wanted(recorded=None, **kw):
    return effective_parameters(request(**kw), RECORDED if recorded is None else recorded)


def test_changing_vpc_cidr_is_refused_naming_both_values():
    with pytest.raises(ValidationError) as e:
        check_immutable(RECORDED, wanted(vpc_cidr="10.1.0.0/16"))
    assert e.value.field == "vpc_cidr"
    assert "cannot change after install" in e.value.msg
    assert "the rack has '10.0.0.0/16', asked '10.1.0.0/16'" in e.value.msg


def test_changing_high_availability_is_refused():
    with pytest.raises(ValidationError) as e:
        check_immutable(RECORDED, wanted(high_availability=False, instance_count=1))
    assert e.value.field == "high_availability"
    assert "the rack has True, asked False" in e.value.msg


def test_private_true_to_false_is_refused():
    recorded = dict(RECORDED, private=True)
    with pytest.raises(ValidationError) as e:
        check_immutable(recorded, wanted(recorded, private=False))
    assert e.value.field == "private"
    assert "cannot change from true to false" in e.value.msg


def test_private_false_to_true_is_allowed():
    check_immutable(RECORDED, wanted(private=True))


def test_mutable_changes_and_fresh_installs_are_allowed():
    check_immutable(RECORDED, wanted(instance_type="m5.large", instance_count=6, log_retention=30, internal_only=True))
    check_immutable({}, wanted({}, vpc_cidr="10.9.0.0/16", high_availability=False))


# -- recorded as bucket tags -----------------------------------------------------------------------------

# S3 tag values: letters, digits, spaces and + - = . _ : / @ (put_bucket_tagging refuses others).
S3_TAG_VALUE = re.compile(r"^[\w\s+=.:/@-]{0,256}$")


@pytest.mark.parametrize("params", [
    dict(DEFAULTS, instance_count=3),
    dict(RECORDED, instance_type="m6gd.16xlarge", private=True, vpc_cidr="172.16.0.0/20", internal_only=True,
         log_retention=3653, image_id="ami-0123456789abcdef0", high_availability=False, instance_count=1,
         permissions_boundary="arn:aws-us-gov:iam::123456789012:policy/convox/boundaries/convox-rack+v2@ops=1.x_y-z",
         kms_key="arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
         container_insights=False, flow_logs=False,
         certificate_arn="arn:aws-us-gov:acm:us-gov-west-1:123456789012:certificate/1234abcd-12ab-34cd-56ef-1234567890ab"),
])
def test_parameters_round_trip_through_bucket_tags(params):
    tags = parameters_to_tags(params)
    # An empty value (image_id "" = the AMI chosen at install) is not written: not every S3
    # keeps empty tag values; an absent tag reads back as "not recorded", i.e. the default.
    assert set(tags) == {"convox:" + k for k in PARAMETER_KINDS if params[k] != ""}
    for value in tags.values():
        assert isinstance(value, str) and value and S3_TAG_VALUE.match(value), value
    assert tags["convox:private"] in ("true", "false")
    # other tags on the bucket do not disturb the reading
    read = parameters_from_tags(dict(tags, System="convox", Rack="prod", **{"convox:status": "running"}))
    assert read == {k: v for k, v in params.items() if v != ""}
    assert effective_parameters({}, read) == params


def test_unreadable_recorded_number_is_skipped_and_the_default_applies():
    tags = parameters_to_tags(dict(DEFAULTS, instance_count=3))
    tags["convox:instance_count"] = "three"
    recorded = parameters_from_tags(tags)
    assert "instance_count" not in recorded
    assert effective_parameters(request(), recorded)["instance_count"] == 3


# -- the recorded run status's expiry (record.py; the tag convox:lease) ---------------------------------------

def test_a_run_status_expires_after_wait_timeout_plus_a_margin():
    assert status_expires(900, now=1000) == "2200"
    assert S3_TAG_VALUE.match(status_expires(900))


@pytest.mark.parametrize("tags, now, held", [
    ({"convox:lease": "2200"}, 2199, True),
    ({"convox:lease": "2200"}, 2200, False),
    ({"convox:lease": "soon"}, 0, False),
    ({}, 0, False),
    (None, 0, False),
])
def test_a_status_holds_only_until_it_expires(tags, now, held):
    assert status_current(tags, now=now) is held


# -- region names ----------------------------------------------------------------------------------------

def _known_regions():
    path = os.path.join(os.path.dirname(botocore.__file__), "data", "endpoints.json")
    with open(path, encoding="utf-8") as f:
        partitions = json.load(f)["partitions"]
    return sorted(r for p in partitions for r in p["regions"])


# botocore's own list of regions (every partition), so the test follows AWS as botocore is updated.
@pytest.mark.parametrize("region", _known_regions())
def test_every_region_botocore_knows_is_accepted(region):
    assert REGION_RE.match(region)


# Whatever botocore this runs with: the aws-eusc partition's four-letter prefix, and the usual shapes.
@pytest.mark.parametrize("region", ["eusc-de-east-1", "us-east-1", "us-gov-west-1", "cn-northwest-1",
                                    "ap-southeast-5", "il-central-1"])
def test_region_names_of_every_shape_are_accepted(region):
    assert REGION_RE.match(region)


@pytest.mark.parametrize("region", ["mars", "us-east", "US-EAST-1", "us-east-1a", "useast1", "mars-north-1 ",
                                    "abcde-east-1", "us--east-1", "-us-east-1"])
def test_region_lookalikes_are_refused(region):
    assert not REGION_RE.match(region)


def test_turning_high_availability_on_is_refused_as_such_not_for_its_instance_count():
    """Issue 13, finding 7: the fundamental refusal comes first."""
    recorded = dict(RECORDED, high_availability=False, instance_count=1)
    with pytest.raises(ValidationError) as e:
        check_immutable(recorded, effective_parameters(request(high_availability=True), recorded))
    assert e.value.msg.startswith("high_availability: cannot change after install"), e.value.msg
