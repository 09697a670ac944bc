"""Bad input fails before any AWS call, with a message naming the option and the rule, and
leaves nothing behind. The local AWS's request log proves no call was made.

Option permutations: the module's main() runs in this process (conftest.InProcess), against the
local AWS; the same refusals through real ansible-playbook runs are test_input_properties_playbooks.py's."""

from __future__ import annotations

import pytest

from conftest import live_tagged

CASES = [
    ({"name": "Production"}, "name: must be lowercase letters, digits and hyphens"),
    ({"name": "1rack"}, "name: must be lowercase letters, digits and hyphens"),
    ({"name": "rack-"}, "name: must be lowercase letters, digits and hyphens"),
    ({"name": "my_rack"}, "name: must be lowercase letters, digits and hyphens"),
    ({"name": "a" * 26}, "name: is 26 characters; at most 25 fit every AWS name"),
    ({"name": "badcidr", "vpc_cidr": "10.0.0.0/33"}, "vpc_cidr: must be an IPv4 network in CIDR notation"),
    ({"name": "badcidr", "vpc_cidr": "10.0.0.1/16"}, "vpc_cidr: must be an IPv4 network in CIDR notation"),
    ({"name": "badcidr", "vpc_cidr": "not-a-cidr"}, "vpc_cidr: must be an IPv4 network in CIDR notation"),
    ({"name": "badcidr", "vpc_cidr": "10.0.0.0/25"}, "vpc_cidr: must have a prefix between /16 and /24"),
    ({"name": "badcidr", "vpc_cidr": "10.0.0.0/8"}, "vpc_cidr: must have a prefix between /16 and /24"),
    ({"name": "badcount", "instance_count": 0}, "instance_count: must be at least 1"),
    ({"name": "badcount", "instance_count": 2, "high_availability": True},
     "instance_count: must be at least 3 with high_availability"),
    ({"name": "badtype", "instance_type": "t3small"}, "instance_type: must look like an EC2 instance type"),
    ({"name": "badtype", "instance_type": "t3.enormous"}, "instance_type: must look like an EC2 instance type"),
    ({"name": "badlogs", "log_retention": 8}, "log_retention: must be one of CloudWatch Logs' retention periods"),
    ({"name": "badtags", "tags": {"Rack": "other"}}, "tags: 'Rack' is reserved"),
    ({"name": "badtags", "tags": {"aws:x": "y"}}, "tags: keys may not start with 'aws:'"),
    ({"name": "badimage", "image_id": "ubuntu"}, "image_id: must be an AMI id"),
    ({"name": "badregion", "region": "mars-north-1a"}, "region: must be an AWS region name"),
]


@pytest.mark.parametrize("args,message", CASES, ids=[c[1].split(":")[0] + "-" + str(i) for i, c in enumerate(CASES)])
def test_bad_input_is_refused_before_any_aws_call(direct, local_aws, args, message):
    before = local_aws.request_count()
    result = direct.module(args)
    assert result.get("failed") is True
    assert result["msg"].startswith(message), result["msg"]
    assert result["changed"] is False
    assert local_aws.request_count() == before, "an AWS call was made"
    assert live_tagged(local_aws, args["name"]) == []


def test_unknown_option_is_refused(direct, local_aws):
    before = local_aws.request_count()
    result = direct.module({"name": "unknown", "instance_size": "big"})
    assert result.get("failed") is True
    assert "Unsupported parameters" in result["msg"] and "instance_size" in result["msg"]
    assert local_aws.request_count() == before


def test_bad_input_on_uninstall(direct, local_aws):
    before = local_aws.request_count()
    result = direct.module({"name": "Bad_Name", "state": "absent"})
    assert result.get("failed") is True and result["msg"].startswith("name: must be lowercase")
    assert local_aws.request_count() == before
