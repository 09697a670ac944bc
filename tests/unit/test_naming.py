"""Derived AWS names fit AWS's limits for the longest rack name in the longest regions, so a long
name fails at validation rather than half-way through an install; subnets fit the VPC."""

from __future__ import annotations

import ipaddress
import itertools
import re

import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack.errors import ValidationError
from ansible_collections.convox.rack.plugins.module_utils._rack.naming import (
    MAX_RACK_NAME, RackNames, subnet_cidrs, system_tags)
from ansible_collections.convox.rack.plugins.module_utils._rack.params import validate_name

LONGEST_NAME = "production-eu-west-rack-1"
ACCOUNT = "123456789012"
# The longest region names of each partition botocore knows (us-isof-south-1 is 15 characters).
LONG_REGIONS = ["ap-southeast-2", "us-gov-west-1", "ap-northeast-3", "us-isof-south-1", "eusc-de-east-1"]


def names_for(region, rack=LONGEST_NAME, account=ACCOUNT):
    return RackNames(rack, region, account)


def test_longest_name_is_valid_and_one_more_character_is_not():
    assert len(LONGEST_NAME) == MAX_RACK_NAME == 25
    validate_name(LONGEST_NAME)
    with pytest.raises(ValidationError):
        validate_name(LONGEST_NAME + "x")


# Each limit: (attribute, max length, pattern the name must match) as AWS documents it.
LIMITS = [
    # Elastic Load Balancing: 32 characters, alphanumerics and hyphens, no hyphen at either end,
    # must not begin with "internal-".
    ("load_balancer", 32, r"^(?!internal-)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$"),
    # IAM role and instance profile names: 64 characters of [\w+=,.@-].
    ("instance_role", 64, r"^[\w+=,.@-]+$"),
    # EC2 security group names: 255 characters, must not start with sg-.
    ("router_security_group", 255, r"^(?!sg-)[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+$"),
    ("instance_security_group", 255, r"^(?!sg-)[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+$"),
    # ECS cluster: 255 letters, digits, hyphens, underscores.
    ("cluster", 255, r"^[A-Za-z0-9_-]+$"),
    # ECS capacity provider: 255 of [A-Za-z0-9_-], not starting with aws, ecs or fargate.
    ("capacity_provider", 255, r"^(?!(?i:aws|ecs|fargate))[A-Za-z0-9_-]+$"),
    # Auto Scaling group: 255 characters (we keep to the ones valid everywhere else too).
    ("autoscaling_group", 255, r"^[A-Za-z0-9_-]+$"),
    # EC2 launch template: 3 to 128 of [A-Za-z0-9().\-/_].
    ("launch_template", 128, r"^[A-Za-z0-9().\-/_]{3,}$"),
    # CloudWatch Logs log group: 512 of [.\-_/#A-Za-z0-9].
    ("log_group", 512, r"^[.\-_/#A-Za-z0-9]+$"),
]


@pytest.mark.parametrize("region", LONG_REGIONS)
@pytest.mark.parametrize("attr, limit, pattern", LIMITS, ids=[x[0] for x in LIMITS])
def test_derived_names_fit_aws_limits(region, attr, limit, pattern):
    name = getattr(names_for(region), attr)
    assert len(name) <= limit, "%s %r is %d characters (AWS allows %d)" % (attr, name, len(name), limit)
    assert re.match(pattern, name), "%s %r breaks AWS's naming rule" % (attr, name)


@pytest.mark.parametrize("region", LONG_REGIONS)
def test_bucket_name_follows_s3_rules(region):
    bucket = names_for(region).bucket
    assert 3 <= len(bucket) <= 63
    assert re.match(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$", bucket), bucket
    assert "." not in bucket  # virtual-hosted-style TLS breaks on dots
    assert not bucket.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
    assert not bucket.endswith(("-s3alias", "--ol-s3", "--x-s3", "--table-s3"))


def test_app_log_groups_live_under_the_rack_log_group():
    names = names_for("us-east-1", rack="prod")
    assert names.log_group == "/convox/prod"
    assert names.app_log_group_prefix() == "/convox/prod/apps/"
    # a rack whose name extends another's does not share its app prefix
    assert not names_for("us-east-1", rack="prod-eu").app_log_group_prefix().startswith(names.app_log_group_prefix())


def test_bucket_name_is_stable_and_unique_per_account_region_and_rack():
    base = names_for("us-east-1", rack="prod").bucket
    assert base == names_for("us-east-1", rack="prod").bucket
    assert base.startswith("convox-prod-")
    others = {
        names_for("us-east-1", rack="prod", account="210987654321").bucket,
        names_for("us-west-2", rack="prod").bucket,
        names_for("us-east-1", rack="prod2").bucket,
    }
    assert base not in others and len(others) == 3


def test_iam_names_differ_by_region_since_iam_is_global():
    assert names_for("us-east-1", rack="prod").instance_role != names_for("eu-west-1", rack="prod").instance_role


def test_system_tags():
    assert system_tags("prod") == {"System": "convox", "Rack": "prod", "Type": "rack"}
    assert system_tags("prod", "app", "web") == {"System": "convox", "Rack": "prod", "Type": "app", "App": "web"}


@pytest.mark.parametrize("vpc", ["10.0.0.0/16", "192.168.4.0/24", "172.16.0.0/20"])
@pytest.mark.parametrize("count", [2, 3])
def test_subnets_fit_the_vpc_without_overlap_public_first(vpc, count):
    net = ipaddress.ip_network(vpc)
    public, private = subnet_cidrs(vpc, count)
    assert len(public) == len(private) == count
    subnets = [ipaddress.ip_network(c) for c in public + private]
    for s in subnets:
        assert s.subnet_of(net), "%s outside %s" % (s, net)
        assert 16 <= s.prefixlen <= 28, "AWS subnets are /16 to /28, got %s" % s
    for a, b in itertools.combinations(subnets, 2):
        assert not a.overlaps(b), "%s overlaps %s" % (a, b)
    # public subnets take the low addresses, private ones start half-way
    pub = [ipaddress.ip_network(c) for c in public]
    priv = [ipaddress.ip_network(c) for c in private]
    assert pub == sorted(pub) and priv == sorted(priv)
    assert max(pub) < min(priv)
    assert pub[0].network_address == net.network_address


def test_subnets_of_a_slash_24_are_slash_27():
    public, private = subnet_cidrs("10.0.5.0/24", 3)
    assert public == ["10.0.5.0/27", "10.0.5.32/27", "10.0.5.64/27"]
    assert private == ["10.0.5.128/27", "10.0.5.160/27", "10.0.5.192/27"]
