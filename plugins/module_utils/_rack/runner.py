# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue between AnsibleAWSModule and the rack service: one place that turns RackError into fail_json."""

from __future__ import annotations

import os

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


# The environment variables amazon.aws reads the keys from, in its order (modules.py,
# _aws_common_argument_spec: the first one set wins).
ENV_KEYS = {"access_key": ("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"),
            "secret_key": ("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY")}


def env_security_token(params, environ=None):
    """The session token to take from AWS_SECURITY_TOKEN, or None.

    AWX's and Automation Controller's "Amazon Web Services" credential sets AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY and, for temporary keys, AWS_SECURITY_TOKEN: the old name of the session
    token, which amazon.aws 10 no longer reads (its session_token option falls back to
    AWS_SESSION_TOKEN only), so temporary keys would go to AWS without their token. The token is
    taken only where it belongs to the keys in use:
    - no session token came from the options or AWS_SESSION_TOKEN (None: an empty string given
      on purpose means no token);
    - no profile (a profile brings its own credentials; amazon.aws refuses a profile with keys);
    - both keys came from the environment, as amazon.aws read them (AWS_ACCESS_KEY_ID or
      AWS_ACCESS_KEY, AWS_SECRET_ACCESS_KEY or AWS_SECRET_KEY): keys given as options are another
      principal's, and no keys at all leave the credentials to boto3, whose own environment
      provider reads AWS_SECURITY_TOKEN with the environment's keys."""
    environ = os.environ if environ is None else environ
    token = environ.get("AWS_SECURITY_TOKEN")
    if not token or params.get("session_token") is not None or params.get("profile"):
        return None
    for option, names in ENV_KEYS.items():
        value = params.get(option)
        from_env = next((environ[name] for name in names if name in environ), None)
        if not value or value != from_env:
            return None
    return token


def connection_info(module):
    """amazon.aws's reading of the connection options (get_aws_connection_info: region, endpoint,
    boto3 parameters), with AWS_SECURITY_TOKEN as the session token where it belongs to the keys
    in use (env_security_token): it becomes the session_token option's value, kept out of the
    module's output as that option's own value is. Every module reads its connection here."""
    token = env_security_token(module.params)
    if token:
        module.no_log_values.add(token)
        module.params["session_token"] = token
    return get_aws_connection_info(module)


def make_aws(module):
    """An Aws whose clients share one boto3 session.

    AnsibleAWSModule.client builds a new session for every client; a rack run uses nine
    services, and a session per client costs each run about 0.8 s of loading botocore's
    models again (bench/). The session is built from amazon.aws's own reading of the
    connection options (get_aws_connection_info), so every option and environment variable
    means what it means for amazon.aws modules; AWS_SECURITY_TOKEN is read too, where it belongs
    to the keys in use (connection_info)."""
    region, endpoint, params = connection_info(module)
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
