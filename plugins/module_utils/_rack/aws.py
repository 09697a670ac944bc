# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One place where the rack code talks to AWS.

Every call goes through Aws.call (or Aws.paginate): it is retried with jittered backoff on
throttling and transient errors, counted, and its failure becomes an AWSCallError naming the
resource, the operation, the error code and the request id.

What is transient is amazon.aws's decision (AWSRetry.found, plus TRANSIENT below), paced by its
jittered BackoffIterator; the loop is ours only so that the retries of a run stop when the run's
wait_timeout (its Deadline) runs out: with faults that never stop, a run fails in time, naming
the call that kept failing. botocore's own retries (connection errors, 5xx, throttling: up to 5
attempts per call in its default mode) happen inside each attempt.
"""

from __future__ import annotations

import json
import os
import time

try:
    import botocore
except ImportError:  # pragma: no cover - AnsibleAWSModule reports missing botocore
    botocore = None

from ansible_collections.amazon.aws.plugins.module_utils.cloud import BackoffIterator
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from .errors import AWSCallError, WaitTimeout

# Errors that are transient for the calls we make, beyond AWSRetry's throttling list.
TRANSIENT = ["InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "PriorRequestNotComplete",
             "ThrottlingException", "ThrottledException"]


# Attempts of one call at most (each attempt includes botocore's own retries), and the pacing.
MAX_ATTEMPTS = 8
BACKOFF = dict(delay=1, backoff=2.0, max_delay=20)
# The longest pause between two looks at something AWS is making or removing: a wait ends at most
# this long after AWS is done (bench/bench_critical_path.py; 15 s made every wait end ~13 s late).
POLL_MAX = 5.0


def _sleep(seconds):
    """time.sleep, looked up when called (tests replace the module's time)."""
    time.sleep(seconds)


def _transient(error, extra=()):
    """Whether an exception from botocore is worth another attempt."""
    if isinstance(error, botocore.exceptions.ClientError):
        return AWSRetry.found(AWSRetry.status_code_from_exception(error), TRANSIENT + list(extra))
    # Connection failures that outlasted botocore's own retries.
    return isinstance(error, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError))


class Aws:
    """Retrying, counting, error-translating access to the AWS clients of one module run."""

    def __init__(self, client_factory, deadline=None, sleep=None):
        self._factory = client_factory
        self._clients = {}
        self.calls = []
        self.retries = 0          # attempts repeated after a transient error, over the run
        self.deadline = deadline  # the run's Deadline (its wait_timeout); None: MAX_ATTEMPTS only
        self._sleep = sleep or _sleep

    def client(self, service):
        if service not in self._clients:
            self._clients[service] = self._factory(service)
        return self._clients[service]

    def endpoint_scheme(self, service):
        """'https' or 'http': how this run reaches the service."""
        url = getattr(self.client(service).meta, "endpoint_url", "") or ""
        return url.split(":", 1)[0].lower() or "https"

    def call(self, service, operation, resource, ignore=(), retry_on=(), retry_when=None, retry_for=None, **kwargs):
        """Call service.operation(**kwargs).

        ignore: error codes that mean "not there" and return None (idempotent reads and deletes).
        retry_on: extra error codes worth retrying for this call (DependencyViolation while
        AWS releases network interfaces, for example).
        retry_when: a test of a ClientError, true when it is worth retrying for this call: for a code
        AWS also answers to a real mistake, retried only when its message names the transient case.
        retry_for: seconds of waiting between attempts during which such an error is retried beyond
        MAX_ATTEMPTS (a state AWS documents as lasting that long); the run's deadline still ends it.
        """
        client = self.client(service)
        method = getattr(client, operation)
        self.calls.append("%s:%s" % (service, operation))
        return self._translated(resource, operation, ignore, lambda: method(**kwargs), retry_on,
                                (retry_when, retry_for))

    def paginate(self, service, operation, resource, ignore=(), **kwargs):
        """A paginated read, retried as a whole; returns the merged result."""
        client = self.client(service)
        self.calls.append("%s:%s" % (service, operation))
        return self._translated(resource, operation, ignore,
                                lambda: client.get_paginator(operation).paginate(**kwargs).build_full_result())

    def _retried(self, do, retry_on=(), retry_when=(None, None)):
        """do(), again after each transient error, until MAX_ATTEMPTS (or, for an error retry_when[0]
        accepts, retry_when[1] seconds of waiting) or the run's deadline."""
        attempt, waited = 0, 0.0
        when, longest = retry_when
        for delay in BackoffIterator(jitter=True, **BACKOFF):
            attempt += 1
            try:
                return do()
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                accepted = when is not None and isinstance(e, botocore.exceptions.ClientError) and when(e)
                transient = _transient(e, retry_on) or accepted
                out_of_attempts = attempt >= MAX_ATTEMPTS and not (accepted and longest and waited + delay <= longest)
                if out_of_attempts or not transient:
                    e.convox_attempts = attempt
                    raise
                if self.deadline is not None and self.deadline.remaining() <= delay:
                    e.convox_attempts = attempt
                    e.convox_deadline = self.deadline.seconds
                    raise
                self.retries += 1
                self._sleep(delay)
                waited += delay
        return None  # pragma: no cover - BackoffIterator never ends

    def _translated(self, resource, operation, ignore, do, retry_on=(), retry_when=(None, None)):
        """Run do() with retries; an `ignore` error code is None, any other failure an AWSCallError."""
        try:
            return self._retried(do, retry_on, retry_when)
        except botocore.exceptions.ClientError as e:
            code = e.response.get("Error", {}).get("Code", "Unknown")
            if code in ignore:
                return None
            raise self._error(resource, operation, e)
        except botocore.exceptions.BotoCoreError as e:
            raise self._gave_up(AWSCallError(resource, operation, type(e).__name__, str(e), None), e)

    @classmethod
    def _error(cls, resource, operation, e):
        err = e.response.get("Error", {})
        meta = e.response.get("ResponseMetadata", {})
        request_id = meta.get("RequestId") or meta.get("HTTPHeaders", {}).get("x-amz-request-id")
        return cls._gave_up(AWSCallError(resource, operation, err.get("Code", "Unknown"),
                                         err.get("Message", str(e)), request_id), e)

    @staticmethod
    def _gave_up(error, cause):
        """Say how many attempts a transient failure had, and whether wait_timeout ended them."""
        attempts = getattr(cause, "convox_attempts", 1)
        if attempts > 1 or hasattr(cause, "convox_deadline"):
            error.details["attempts"] = attempts
            if hasattr(cause, "convox_deadline"):
                error.msg += "; gave up after %d attempts: wait_timeout (%ds) ran out" % (
                    attempts, cause.convox_deadline)
            else:
                error.msg += "; gave up after %d attempts" % attempts
            error.args = (error.msg,)
        return error


class Progress:
    """The step a run is at, for the live progress lines of the rack action (plugins/action/rack.py):
    a small JSON file, {"step": "waiting for NAT gateways ...", "at": epoch seconds}, rewritten at
    each step or wait. Its path comes from the action (CONVOX_RACK_PROGRESS); without one, nothing
    is written. A write that fails is ignored: progress never fails a run."""

    ENV = "CONVOX_RACK_PROGRESS"

    def __init__(self, path=None):
        self.path = path
        self.step = None  # the last step noted: named in the record of a run that fails (record.mark_failed)

    @classmethod
    def from_env(cls, environ=None):
        return cls((os.environ if environ is None else environ).get(cls.ENV) or None)

    def note(self, step):
        self.step = step
        if not self.path:
            return
        try:
            tmp = "%s.%d.tmp" % (self.path, os.getpid())
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump({"step": step, "at": time.time()}, f)
            os.replace(tmp, self.path)
        except OSError:
            pass


class Deadline:
    """A wait_timeout shared by every wait and retry of one run, polled with growing intervals."""

    def __init__(self, seconds, clock=time.monotonic, sleep=time.sleep, progress=None):
        self._clock = clock
        self._sleep = sleep
        self.end = clock() + seconds
        self.seconds = seconds
        self.progress = progress or Progress()

    def remaining(self):
        return self.end - self._clock()

    def wait_for(self, what, probe, interval=2.0, max_interval=POLL_MAX):
        """Poll probe() until it returns a true value; raise WaitTimeout naming `what` (a text, or a
        function that says what is still waited for, noted again after each look)."""
        def named():
            return what() if callable(what) else what
        self.progress.note("waiting for %s" % named())
        delay = interval
        while True:
            result = probe()
            if result:
                return result
            if callable(what):
                self.progress.note("waiting for %s" % named())
            left = self.remaining()
            if left <= 0:
                raise WaitTimeout("timed out after %ds waiting for %s" % (self.seconds, named()), waiting_for=named())
            self._sleep(min(delay, left))
            delay = min(delay * 1.5, max_interval)

    def wait_all(self, waits, interval=2.0, max_interval=POLL_MAX):
        """Poll every (what, probe) of `waits` until each has returned a true value, the slow parts of
        a run waited for together; WaitTimeout names those still waited for."""
        left = list(waits)

        def probe():
            left[:] = [(what, check) for what, check in left if not check()]
            return not left
        if left:
            self.wait_for(lambda: " and ".join(what for what, _check in left), probe, interval, max_interval)

    def until_accepted(self, what, fn, codes=("DependencyViolation",)):
        """Call fn() until AWS stops refusing it with one of `codes` (a delete refused while
        something it depends on is still being released); the last refusal is named on timeout."""
        last = {}

        def attempt():
            try:
                fn()
                return True
            except AWSCallError as e:
                if e.code in codes:
                    last["error"] = e
                    return False
                raise
        try:
            self.wait_for(what, attempt, interval=3)
        except WaitTimeout as e:
            if "error" in last:
                raise WaitTimeout("%s; last error: %s" % (e.msg, last["error"].msg), **last["error"].details)
            raise
