# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue between AnsibleAWSModule and the rack service: one place that turns RackError into fail_json."""

from __future__ import annotations

from .aws import Aws
from .errors import RackError, ValidationError
from .params import REGION_RE


def region_of(module):
    region = module.region
    if not region:
        raise ValidationError("region", "is required: set region, AWS_REGION or a profile with a region")
    if not REGION_RE.match(region):
        raise ValidationError("region", "must be an AWS region name such as us-east-1 (got %r)" % region)
    return region


def make_aws(module):
    return Aws(module.client, check_mode=module.check_mode)


def fail(module, err, aws=None):
    details = dict(err.details)
    if aws is not None:
        details["aws_calls"] = len(aws.calls)
    module.fail_json(msg=err.msg, **details)


def run_rack_module(module):
    from .service import RackService

    aws = None
    try:
        region = region_of(module)
        aws = make_aws(module)
        service = RackService(aws, region, module.params, module.check_mode)
        if module.params["state"] == "absent":
            result = service.absent()
        else:
            result = service.present()
    except RackError as e:
        fail(module, e, aws)
    if not module._diff:
        result.pop("diff", None)
    warnings = getattr(service, "warnings", None)
    for w in warnings or []:
        module.warn(w)
    module.exit_json(**result)


def run_rack_info_module(module):
    from .params import validate_name
    from .service import read_racks

    aws = None
    try:
        if module.params.get("name") is not None:
            validate_name(module.params["name"])
        region = region_of(module)
        aws = make_aws(module)
        racks = read_racks(aws, region, module.params.get("name"))
    except RackError as e:
        fail(module, e, aws)
    module.exit_json(changed=False, racks=racks, aws_calls=len(aws.calls))
