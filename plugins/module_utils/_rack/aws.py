# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One place where the rack code talks to AWS.

Every call goes through Aws.call (or Aws.paginate): it is retried with jittered backoff on
throttling and transient errors (amazon.aws AWSRetry), counted, and its failure becomes an
AWSCallError naming the resource, the operation, the error code and the request id.
"""

from __future__ import annotations

import time

try:
    import botocore
except ImportError:  # pragma: no cover - AnsibleAWSModule reports missing botocore
    botocore = None

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from .errors import AWSCallError, WaitTimeout

# Errors that are transient for the calls we make, beyond AWSRetry's throttling list.
TRANSIENT = ["InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "PriorRequestNotComplete",
             "ThrottlingException", "ThrottledException"]


def _retry(extra=None):
    return AWSRetry.jittered_backoff(retries=8, delay=1, max_delay=20, catch_extra_error_codes=TRANSIENT + list(extra or []))


class Aws:
    """Retrying, counting, error-translating access to the AWS clients of one module run."""

    def __init__(self, client_factory, check_mode=False):
        self._factory = client_factory
        self._clients = {}
        self.check_mode = check_mode
        self.calls = []

    def client(self, service):
        if service not in self._clients:
            self._clients[service] = self._factory(service)
        return self._clients[service]

    def endpoint_scheme(self, service):
        """'https' or 'http': how this run reaches the service."""
        url = getattr(self.client(service).meta, "endpoint_url", "") or ""
        return url.split(":", 1)[0].lower() or "https"

    def call(self, service, operation, resource, ignore=(), retry_on=(), **kwargs):
        """Call service.operation(**kwargs).

        ignore: error codes that mean "not there" and return None (idempotent reads and deletes).
        retry_on: extra error codes worth retrying for this call (DependencyViolation while
        AWS releases network interfaces, for example).
        """
        client = self.client(service)
        method = getattr(client, operation)
        self.calls.append("%s:%s" % (service, operation))

        @_retry(retry_on)
        def _do():
            return method(**kwargs)
        return self._translated(resource, operation, ignore, _do)

    def paginate(self, service, operation, resource, ignore=(), **kwargs):
        """A paginated read, retried as a whole; returns the merged result."""
        client = self.client(service)
        self.calls.append("%s:%s" % (service, operation))

        @_retry()
        def _do():
            return client.get_paginator(operation).paginate(**kwargs).build_full_result()
        return self._translated(resource, operation, ignore, _do)

    def _translated(self, resource, operation, ignore, do):
        """Run do(); an `ignore` error code is None, any other failure an AWSCallError."""
        try:
            return do()
        except botocore.exceptions.ClientError as e:
            code = e.response.get("Error", {}).get("Code", "Unknown")
            if code in ignore:
                return None
            raise self._error(resource, operation, e)
        except botocore.exceptions.BotoCoreError as e:
            raise AWSCallError(resource, operation, type(e).__name__, str(e), None)

    @staticmethod
    def _error(resource, operation, e):
        err = e.response.get("Error", {})
        meta = e.response.get("ResponseMetadata", {})
        request_id = meta.get("RequestId") or meta.get("HTTPHeaders", {}).get("x-amz-request-id")
        return AWSCallError(resource, operation, err.get("Code", "Unknown"), err.get("Message", str(e)), request_id)


class Deadline:
    """A wait_timeout shared by every wait of one run, polled with growing intervals."""

    def __init__(self, seconds, clock=time.monotonic, sleep=time.sleep):
        self._clock = clock
        self._sleep = sleep
        self.end = clock() + seconds
        self.seconds = seconds

    def remaining(self):
        return self.end - self._clock()

    def wait_for(self, what, probe, interval=2.0, max_interval=15.0):
        """Poll probe() until it returns a true value; raise WaitTimeout naming `what`."""
        delay = interval
        while True:
            result = probe()
            if result:
                return result
            left = self.remaining()
            if left <= 0:
                raise WaitTimeout("timed out after %ds waiting for %s" % (self.seconds, what), waiting_for=what)
            self._sleep(min(delay, left))
            delay = min(delay * 1.5, max_interval)
