# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue between AnsibleAWSModule and the rack service: one place that turns RackError into fail_json."""

from __future__ import annotations

try:
    import boto3
    import botocore
except ImportError:  # pragma: no cover - AnsibleAWSModule reports missing boto3 first
    boto3 = botocore = None

from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_connection_info

from .aws import Aws
from .errors import RackError, ValidationError
from .params import COLLECTION_VERSION, REGION_RE, shown, validate_connection


def region_of(module):
    """The region, once the connection options are known to be usable (before any AWS call)."""
    validate_connection(module.params)
    region = module.region
    if not region:
        raise ValidationError("region", "is required: set region, AWS_REGION or a profile with a region")
    if not REGION_RE.match(region):
        raise ValidationError("region", "must be an AWS region name such as us-east-1 (got %s)" % shown(region))
    return region


def make_aws(module):
    """An Aws whose clients share one boto3 session.

    AnsibleAWSModule.client builds a new session for every client; a rack run uses nine
    services, and a session per client costs each run about 0.8 s of loading botocore's
    models again (bench/). The session is built from amazon.aws's own reading of the
    connection options (get_aws_connection_info), so every option and environment variable
    means what it means for amazon.aws modules."""
    region, endpoint, params = get_aws_connection_info(module)
    params = dict(params)
    profile = params.pop("profile_name", None)
    config = botocore.config.Config(user_agent_extra="convox.rack/%s" % COLLECTION_VERSION)
    extra = params.pop("aws_config", None)
    if extra is not None:
        config = config.merge(extra)
    session = {}

    def factory(service):
        try:
            if "session" not in session:
                session["session"] = boto3.session.Session(profile_name=profile)
            return session["session"].client(service, config=config, region_name=region, endpoint_url=endpoint,
                                             **params)
        except botocore.exceptions.BotoCoreError as e:
            raise RackError("cannot reach AWS %s: %s" % (service, e), error_code=type(e).__name__)
    return Aws(factory, check_mode=module.check_mode)


def fail(module, err, aws=None):
    details = dict(err.details)
    if aws is not None:
        details["aws_calls"] = len(aws.calls)
    module.fail_json(msg=err.msg, **details)


def run_rack_module(module):
    from .service import RackService

    from .params import validate_request, validate_uninstall_request

    aws = None
    try:
        # Before anything else: RackService sets its deadline from wait_timeout.
        if module.params["state"] == "absent":
            validate_uninstall_request(module.params)
        else:
            validate_request(module.params)
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
