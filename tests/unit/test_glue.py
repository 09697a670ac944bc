"""glue.make_aws: the boto3 session of a module run, and AWS_SECURITY_TOKEN (the session token's old
name, which AWX's "Amazon Web Services" credential sets and amazon.aws 10 no longer reads)."""

from __future__ import annotations

import types

import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack import glue

ENV_KEYS = {"AWS_ACCESS_KEY_ID": "ASIAENVKEY", "AWS_SECRET_ACCESS_KEY": "env-secret"}
TOKEN = "env-security-token"


def params(**given):
    """module.params as amazon.aws's argument spec leaves them: options given, else their environment
    fallbacks (access_key <- AWS_ACCESS_KEY_ID, AWS_ACCESS_KEY; secret_key <- AWS_SECRET_ACCESS_KEY,
    AWS_SECRET_KEY; session_token <- AWS_SESSION_TOKEN; profile <- AWS_PROFILE), else None."""
    out = dict(access_key=None, secret_key=None, session_token=None, profile=None, endpoint_url=None,
               validate_certs=True, aws_ca_bundle=None, aws_config=None, region="us-east-1")
    out.update(given)
    return out


@pytest.mark.parametrize("environ,module_params,expected", [
    # AWX's credential: the keys and AWS_SECURITY_TOKEN in the environment, nothing in the options
    (dict(ENV_KEYS, AWS_SECURITY_TOKEN=TOKEN), params(access_key="ASIAENVKEY", secret_key="env-secret"), TOKEN),
    # the keys under their other names
    ({"AWS_ACCESS_KEY": "ASIAENVKEY", "AWS_SECRET_KEY": "env-secret", "AWS_SECURITY_TOKEN": TOKEN},
     params(access_key="ASIAENVKEY", secret_key="env-secret"), TOKEN),
    # the environment's own keys given again as options: still the environment's keys
    (dict(ENV_KEYS, AWS_SECURITY_TOKEN=TOKEN), params(access_key="ASIAENVKEY", secret_key="env-secret"), TOKEN),
    # AWS_SESSION_TOKEN (or the session_token option) wins: amazon.aws reads it already
    (dict(ENV_KEYS, AWS_SECURITY_TOKEN=TOKEN, AWS_SESSION_TOKEN="session"),
     params(access_key="ASIAENVKEY", secret_key="env-secret", session_token="session"), None),
    (dict(ENV_KEYS, AWS_SECURITY_TOKEN=TOKEN),
     params(access_key="ASIAENVKEY", secret_key="env-secret", session_token="option"), None),
    # an empty session_token given on purpose: no token
    (dict(ENV_KEYS, AWS_SECURITY_TOKEN=TOKEN), params(access_key="ASIAENVKEY", secret_key="env-secret",
                                                      session_token=""), None),
    # keys given as options: another principal's keys, the environment's token is not theirs
    (dict(ENV_KEYS, AWS_SECURITY_TOKEN=TOKEN), params(access_key="AKIAOPTION", secret_key="option-secret"), None),
    ({"AWS_SECURITY_TOKEN": TOKEN}, params(access_key="AKIAOPTION", secret_key="option-secret"), None),
    # one key from the options, the other from the environment: not the environment's pair
    (dict(ENV_KEYS, AWS_SECURITY_TOKEN=TOKEN), params(access_key="ASIAENVKEY", secret_key="option-secret"), None),
    (dict(ENV_KEYS, AWS_SECURITY_TOKEN=TOKEN), params(access_key="AKIAOPTION", secret_key="env-secret"), None),
    # a profile brings its own credentials
    ({"AWS_PROFILE": "work", "AWS_SECURITY_TOKEN": TOKEN}, params(profile="work"), None),
    # no keys at all: boto3's own chain (its environment provider reads AWS_SECURITY_TOKEN itself)
    ({"AWS_SECURITY_TOKEN": TOKEN}, params(), None),
    # no token, or an empty one
    (dict(ENV_KEYS), params(access_key="ASIAENVKEY", secret_key="env-secret"), None),
    (dict(ENV_KEYS, AWS_SECURITY_TOKEN=""), params(access_key="ASIAENVKEY", secret_key="env-secret"), None),
])
def test_env_security_token(environ, module_params, expected):
    assert glue.env_security_token(module_params, environ) == expected


def credentials_of(monkeypatch, environ, module_params):
    """The credentials the clients of a run made by make_aws sign with."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN",
                 "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    module = types.SimpleNamespace(params=module_params, check_mode=False, fail_json=pytest.fail, no_log_values=set())
    creds = glue.make_aws(module).client("sts")._request_signer._credentials
    assert (creds.token in module.no_log_values) == (creds.token == TOKEN)   # hidden from the module's output
    return creds.access_key, creds.secret_key, creds.token


def test_make_aws_passes_the_security_token_on_with_the_environments_keys(monkeypatch):
    assert credentials_of(monkeypatch, dict(ENV_KEYS, AWS_SECURITY_TOKEN=TOKEN),
                          params(access_key="ASIAENVKEY", secret_key="env-secret")) == \
        ("ASIAENVKEY", "env-secret", TOKEN)


def test_make_aws_keeps_the_security_token_from_keys_given_as_options(monkeypatch):
    assert credentials_of(monkeypatch, dict(ENV_KEYS, AWS_SECURITY_TOKEN=TOKEN),
                          params(access_key="AKIAOPTION", secret_key="option-secret")) == \
        ("AKIAOPTION", "option-secret", None)


def test_make_aws_prefers_the_session_token(monkeypatch):
    assert credentials_of(monkeypatch, dict(ENV_KEYS, AWS_SECURITY_TOKEN=TOKEN, AWS_SESSION_TOKEN="session"),
                          params(access_key="ASIAENVKEY", secret_key="env-secret", session_token="session")) == \
        ("ASIAENVKEY", "env-secret", "session")


def test_connection_info_sets_the_option_for_every_reader_and_hides_it(monkeypatch):
    """make_aws and fleet.rack_info both read the connection options through glue.connection_info."""
    from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_connection_info

    monkeypatch.setenv("AWS_SECURITY_TOKEN", TOKEN)
    for name, value in ENV_KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    module = types.SimpleNamespace(params=params(access_key="ASIAENVKEY", secret_key="env-secret"),
                                   no_log_values=set(), fail_json=pytest.fail)
    assert glue.connection_info(module)[2]["aws_session_token"] == TOKEN
    assert module.params["session_token"] == TOKEN and module.no_log_values == {TOKEN}
    assert get_aws_connection_info(module)[2]["aws_session_token"] == TOKEN
    glue.connection_info(module)   # again: nothing more
    assert module.no_log_values == {TOKEN}
