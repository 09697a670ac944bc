# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module glue of all four modules: validate the options once (before any AWS call), read the
connection as amazon.aws does, make the run's AWS access with its deadline, hand over to the
module's service, and turn a RackError into fail_json (the one place that does)."""

from __future__ import annotations

import os

try:
    import botocore.config
    import botocore.exceptions
    import botocore.utils
except ImportError:  # pragma: no cover - AnsibleAWSModule reports missing botocore first
    botocore = None

from ansible.module_utils.common.warnings import warn as core_warn
from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_connection_info

from .aws import Aws, Deadline, Progress
from .clients import SessionClients
from .errors import RackError, ValidationError
from .params import REGION_RE, shown
from .spec import DEFAULT_WAIT_TIMEOUT


def validate_connection(params, environ=None):
    """The AWS connection options that boto3 would otherwise refuse with a traceback (endpoint_url,
    aws_config) or only at the first request (aws_ca_bundle); raise ValidationError naming them."""
    environ = os.environ if environ is None else environ
    for field, value in (("endpoint_url", params.get("endpoint_url")),
                         ("endpoint_url (AWS_ENDPOINT_URL)", None if params.get("endpoint_url")
                          else environ.get("AWS_ENDPOINT_URL"))):
        if value and not (botocore.utils.is_valid_endpoint_url(value) or botocore.utils.is_valid_ipv6_endpoint_url(value)):
            raise ValidationError(field, "must be a URL such as https://ec2.us-east-1.amazonaws.com or"
                                         " http://127.0.0.1:4566 (got %s)" % shown(value))
    config = params.get("aws_config")
    if config:
        try:
            botocore.config.Config(**config)
        except (TypeError, ValueError, botocore.exceptions.BotoCoreError) as e:
            raise ValidationError("aws_config", "must hold botocore Config settings (%s)" % e)
    bundle = params.get("aws_ca_bundle")
    if bundle and not os.path.isfile(bundle):
        raise ValidationError("aws_ca_bundle", "must be a file of CA certificates (no such file: %s)" % shown(bundle))


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


def make_aws(module, deadline=None):
    """An Aws whose clients share one boto3 session (clients.SessionClients: amazon.aws's
    AnsibleAWSModule.client builds a session per client, about 0.8 s a run of loading botocore's
    models again), read from amazon.aws's own reading of the connection options, AWS_SECURITY_TOKEN
    included where it belongs to the keys in use (connection_info)."""
    region, endpoint, params = connection_info(module)
    try:
        clients = SessionClients(region, endpoint, params)
    except botocore.exceptions.BotoCoreError as e:
        raise RackError("cannot reach AWS: %s" % e, error_code=type(e).__name__)
    return Aws(clients.factory(region), deadline=deadline)


def fail(module, err, aws=None):
    details = dict(err.details)
    if aws is not None:
        details["aws_calls"] = len(aws.calls)
    module.fail_json(msg=err.msg, **details)


def run_module(module, validate, serve):
    """validate(params) -> region -> serve(aws, region, params, check_mode) = (result, warnings).

    The run's deadline (every wait and retry of the run) is its wait_timeout, or the default for
    modules without one."""
    aws = None
    try:
        validate(module.params)
        region = region_of(module)
        aws = make_aws(module, Deadline(module.params.get("wait_timeout") or DEFAULT_WAIT_TIMEOUT,
                                        progress=Progress.from_env()))
        result, warnings = serve(aws, region, module.params, module.check_mode)
    except RackError as e:
        fail(module, e, aws)
    if not module._diff:
        result.pop("diff", None)
    for warning in warnings:
        # ansible-core's own warning (what AnsibleModule.warn records): amazon.aws 11's
        # AnsibleAWSModule.warn also hands its warnings to exit_json on ansible-core 2.19 and later,
        # which ansible-core then reports as a deprecated practice, a [DEPRECATION WARNING] under
        # every warning of a run.
        core_warn(warning)
    module.exit_json(**result)
