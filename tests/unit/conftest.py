"""Unit-test fixtures: no real sleeping, a fake clock for Deadline, and boto3 clients answered by
botocore's Stubber (for AWS behaviour the local emulator, moto, does not reproduce: see
/work/shared/FIELD-NOTES.md section 2)."""

from __future__ import annotations

import importlib.util
import os
import runpy
import time
import types

import boto3
import botocore
import botocore.config
import botocore.session
import pytest
from botocore.stub import Stubber

from ansible_collections.amazon.aws.plugins.module_utils import cloud
from ansible_collections.convox.rack.plugins.module_utils._rack import aws as aws_module
from ansible_collections.convox.rack.plugins.module_utils._rack.aws import Aws, Deadline

REGION = "us-east-1"
ACCOUNT = "123456789012"

# The local AWS's fixes of moto (scripts/moto_server.py: an ECS agent that registers the instances,
# the NAT gateways' tag filters, ...) apply to the in-process moto (mock_aws) of test_fleet.py and
# test_reading.py as they apply to the server of the integration tests; its realism mode stays off.
# (The ansible-core matrix's venvs have no moto: they run only tests that do not need it.)
if importlib.util.find_spec("moto") is not None:
    runpy.run_path(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "scripts", "moto_server.py"), run_name="convox_moto_fixes")


@pytest.fixture(autouse=True)
def retry_sleeps(monkeypatch):
    """Aws (and amazon.aws cloud.py's AWSRetry) sleep between attempts: record the sleeps instead."""
    slept = []
    monkeypatch.setattr(cloud, "time", types.SimpleNamespace(sleep=slept.append))
    monkeypatch.setattr(aws_module, "time", types.SimpleNamespace(sleep=slept.append, monotonic=time.monotonic))
    return slept


class FakeClock:
    """A monotonic clock that only moves when Deadline sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def deadline(self, seconds):
        return Deadline(seconds, clock=self.clock, sleep=self.sleep)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture(scope="session")
def clock_factory():
    """For module-scoped fixtures, which cannot use the function-scoped `clock`."""
    return FakeClock


class ClientPool:
    """boto3 clients, created once per test session (creating one costs ~0.1 s); each test puts
    its own Stubber on them. Every call made through a client is recorded in the current test's log."""

    def __init__(self):
        # Explicit dummy credentials and region, and the default profile whatever AWS_PROFILE says:
        # nothing of the user's AWS configuration is needed.
        core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
        self.session = boto3.session.Session(aws_access_key_id="AKIDUNITTEST", aws_secret_access_key="unit-test-secret",
                                             region_name=REGION, botocore_session=core)
        self.clients = {}
        self.log = None

    def get(self, service, endpoint_url=None):
        """The client of `service`: at AWS's own (https) endpoint whatever AWS_ENDPOINT_URL says, or
        at endpoint_url (an http one stands for the local AWS)."""
        key = (service, endpoint_url)
        if key not in self.clients:
            config = botocore.config.Config(ignore_configured_endpoint_urls=True)
            client = self.session.client(service, region_name=REGION, endpoint_url=endpoint_url, config=config)
            client.meta.events.register("provide-client-params", self._recorder(service))
            self.clients[key] = client
        return self.clients[key]

    def _recorder(self, service):
        def record(params, model, **kwargs):
            if self.log is not None:
                self.log.append(("%s:%s" % (service, botocore.xform_name(model.name)), dict(params)))
        return record


@pytest.fixture(scope="session")
def client_pool():
    return ClientPool()


class StubbedAws:
    """An Aws whose clients (one per service) are answered by activated Stubbers.

    `log` records every call made through any client, in order, as ("service:operation", params),
    retried attempts included, so that tests can check the order across services and which
    resource each call was about. (Aws.calls records one entry per Aws.call.)
    """

    def __init__(self, pool, endpoint_urls=None):
        self._pool = pool
        self._endpoint_urls = dict(endpoint_urls or {})
        self.stubbers = {}
        self.log = []
        pool.log = self.log
        self.aws = Aws(self.client)

    def client(self, service):
        client = self._pool.get(service, self._endpoint_urls.get(service))
        if service not in self.stubbers:
            stubber = Stubber(client)
            stubber.activate()
            self.stubbers[service] = stubber
        return client

    @property
    def clients(self):
        return {service: self.client(service) for service in self.stubbers}

    def ok(self, service, operation, response=None, params=None):
        self.client(service)
        self.stubbers[service].add_response(operation, response or {}, params)

    def error(self, service, operation, code, message="refused", request_id="req-0001", status=400, params=None):
        self.client(service)
        self.stubbers[service].add_client_error(
            operation, service_error_code=code, service_message=message, http_status_code=status,
            expected_params=params, response_meta={"RequestId": request_id})

    def assert_all_used(self):
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()

    def ops(self):
        return [op for op, params in self.log]

    def close(self):
        for stubber in self.stubbers.values():
            stubber.deactivate()
        if self._pool.log is self.log:
            self._pool.log = None


@pytest.fixture(scope="session")
def stubbed_factory(client_pool):
    """For module-scoped fixtures: make a StubbedAws (close it when done)."""
    return lambda: StubbedAws(client_pool)


@pytest.fixture
def stubbed(client_pool):
    s = StubbedAws(client_pool)
    yield s
    s.close()


@pytest.fixture
def stubbed_http_s3(client_pool):
    """As `stubbed`, but S3 is reached over plain http, as on the local AWS (nothing listens there:
    the Stubber answers every call)."""
    s = StubbedAws(client_pool, endpoint_urls={"s3": "http://127.0.0.1:1"})
    yield s
    s.close()
