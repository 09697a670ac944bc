"""Bad input, property-based (issue 6): hypothesis generates values for every user-facing option
of the four modules and checks them against the rules the documentation states, written here a
second time as oracles (independent of plugins/module_utils/_rack/params.py):

- invalid values are refused with a message that starts with the option's name and states the
  rule; valid ones (every real EC2 instance type and AWS region among them) are accepted;
- through ansible's own ArgumentSpecValidator, values of the wrong type (booleans, integers,
  dictionaries, choices, unknown options) are refused naming the option;
- through each module's real entry point (main(), in this process, with botocore's endpoint and
  sockets replaced by a recorder), an invalid option fails the module naming it, and not one
  request is made to AWS;
- hostile strings (Jinja, shell, NUL, newlines, RTL and emoji, 10,000 characters) in names are
  refused; in tag values they are refused unless AWS's tag characters allow them, and then they
  are plain data; in what the inventory reads from AWS they are never templated.

Examples are derandomized (the same every run, for CI). CONVOX_HYPOTHESIS=explore draws fresh
random examples, ten times as many: `CONVOX_HYPOTHESIS=explore .venv/bin/pytest tests/unit/test_input_properties.py`.
The integration counterpart (tests/integration/test_input_properties_playbooks.py) runs batches of these
through ansible-playbook and the recording proxy.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import ipaddress
import json
import os
import re
import socket
import types
import unicodedata

import botocore.endpoint
import botocore.session
import pytest
import regex
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.validation import check_type_bool, check_type_dict, check_type_int
from ansible.module_utils.testing import patch_module_args
from ansible_collections.amazon.aws.plugins.module_utils.modules import aws_argument_spec
from ansible_collections.convox.rack.plugins.module_utils._rack import params as P
from ansible_collections.convox.rack.plugins.module_utils._rack import glue
from ansible_collections.convox.rack.plugins.module_utils._rack import spec as S
from ansible_collections.convox.rack.plugins.module_utils._rack.errors import ValidationError

EXPLORE = os.environ.get("CONVOX_HYPOTHESIS") == "explore"


def props(examples):
    """Settings of a property: `examples` examples, the same every run unless exploring."""
    return settings(max_examples=examples * (10 if EXPLORE else 1), derandomize=not EXPLORE, database=None,
                    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                          HealthCheck.data_too_large])


# -- the rules, as the documentation states them ------------------------------------------------------------

NAME_SHAPE = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?")
NAME_RULE = "must be lowercase letters, digits and hyphens, start with a letter and not end with a hyphen"
MAX_RACK = 25            # convox-<name> is a load balancer name: 32 characters
MAX_RACK_AND_APP = 42    # convox-<rack>-<app>-<12-character digest>: an S3 bucket name of 63
# CloudWatch Logs' PutRetentionPolicy accepts these (days).
RETENTION = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
             3288, 3653)
MAX_COUNT = 5000         # ECS: container instances a cluster registers
MAX_WAIT = 86400
MAX_TYPE = 32
SIZES = ("nano", "micro", "small", "medium", "large")
# AWS's tag pattern (IAM, CloudWatch Logs, ELB, ECS), in the `regex` module that reads \p{...}.
AWS_TAG_TEXT = regex.compile(r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*")
RESERVED = ("system", "rack", "type", "app")


def rack_name_ok(s):
    return isinstance(s, str) and NAME_SHAPE.fullmatch(s) is not None and len(s) <= MAX_RACK


def instance_type_ok(s):
    if not isinstance(s, str) or len(s) > MAX_TYPE or s.count(".") != 1:
        return False
    family, size = s.split(".")
    return (re.fullmatch(r"[a-z][a-z0-9-]*", family) is not None and any(c.isdigit() for c in family)
            and (size in SIZES or re.fullmatch(r"(?:[1-9][0-9]*)?xlarge|metal(?:-[1-9][0-9]*xl)?", size) is not None))


def cidr_ok(s):
    try:
        net = ipaddress.IPv4Network(s)
    except (ValueError, TypeError):
        return False
    return (str(net) == s and 16 <= net.prefixlen <= 24
            and not any(net.overlaps(ipaddress.IPv4Network(n)) for n in
                        ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4")))


# The ARN of an IAM managed policy (the account's or AWS's), path and name of IAM's characters but the comma
# (the ARN is recorded in a bucket tag), at most 256 characters (a tag value).
BOUNDARY_SHAPE = re.compile(r"arn:aws(-[a-z]+)*:iam::([0-9]{12}|aws):policy/([A-Za-z0-9+=.@_-]+/)*[A-Za-z0-9+=.@_-]{1,128}")


def boundary_ok(s):
    return isinstance(s, str) and (s == "" or (BOUNDARY_SHAPE.fullmatch(s) is not None and len(s) <= 256))


def utf16(s):
    return len(s.encode("utf-16-le")) // 2


def tag_text_ok(s):
    # Characters newer than this Python's Unicode database are refused (unknown: Cn).
    return AWS_TAG_TEXT.fullmatch(s) is not None and all(unicodedata.category(c) != "Cn" for c in s)


def tag_violations(tags, limit):
    """Every rule of the tags documentation that `tags` breaks (empty: valid), as message fragments."""
    out = set()
    if len(tags) > limit:
        out.add("at most %d fit" % limit)
    folded = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not 1 <= utf16(key) <= 128:
            out.add("keys must be 1 to 128 characters")
            continue
        if not tag_text_ok(key):
            out.add("keys may hold only letters, digits, spaces")
        low = key.lower()
        if low.startswith("aws:"):
            out.add("keys may not start with 'aws:'")
        if low in RESERVED or low.startswith("convox:"):
            out.add("is reserved for the collection")
        if low in folded:
            out.add("differ only in case")
        folded[low] = key
        if value is None or isinstance(value, (dict, list)):
            out.add("must be a string, a number or a boolean")
            continue
        text = str(value)
        if utf16(text) > 256:
            out.add("must be a string of at most 256 characters")
        if not tag_text_ok(text):
            out.add("may hold only letters, digits, spaces")
    return out


def region_ok(s):
    return isinstance(s, str) and len(s) <= 63 and re.fullmatch(r"[a-z]{2,4}(-[a-z]+)+-[0-9]+", s) is not None


# -- strategies ------------------------------------------------------------------------------------------------

MARK = "/tmp/convox-rack-pwned"
HOSTILE = [
    "{{ lookup('pipe', 'touch %s') }}" % MARK, "{{ 7 * 7 }}", "{% raw %}{{ x }}{% endraw %}", "{# c #}",
    "$(touch %s)" % MARK, "`touch %s`" % MARK, "; rm -rf /", "a && b", "a | b", "x > /etc/passwd",
    "line\nbreak", "carriage\rreturn", "nul\x00byte", "tab\tbed", "\u202egnp.exe", "rack\u200b", "🚀",
    "ｒａｃｋ", "ԁеmо", "../../etc/passwd", "%s%n%x", "' OR '1'='1", "<script>alert(1)</script>", "\\",
    "x" * 10000, "é" * 300, "",
]
hostile = st.sampled_from(HOSTILE)
anything = st.one_of(st.text(max_size=80), hostile)

LOWER = "abcdefghijklmnopqrstuvwxyz"


def names(max_len):
    """Names of Convox's rule, 1 to max_len characters."""
    return st.builds(lambda first, middle, last: (first + middle + last)[:max_len], st.sampled_from(LOWER),
                     st.text(LOWER + "0123456789-", max_size=max_len - 2), st.sampled_from(LOWER + "0123456789")
                     ).map(lambda s: s.rstrip("-"))


valid_rack_names = names(MAX_RACK)


@st.composite
def near_miss_names(draw, valid=valid_rack_names, max_len=MAX_RACK):
    """A valid name broken in one way: a character outside the rule, a bad first or last
    character, or one character too many (or far too many)."""
    name = draw(valid)
    how = draw(st.sampled_from(["insert", "first", "last", "long"]))
    if how == "insert":
        bad = draw(st.characters(exclude_characters="abcdefghijklmnopqrstuvwxyz0123456789-") | hostile)
        at = draw(st.integers(0, len(name)))
        return name[:at] + bad + name[at:]
    if how == "first":
        return draw(st.sampled_from("0123456789-_A")) + name
    if how == "last":
        return name + "-"
    return name + "a" * draw(st.integers(max_len + 1 - len(name), max_len + 300))


invalid_rack_names = st.one_of(anything, near_miss_names()).filter(lambda s: not rack_name_ok(s))

FAMILY = r"[a-z][a-z0-9-]{0,5}[0-9][a-z0-9-]{0,5}"
SIZE = r"(nano|micro|small|medium|large|([1-9][0-9]{0,2})?xlarge|metal(-[1-9][0-9]{0,2}xl)?)"
REAL_INSTANCE_TYPES = sorted(botocore.session.get_session().get_service_model("ec2").shape_for("InstanceType").enum)
valid_instance_types = st.one_of(st.sampled_from(REAL_INSTANCE_TYPES),
                                 st.from_regex(r"%s\.%s" % (FAMILY, SIZE), fullmatch=True)).filter(instance_type_ok)


@st.composite
def near_miss_types(draw):
    itype = draw(valid_instance_types)
    family, size = itype.split(".")
    return draw(st.sampled_from([
        family + size, family.upper() + "." + size, family + ".0xlarge", family + ".huge", family + "." + size + "x",
        "".join(c for c in family if not c.isdigit()) + "." + size, family + "." + size + ".", "." + size,
        family + "-" * (MAX_TYPE - len(itype) + 1) + "." + size, family + "." + size.replace("xlarge", "XLARGE"),
        family + ". " + size, family + ".metal-0xl"]))


invalid_instance_types = st.one_of(anything, near_miss_types()).filter(lambda s: not instance_type_ok(s))


@st.composite
def any_ipv4_network(draw, prefixes=st.integers(0, 32)):
    prefix = draw(prefixes)
    address = draw(st.integers(0, 2 ** 32 - 1)) & ((2 ** 32 - 1) ^ (2 ** (32 - prefix) - 1))
    return ipaddress.IPv4Network((address, prefix))


valid_cidrs = any_ipv4_network(st.integers(16, 24)).map(str).filter(cidr_ok)


@st.composite
def near_miss_cidrs(draw):
    net = draw(any_ipv4_network(st.integers(16, 24)))
    host = net.network_address + draw(st.integers(1, net.num_addresses - 1))
    return draw(st.sampled_from([
        str(draw(any_ipv4_network(st.integers(0, 15)))), str(draw(any_ipv4_network(st.integers(25, 32)))),
        "%s/%d" % (host, net.prefixlen), "%s/%s" % (net.network_address, net.netmask),
        "%s/0%d" % (net.network_address, net.prefixlen), str(net.network_address), " " + str(net), str(net) + "\n",
        "%s/%d" % (draw(st.sampled_from(["127.0.0.0", "169.254.0.0", "0.0.0.0", "224.1.0.0", "250.0.0.0"])),
                   net.prefixlen),
        "fd00:%x::/56" % draw(st.integers(0, 0xffff)), "10.0.0.0/16/16", "10.0.0/16", "10.0.0.256/24"]))


invalid_cidrs = st.one_of(anything, near_miss_cidrs()).filter(lambda s: not cidr_ok(s))

valid_images = st.from_regex(r"ami-([0-9a-f]{8}|[0-9a-f]{17})", fullmatch=True)
invalid_images = st.one_of(
    anything.filter(bool), st.from_regex(r"ami-[0-9a-f]{0,7}", fullmatch=True),
    st.from_regex(r"ami-[0-9a-f]{18,40}", fullmatch=True), valid_images.map(str.upper),
    valid_images.map(lambda s: s.replace("ami-", "ami_")), valid_images.map(lambda s: s + "\n"),
).filter(lambda s: re.fullmatch(r"ami-[0-9a-f]{8,17}", s) is None and s != "")

valid_retention = st.sampled_from(RETENTION)
invalid_retention = st.integers(-10 ** 30, 10 ** 30).filter(lambda d: d not in RETENTION)
valid_counts = st.integers(1, MAX_COUNT)
invalid_counts = st.one_of(st.integers(-10 ** 30, 0), st.integers(MAX_COUNT + 1, 10 ** 30))
valid_waits = st.integers(1, MAX_WAIT)
invalid_waits = st.one_of(st.integers(-10 ** 30, 0), st.integers(MAX_WAIT + 1, 10 ** 400))

REAL_REGIONS = sorted({r for p in botocore.session.get_session().get_available_partitions()
                       for r in botocore.session.get_session().get_available_regions("ec2", partition_name=p)})
valid_regions = st.one_of(
    st.sampled_from(REAL_REGIONS),
    st.from_regex(r"[a-z]{2,4}(-[a-z]{1,12}){1,3}-[0-9]{1,2}", fullmatch=True)).filter(region_ok)
invalid_regions = st.one_of(
    anything.filter(bool), st.sampled_from(REAL_REGIONS).map(str.upper), st.sampled_from(REAL_REGIONS).map(lambda r: r + "a"),
    st.sampled_from(REAL_REGIONS).map(lambda r: r.rsplit("-", 1)[0]),
    st.builds(lambda n: "us-" + "east" * n + "-1", st.integers(16, 2500)),
).filter(lambda s: not region_ok(s))

# Tags: letters, separators (spaces), numbers and _.:/=+-@ in any script; anything else.
tag_char = st.characters(categories=["L", "Z", "N"], include_characters="_.:/=+-@")
tag_text = {(low, high): st.text(tag_char, min_size=low, max_size=high)
            for low, high in ((1, 20), (100, 128), (129, 200), (0, 30), (257, 300), (0, 8))}
allowed_hostile_values = st.sampled_from([
    "rm -rf /", "--help", "a=b", "@everyone", "x:y/z+w", "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    "\u00a0\u3000", "line\u2028separator", "\u0661\u0662\u0663", "Ⅻ ½ ²", "ｒａｃｋ", "ԁеmо", "x" * 256,
    "é" * 256, "0", "-1", "true", "",
])
valid_tag_keys = st.one_of(tag_text[1, 20], tag_text[100, 128]).filter(
    lambda k: utf16(k) <= 128 and not k.lower().startswith(("aws:", "convox:")) and k.lower() not in RESERVED)
valid_tag_values = st.one_of(tag_text[0, 30], allowed_hostile_values,
                             st.integers(-10 ** 6, 10 ** 6), st.booleans())


def valid_tags(limit):
    return st.dictionaries(valid_tag_keys, valid_tag_values, max_size=8).filter(
        lambda tags: len({k.lower() for k in tags}) == len(tags) and not tag_violations(tags, limit))


bad_tag_keys = st.one_of(st.just(""), tag_text[129, 200], anything.filter(bool))
reserved_stems = st.sampled_from(["System", "Rack", "Type", "App", "convox:", "aws:"])
bad_tag_values = st.one_of(hostile, st.text(min_size=1, max_size=40), tag_text[257, 300])
non_scalar_values = st.one_of(st.none(), st.lists(st.text(max_size=3), max_size=2),
                              st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))
faults = st.sampled_from(["key", "reserved", "value", "type", "case", "count"])
small_tags = st.dictionaries(valid_tag_keys, valid_tag_values, max_size=4)


@st.composite
def invalid_tags(draw, limit):
    """Valid tags with one kind of fault added (the oracle names the rules broken)."""
    tags = dict(draw(small_tags))
    how = draw(faults)
    if how == "key":
        tags[draw(bad_tag_keys)] = "v"
    elif how == "reserved":
        stem = draw(reserved_stems)
        case = draw(st.lists(st.booleans(), min_size=len(stem), max_size=len(stem)))
        tags["".join(c.upper() if up else c.lower() for c, up in zip(stem, case))
             + (draw(tag_text[0, 8]) if stem.endswith(":") else "")] = "v"
    elif how == "value":
        tags[draw(valid_tag_keys)] = draw(bad_tag_values)
    elif how == "type":
        tags[draw(valid_tag_keys)] = draw(non_scalar_values)
    elif how == "case":
        key = draw(valid_tag_keys.filter(lambda k: k.lower() != k.upper()))
        tags[key.lower()] = "a"
        tags[key.upper()] = "b"
    else:
        tags.update({"k%d" % i: "v" for i in range(limit + 1 - len(tags) + draw(st.integers(0, 30)))})
    assume(tag_violations(tags, limit))
    return tags


# What ansible itself converts (its documented booleans, integers and key=value dictionaries) is
# not invalid; the strategies below keep what it refuses.
def refused_by(check):
    def refused(value):
        try:
            check(value)
        except TypeError:
            return True
        return False
    return refused


def not_int(value):
    """Left out: numbers in exponent form (int(Decimal('1e1000000')) takes ansible minutes, CPython
    gh-139957: the user's own doing) and infinities (test_infinity_* below)."""
    if isinstance(value, str) and re.search(r"[eE]|inf|nan", value, re.IGNORECASE):
        return False
    return refused_by(check_type_int)(value)


invalid_bools = st.one_of(st.text(max_size=20), hostile, st.integers(2, 10 ** 6), st.lists(st.booleans(), max_size=2),
                          st.dictionaries(st.text(max_size=2), st.booleans(), max_size=1)).filter(refused_by(check_type_bool))
invalid_ints = st.one_of(st.text(max_size=20), st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda f: not f.is_integer()), st.lists(st.integers(), max_size=2)).filter(not_int)
invalid_dicts = st.one_of(st.integers(), st.lists(st.text(max_size=3), min_size=1, max_size=2), st.booleans(),
                          st.text(alphabet="abc xyz{}[]=,'\"", min_size=1, max_size=10), hostile
                          ).filter(refused_by(check_type_dict))


def invalid_choice(choices):
    return st.one_of(st.text(max_size=20), hostile).filter(lambda s: s not in choices)


# -- helpers ----------------------------------------------------------------------------------------------------

def rack_request(**kw):
    """rack's params as AnsibleModule passes them: every option present, None when not given."""
    params = {key: None for key in S.RACK_ARGUMENT_SPEC}
    params.update(name="prod", state="present", create=True, purge_tags=True, wait=True, wait_timeout=900,
                  force=False, purge_data=False, allow_downgrade=False)
    params.update(kw)
    return params


def app_request(**kw):
    params = {key: None for key in S.APP_ARGUMENT_SPEC}
    params.update(name="web", rack="prod", state="present", immutable_tags=False, purge_tags=True, purge_data=False)
    params.update(kw)
    return params


def refusal(fn, *args):
    with pytest.raises(ValidationError) as e:
        fn(*args)
    return e.value


def assert_names(err, field, *rules):
    """The error names the option first, then one of the rules."""
    assert err.field == field
    assert err.msg.startswith(field + ": "), err.msg
    assert any(rule in err.msg for rule in rules), (err.msg, rules)
    assert len(err.msg) < 800, "the message repeats a long value: %d characters" % len(err.msg)


def names_option(msg, option):
    """`option` appears in `msg` as a word of its own (not inside purge_tags when looking for tags)."""
    return re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.escape(option), msg) is not None


# -- rack: name --------------------------------------------------------------------------------------------------

@props(150)
@given(invalid_rack_names)
def test_invalid_rack_names_are_refused_naming_the_rule(name):
    err = refusal(P.validate_request, rack_request(name=name))
    if name == "":
        assert_names(err, "name", "is required")
    elif NAME_SHAPE.fullmatch(name):
        assert_names(err, "name", "is %d characters; at most 25" % len(name))
    else:
        assert_names(err, "name", NAME_RULE)


@props(100)
@given(valid_rack_names)
def test_valid_rack_names_are_accepted(name):
    P.validate_request(rack_request(name=name))
    P.validate_uninstall_request(rack_request(name=name, state="absent"))


# -- rack: instance_type, instance_count, vpc_cidr, log_retention, image_id, wait_timeout ----------------------

@props(200)
@given(invalid_instance_types)
def test_invalid_instance_types_are_refused(itype):
    assert_names(refusal(P.validate_request, rack_request(instance_type=itype)), "instance_type",
                 "must look like an EC2 instance type")


@props(150)
@given(valid_instance_types)
def test_valid_instance_types_are_accepted(itype):
    P.validate_request(rack_request(instance_type=itype))


def test_every_instance_type_ec2_knows_is_accepted():
    for itype in REAL_INSTANCE_TYPES:
        P.validate_request(rack_request(instance_type=itype))


@props(200)
@given(invalid_counts, st.sampled_from([None, True, False]))
def test_instance_counts_out_of_bounds_are_refused(count, ha):
    err = refusal(P.validate_request, rack_request(instance_count=count, high_availability=ha))
    assert_names(err, "instance_count", "must be at least 1" if count < 1 else "must be at most 5000")


@props(100)
@given(st.integers(1, 2))
def test_fewer_than_three_instances_with_high_availability_are_refused(count):
    assert_names(refusal(P.validate_request, rack_request(instance_count=count, high_availability=True)),
                 "instance_count", "must be at least 3 with high_availability")


@props(200)
@given(valid_counts, st.sampled_from([None, True, False]))
def test_instance_counts_within_bounds_are_accepted(count, ha):
    assume(not (ha and count < 3))
    P.validate_request(rack_request(instance_count=count, high_availability=ha))


@props(250)
@given(invalid_cidrs)
def test_invalid_vpc_cidrs_are_refused(cidr):
    assert_names(refusal(P.validate_request, rack_request(vpc_cidr=cidr)), "vpc_cidr",
                 "must be an IPv4 network in CIDR notation", "must be an IPv4 network (got",
                 "must be written in CIDR notation", "must have a prefix between /16 and /24", "must not overlap")


@props(100)
@given(valid_cidrs)
def test_valid_vpc_cidrs_are_accepted(cidr):
    P.validate_request(rack_request(vpc_cidr=cidr))


@props(150)
@given(invalid_retention)
def test_invalid_log_retentions_are_refused(days):
    assert_names(refusal(P.validate_request, rack_request(log_retention=days)), "log_retention",
                 "must be one of CloudWatch Logs' retention periods")
    assert_names(refusal(P.validate_app_request, app_request(log_retention=days)), "log_retention",
                 "must be one of CloudWatch Logs' retention periods")


@props(50)
@given(valid_retention)
def test_valid_log_retentions_are_accepted(days):
    P.validate_request(rack_request(log_retention=days))
    P.validate_app_request(app_request(log_retention=days))


@props(150)
@given(invalid_images)
def test_invalid_image_ids_are_refused(image):
    assert_names(refusal(P.validate_request, rack_request(image_id=image)), "image_id", "must be an AMI id")


@props(100)
@given(valid_images)
def test_valid_image_ids_are_accepted(image):
    P.validate_request(rack_request(image_id=image))


@props(200)
@given(invalid_waits, st.sampled_from(["present", "absent"]))
def test_wait_timeouts_out_of_bounds_are_refused(seconds, state):
    fn = P.validate_request if state == "present" else P.validate_uninstall_request
    assert_names(refusal(fn, rack_request(wait_timeout=seconds, state=state)), "wait_timeout",
                 "must be at least 1 second" if seconds < 1 else "must be at most 86400 seconds")


@props(100)
@given(valid_waits)
def test_wait_timeouts_within_bounds_are_accepted(seconds):
    P.validate_request(rack_request(wait_timeout=seconds))
    P.validate_uninstall_request(rack_request(wait_timeout=seconds, state="absent"))


valid_boundaries = st.from_regex(
    r"arn:aws(-us-gov|-cn)?:iam::([0-9]{12}|aws):policy/([A-Za-z0-9+=.@_-]{1,20}/){0,3}[A-Za-z0-9+=.@_-]{1,128}",
    fullmatch=True).filter(boundary_ok)


@st.composite
def near_miss_boundaries(draw):
    arn = draw(valid_boundaries)
    head, name = arn.split(":policy/", 1)
    return draw(st.sampled_from([
        arn.replace(":iam::", ":iam:us-east-1:"), arn.replace(":policy/", ":role/"), arn.replace("arn:", "ARN:"),
        head + ":policy/" + name + ",x", head + ":policy/" + name + " ", head + ":policy/", head + ":policy/a//b",
        head + ":policy/" + name + "\n", arn.replace(":iam::", ":iam::12345:"), arn.replace(":iam::", ":s3::"),
        head + ":policy/" + "p" * (257 - len(head) - len(":policy/")), name, "arn:aws:iam::123456789012:user/x"]))


invalid_boundaries = st.one_of(anything.filter(bool), near_miss_boundaries()).filter(lambda s: not boundary_ok(s))


# A KMS key ARN: anything else, and near misses of a good one (an alias, another service, a short id).
GOOD_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
invalid_kms_keys = st.one_of(
    anything.filter(bool),
    st.sampled_from([GOOD_KEY.replace("key/", "alias/"), GOOD_KEY.replace(":kms:", ":iam:"), GOOD_KEY[:-1],
                     GOOD_KEY + "0", GOOD_KEY.replace("123456789012", "12345"), "alias/convox/prod",
                     "1234abcd-12ab-34cd-56ef-1234567890ab", GOOD_KEY.upper()]),
).filter(lambda s: not (isinstance(s, str) and P.KMS_KEY_ARN_RE.match(s)))

GOOD_CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/1234abcd-12ab-34cd-56ef-1234567890ab"
invalid_certificates = st.one_of(
    anything.filter(bool),
    st.sampled_from([GOOD_CERTIFICATE.replace(":acm:", ":iam:"), GOOD_CERTIFICATE.replace("certificate/", "key/"),
                     GOOD_CERTIFICATE[:-1], GOOD_CERTIFICATE + "0", GOOD_CERTIFICATE.replace("123456789012", "12345"),
                     "arn:aws:iam::123456789012:server-certificate/router", GOOD_CERTIFICATE.upper()]),
).filter(lambda s: not (isinstance(s, str) and P.CERTIFICATE_ARN_RE.match(s)))


@props(100)
@given(invalid_kms_keys)
def test_invalid_kms_keys_are_refused(arn):
    assert_names(refusal(P.validate_request, rack_request(kms_key=arn)), "kms_key", "must be the ARN of a KMS key")


def test_kms_key_of_another_region_or_partition_is_refused():
    P.check_kms_key(GOOD_KEY, "aws", "us-east-1")
    P.check_kms_key("", "aws", "us-east-1")
    for partition, region in (("aws", "eu-west-1"), ("aws-cn", "us-east-1")):
        with pytest.raises(ValidationError) as e:
            P.check_kms_key(GOOD_KEY, partition, region)
        assert e.value.field == "kms_key" and "region" in str(e.value)


@props(200)
@given(invalid_boundaries)
def test_invalid_permissions_boundaries_are_refused(arn):
    assert_names(refusal(P.validate_request, rack_request(permissions_boundary=arn)), "permissions_boundary",
                 "must be the ARN of an IAM managed policy", "must be at most 256 characters")


@props(100)
@given(valid_boundaries)
def test_valid_permissions_boundaries_are_accepted(arn):
    P.validate_request(rack_request(permissions_boundary=arn))
    P.validate_request(rack_request(permissions_boundary=""))


def test_a_permissions_boundary_takes_one_tag_of_the_users():
    arn = "arn:aws:iam::123456789012:policy/convox-rack-instance-boundary"
    P.validate_request(rack_request(tags={"k%d" % i: "v" for i in range(33)}, permissions_boundary=arn))
    assert_names(refusal(P.validate_request, rack_request(tags={"k%d" % i: "v" for i in range(34)},
                                                          permissions_boundary=arn)), "tags", "at most 33 fit")
    P.validate_request(rack_request(tags={"k%d" % i: "v" for i in range(34)}))


# -- tags (rack and app) -----------------------------------------------------------------------------------------

@props(150)
@given(st.data())
def test_invalid_tags_are_refused_naming_a_broken_rule(data):
    module = data.draw(st.sampled_from(["rack", "app"]))
    limit = P.MAX_RACK_USER_TAGS if module == "rack" else P.MAX_APP_USER_TAGS
    tags = data.draw(invalid_tags(limit))
    if module == "rack":
        err = refusal(P.validate_request, rack_request(tags=tags))
    else:
        err = refusal(P.validate_app_request, app_request(tags=tags))
    assert_names(err, "tags", *tag_violations(tags, limit))


@props(100)
@given(st.data())
def test_valid_tags_are_accepted_and_kept_verbatim(data):
    module = data.draw(st.sampled_from(["rack", "app"]))
    limit = P.MAX_RACK_USER_TAGS if module == "rack" else P.MAX_APP_USER_TAGS
    tags = data.draw(valid_tags(limit))
    if module == "rack":
        P.validate_request(rack_request(tags=tags))
    else:
        P.validate_app_request(app_request(tags=tags))
    # What is written to AWS: each value's string, nothing interpreted.
    assert P.merge_user_tags({}, tags, purge=True) == {k: str(v) for k, v in tags.items()}


def test_tag_limits_are_aws_limits():
    """The oracle's own edges: 128/256 characters (a character outside the BMP counts two), 34 tags
    on a rack (one fewer with each of permissions_boundary, kms_key and certificate_arn) and 46 on an app
    (50 a resource, less the collection's)."""
    P.validate_request(rack_request(tags={"k" * 128: "v" * 256}))
    P.validate_request(rack_request(tags={"k" * 126 + "\U0001d400": "v"}))
    assert_names(refusal(P.validate_request, rack_request(tags={"k" * 127 + "\U0001d400": "v"})), "tags",
                 "keys must be 1 to 128 characters")
    P.validate_request(rack_request(tags={"k%d" % i: "v" for i in range(34)}))
    assert_names(refusal(P.validate_request, rack_request(tags={"k%d" % i: "v" for i in range(35)})), "tags",
                 "has 35 tags; at most 34 fit")
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    boundary = "arn:aws:iam::123456789012:policy/convox-rack-instance-boundary"
    P.validate_request(rack_request(tags={"k%d" % i: "v" for i in range(32)}, kms_key=key,
                                    permissions_boundary=boundary))
    assert_names(refusal(P.validate_request, rack_request(tags={"k%d" % i: "v" for i in range(33)}, kms_key=key,
                                                          permissions_boundary=boundary)),
                 "tags", "has 33 tags; at most 32 fit")
    P.validate_request(rack_request(tags={"k%d" % i: "v" for i in range(31)}, kms_key=key,
                                    permissions_boundary=boundary, certificate_arn=GOOD_CERTIFICATE))
    assert_names(refusal(P.validate_request, rack_request(tags={"k%d" % i: "v" for i in range(32)}, kms_key=key,
                                                          permissions_boundary=boundary,
                                                          certificate_arn=GOOD_CERTIFICATE)),
                 "tags", "has 32 tags; at most 31 fit")
    P.validate_app_request(app_request(tags={"k%d" % i: "v" for i in range(46)}))
    assert_names(refusal(P.validate_app_request, app_request(tags={"k%d" % i: "v" for i in range(47)})),
                 "tags", "has 47 tags; at most 46 fit")


# -- apps: name and rack -----------------------------------------------------------------------------------------

@props(150)
@given(st.data())
def test_invalid_app_names_are_refused(data):
    rack = data.draw(valid_rack_names)
    name = data.draw(st.one_of(
        invalid_rack_names, st.just(rack),
        names(80).map(lambda n: n + "a" * max(0, MAX_RACK_AND_APP + 1 - len(rack) - len(n)))))
    err = refusal(P.validate_app_request, app_request(name=name, rack=rack))
    if name == "":
        assert_names(err, "name", "is required")
    elif not NAME_SHAPE.fullmatch(name):
        assert_names(err, "name", NAME_RULE)
    elif len(rack) + len(name) > MAX_RACK_AND_APP:
        assert_names(err, "name", "an app name has at most %d" % (MAX_RACK_AND_APP - len(rack)))
    else:
        assert_names(err, "name", "must differ from the name of its rack")


@props(100)
@given(st.data())
def test_valid_app_names_are_accepted(data):
    rack = data.draw(valid_rack_names)
    name = data.draw(names(MAX_RACK_AND_APP - len(rack)).filter(lambda n: n != rack))
    P.validate_app_request(app_request(name=name, rack=rack))
    P.validate_app_name(name, rack)


@props(100)
@given(invalid_rack_names)
def test_apps_of_invalid_rack_names_are_refused(rack):
    err = refusal(P.validate_app_request, app_request(rack=rack))
    assert_names(err, "rack", "is required" if rack == "" else
                 ("is %d characters" % len(rack) if NAME_SHAPE.fullmatch(rack) else NAME_RULE))


# -- region and connection options ---------------------------------------------------------------------------

def module_with(region=None, **params):
    return types.SimpleNamespace(region=region, params=params)


@props(150)
@given(invalid_regions)
def test_invalid_regions_are_refused(region):
    assert_names(refusal(glue.region_of, module_with(region)), "region", "must be an AWS region name")


@props(100)
@given(valid_regions)
def test_valid_regions_are_accepted(region):
    assert glue.region_of(module_with(region)) == region


def test_every_region_botocore_knows_is_accepted():
    for region in REAL_REGIONS:
        assert glue.region_of(module_with(region)) == region


@props(200)
@given(st.one_of(anything.filter(bool), st.sampled_from(["ftp://x", "http//x", "127.0.0.1:4566", "https://", "://x"])))
def test_invalid_endpoint_urls_are_refused(url):
    from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

    assume(not (is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url)))
    assert_names(refusal(glue.region_of, module_with("us-east-1", endpoint_url=url)), "endpoint_url", "must be a URL")
    assert_names(refusal(glue.validate_connection, {}, {"AWS_ENDPOINT_URL": url}), "endpoint_url (AWS_ENDPOINT_URL)",
                 "must be a URL")


@props(100)
@given(st.dictionaries(st.text(min_size=1, max_size=20), st.integers(), min_size=1, max_size=3))
def test_unknown_aws_config_settings_are_refused(config):
    import botocore.config

    assume(not set(config) <= set(botocore.config.Config.OPTION_DEFAULTS))
    assert_names(refusal(glue.region_of, module_with("us-east-1", aws_config=config)), "aws_config",
                 "must hold botocore Config settings")


def test_a_missing_ca_bundle_is_refused(tmp_path):
    assert_names(refusal(glue.region_of, module_with("us-east-1", aws_ca_bundle=str(tmp_path / "none.pem"))),
                 "aws_ca_bundle", "no such file")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    glue.region_of(module_with("us-east-1", aws_ca_bundle=str(bundle), endpoint_url="https://localhost:4566",
                               aws_config={"connect_timeout": 5}))


# -- ansible's argument spec: types, choices, unknown options --------------------------------------------------

SPECS = {
    "rack": S.RACK_ARGUMENT_SPEC,
    "rack_info": S.RACK_INFO_ARGUMENT_SPEC,
    "app": S.APP_ARGUMENT_SPEC,
    "app_info": S.APP_INFO_ARGUMENT_SPEC,
}
BASE = {"rack": {"name": "prod"}, "rack_info": {}, "app": {"name": "web", "rack": "prod"}, "app_info": {"rack": "prod"}}


def full_spec(module):
    spec = aws_argument_spec()
    spec.update(SPECS[module])
    return spec


def typed_options(kind):
    return sorted((module, option) for module in SPECS for option, o in full_spec(module).items()
                  if o.get("type", "str") == kind)


def choice_options():
    return sorted((module, option, tuple(o["choices"])) for module in SPECS for option, o in full_spec(module).items()
                  if o.get("choices"))


def spec_errors(module, args):
    result = ArgumentSpecValidator(full_spec(module)).validate(dict(BASE[module], **args))
    return [str(m) for m in result.error_messages]


@props(250)
@given(st.data())
def test_wrong_types_are_refused_by_the_argument_spec_naming_the_option(data):
    kind = data.draw(st.sampled_from(["bool", "int", "dict"]))
    module, option = data.draw(st.sampled_from(typed_options(kind)))
    value = data.draw({"bool": invalid_bools, "int": invalid_ints, "dict": invalid_dicts}[kind])
    errors = spec_errors(module, {option: value})
    assert errors and any(names_option(e, option) for e in errors), errors


@props(100)
@given(st.data())
def test_values_outside_choices_are_refused_naming_the_option(data):
    module, option, choices = data.draw(st.sampled_from(choice_options()))
    errors = spec_errors(module, {option: data.draw(invalid_choice(choices))})
    assert errors and any(names_option(e, option) and "must be one of" in e for e in errors), errors


@props(100)
@given(st.data())
def test_unknown_options_are_refused_naming_them(data):
    module = data.draw(st.sampled_from(sorted(SPECS)))
    known = set(full_spec(module)) | {a for o in full_spec(module).values() for a in o.get("aliases", [])}
    option = data.draw(st.from_regex(r"[a-z][a-z0-9_]{0,30}", fullmatch=True).filter(lambda o: o not in known))
    errors = spec_errors(module, {option: "x"})
    assert any(e.startswith(option + ".") and "Supported parameters include" in e for e in errors), errors


# -- the modules themselves: invalid input fails before any request ----------------------------------------

class AwsRequested(BaseException):
    """Raised in place of a request to AWS (a BaseException: no `except Exception` of the code under
    test takes it for an AWS error)."""


class NoAws:
    """Every request botocore would send, and every socket connection, recorded and refused."""

    def __init__(self):
        self.requests = []

    @contextlib.contextmanager
    def active(self, monkeypatch):
        def refuse(what):
            def fn(*args, **kwargs):
                self.requests.append(what)
                raise AwsRequested(what)
            return fn
        with monkeypatch.context() as m:
            m.setattr(botocore.endpoint.Endpoint, "make_request", refuse("botocore request"))
            m.setattr(socket.socket, "connect", refuse("socket connect"))
            yield self


def run_module(module, args, monkeypatch):
    """Run plugins/modules/<module>.py's main() with `args`; (result dict, AWS requests made)."""
    main = importlib.import_module("ansible_collections.convox.rack.plugins.modules." + module).main
    out = io.StringIO()
    with NoAws().active(monkeypatch) as no_aws, patch_module_args(args), contextlib.redirect_stdout(out):
        try:
            main()
        except SystemExit:
            pass
        except AwsRequested:
            return {"aws_requested": True}, no_aws.requests
    return json.loads(out.getvalue()), no_aws.requests


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch):
    """Credentials and a region from the environment, as a user has them (the secret is long and
    unlike any generated value: ansible masks no_log values wherever they appear in a message)."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDINPUTPROPERTIES")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "input-properties-secret-0f3a9c2e7d")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")


def app_name_accepted(name):
    try:
        P.validate_app_name(name, BASE["app"]["rack"])
    except Exception:  # pylint: disable=broad-except
        return False
    return True


COMMON_INVALID = {
    "region": invalid_regions, "aws_region": invalid_regions,
    "endpoint_url": invalid_regions.filter(bool).map(lambda s: "not a url " + s),
    "aws_config": st.dictionaries(st.sampled_from(["colour", "retry", "timeout"]), st.integers(), min_size=1, max_size=2),
    "aws_ca_bundle": st.from_regex(r"/nonexistent/[a-z]{1,10}\.pem", fullmatch=True),
    "validate_certs": invalid_bools, "debug_botocore_endpoint_logs": invalid_bools,
}
INVALID = {
    "rack": dict(COMMON_INVALID, name=invalid_rack_names, state=invalid_choice(["present", "absent"]),
                 instance_type=invalid_instance_types, instance_count=st.one_of(invalid_counts, invalid_ints),
                 private=invalid_bools, high_availability=invalid_bools, vpc_cidr=invalid_cidrs,
                 internal_only=invalid_bools, log_retention=st.one_of(invalid_retention, invalid_ints),
                 image_id=invalid_images, permissions_boundary=invalid_boundaries,
                 kms_key=invalid_kms_keys, container_insights=invalid_bools, flow_logs=invalid_bools,
                 certificate_arn=invalid_certificates, tags=st.one_of(invalid_tags(P.MAX_RACK_USER_TAGS), invalid_dicts),
                 resource_tags=invalid_tags(P.MAX_RACK_USER_TAGS), purge_tags=invalid_bools, wait=invalid_bools,
                 wait_timeout=st.one_of(invalid_waits, invalid_ints), force=invalid_bools, purge_data=invalid_bools,
                 create=invalid_bools, allow_downgrade=invalid_bools),
    "rack_info": dict(COMMON_INVALID, name=invalid_rack_names, drift=invalid_bools),
    # An app's name may be longer than a rack's: keep only names refused as app names too.
    "app": dict(COMMON_INVALID, name=invalid_rack_names.filter(lambda s: not app_name_accepted(s)),
                rack=invalid_rack_names,
                state=invalid_choice(["present", "absent"]), log_retention=st.one_of(invalid_retention, invalid_ints),
                immutable_tags=invalid_bools, tags=st.one_of(invalid_tags(P.MAX_APP_USER_TAGS), invalid_dicts),
                purge_tags=invalid_bools, purge_data=invalid_bools),
    "app_info": dict(COMMON_INVALID, rack=invalid_rack_names, name=invalid_rack_names),
}
# The name ansible or the module puts in the message for an alias.
REPORTED_AS = {"aws_region": "region", "resource_tags": "tags"}


def test_every_option_has_an_invalid_strategy():
    for module in SPECS:
        assert set(full_spec(module)) - {"access_key", "secret_key", "session_token", "profile"} <= set(INVALID[module]), module


@pytest.mark.parametrize("module", sorted(INVALID))
def test_each_module_refuses_invalid_options_before_any_aws_request(module, monkeypatch):
    @props(150)
    @given(st.data())
    def check(data):
        option = data.draw(st.sampled_from(sorted(INVALID[module])))
        value = data.draw(INVALID[module][option])
        if module == "app" and option == "name" and value == BASE["app"]["rack"]:
            pass  # an app named like its rack: refused too
        result, requests = run_module(module, dict(BASE[module], **{option: value}), monkeypatch)
        assert requests == [], "AWS was called for %s=%r" % (option, value)
        assert result.get("failed") is True, result
        assert names_option(result["msg"], REPORTED_AS.get(option, option)) or names_option(result["msg"], option), \
            (option, value, result["msg"])
        assert "Traceback" not in json.dumps(result)
    check()


@pytest.mark.parametrize("module", ["rack", "app"])
def test_valid_hostile_tags_reach_aws_as_data(module, monkeypatch):
    """The other side: tags that AWS allows (RTL text, `rm -rf /`, 256 characters) pass validation,
    so the module goes on to its first AWS request (refused here, and reported as such)."""
    tags = {"team": "rm -rf /", "note": "\u05e9\u05dc\u05d5\u05dd", "long": "x" * 256, "at": "@everyone"}
    result, requests = run_module(module, dict(BASE[module], tags=tags), monkeypatch)
    assert requests and result == {"aws_requested": True}, result


@pytest.mark.xfail(strict=True, reason="ansible-core 2.19.14 check_type_int lets OverflowError out for 'inf' and "
                                       "'Infinity' (fixed upstream by ansible/ansible#87253): the module fails "
                                       "with a traceback, before any AWS request, without naming the option")
@pytest.mark.parametrize("value", ["inf", "-Infinity", float("inf")])
def test_infinity_as_an_integer_option_names_the_option(value, monkeypatch):
    try:
        result, requests = run_module("rack", {"name": "prod", "instance_count": value}, monkeypatch)
    except OverflowError as e:
        raise AssertionError("the module raised OverflowError") from e
    assert requests == [] and names_option(result["msg"], "instance_count")


def test_infinity_as_an_integer_option_makes_no_aws_request(monkeypatch):
    """Whatever the message, nothing reaches AWS: the module stops in ansible's argument parsing."""
    no_aws = NoAws()
    main = importlib.import_module("ansible_collections.convox.rack.plugins.modules.rack").main
    with no_aws.active(monkeypatch), patch_module_args({"name": "prod", "instance_count": "Infinity"}), \
            contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises((SystemExit, OverflowError)):
            main()
    assert no_aws.requests == []


# -- the inventory: what AWS holds is never templated -----------------------------------------------------

@props(60)
@given(st.dictionaries(st.text(min_size=1, max_size=20), st.one_of(hostile, st.text(max_size=60)), max_size=4),
       st.one_of(hostile, st.text(max_size=40)))
def test_inventory_host_vars_are_never_templated(tags, text):
    """Tags anyone with access to the account may set (EC2 takes any character), and any string of
    the rack: the host variables come back from templating unchanged, lookups never run."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible_collections.convox.rack.plugins.inventory.racks import InventoryModule

    rack = {"name": "prod", "status": text, "tags": tags, "parameters": {"instance_type": text}}
    hostvars = InventoryModule._host_vars({"name": "local", "account_id": "1", "local": True}, rack, "rack_", "")
    try:
        from ansible.template import trust_as_template
    except ImportError:  # ansible-core < 2.19: every string is a template
        trust_as_template = str
    templar = Templar(loader=DataLoader(), variables=hostvars)
    for key, value in (("rack_tags", tags), ("rack_status", text), ("rack_parameters", {"instance_type": text})):
        assert templar.template(hostvars[key]) == value
        assert templar.template(trust_as_template("{{ %s }}" % key)) == value
    assert not os.path.exists(MARK)
