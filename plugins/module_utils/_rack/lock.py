# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One changing run per rack at a time: the rack's run lock.

The lock is the SSM parameter /convox/<rack>/lock of the rack's region. It is taken with
PutParameter(Overwrite=False), which AWS refuses with ParameterAlreadyExists while another run
holds it: taking it is atomic, with no table or bucket to create first (a rack being installed
has neither). Its value says who holds it (a run id, host, pid, operation, since) and until when
(`expires`); the holder renews `expires` every HEARTBEAT seconds from a background thread, and
deletes the parameter when it ends, whether it succeeded or failed.

A second run that finds the lock held waits (polling, within its wait_timeout), then takes it,
and then reads the rack again before it changes anything: what the first run built is seen, so
two installs started together build one rack. The lock is stale, and is taken over, when it has
expired (its holder stopped renewing it: killed, or cut off from AWS for VALIDITY seconds), or at
once when its holder ran on this host and its process is gone (a killed ansible-playbook on a
laptop or CI machine). SSM has no compare-and-swap: the takeover re-reads the lock right before
deleting it and deletes only the holder it judged stale, which leaves a window of one API call
between two runs that judged the same stale lock at the same moment.

Runs that change nothing never take the lock; reads (rack_info, app_info, the inventory, check
mode) never wait for it.

Beside the lock, /convox/<rack>/generation names the last locked run that ended (every locked run
overwrites it when it ends; the uninstall that removes the rack deletes it). A run reads it before
it reads the rack, and again right after taking the lock: when the lock was free at once and the
generation is the same, no other run changed the rack in between, and the run goes on with what it
read instead of reading the whole rack again.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid

from .context import Identity
from .errors import RackError
from .holder import VALIDITY, describe, lock_name, parse, pid_alive, stale

HEARTBEAT = 30    # seconds between renewals
STEP_BEAT = 10    # a renewal sooner when the run's step changed, at most this often: the lock names the step
POLL = (2.0, 10.0)  # first and longest wait between two looks at a held lock
__all__ = ["VALIDITY", "lock_name", "pid_alive", "RunLock", "RackLocked", "with_run_lock", "LockedService"]


def generation_name(rack):
    return "/convox/%s/generation" % rack


def _tags(rack):
    return [{"Key": "System", "Value": "convox"}, {"Key": "Rack", "Value": rack}, {"Key": "Type", "Value": "rack"}]


class RackLocked(RackError):
    """Another run held the rack's lock for longer than this run could wait."""


class RunLock:
    def __init__(self, aws, rack, deadline, operation, clock=time.time, sleep=time.sleep,
                 host=None, pid=None, alive=pid_alive, progress=None):
        self.aws = aws
        self.rack = rack
        self.name = lock_name(rack)
        self.deadline = deadline
        self.operation = operation
        self._clock = clock
        self._sleep = sleep
        self._alive = alive
        self.host = host or socket.gethostname()
        self.pid = pid or os.getpid()
        self.run_id = uuid.uuid4().hex
        # The run's aws.Progress: its step goes into the lock's value, so that the status of a rack
        # whose run was killed names the step it had reached (holder.interrupted).
        self.progress = progress if progress is not None else getattr(deadline, "progress", None)
        self.held = False
        self.contended = False     # the lock was held by another run when this run first asked
        self.waited = 0.0          # seconds spent waiting for another run
        self.taken_over = None     # the stale holder this run replaced, if any
        self._stop = threading.Event()
        self._thread = None

    # -- the value --------------------------------------------------------------------------------------
    def step(self):
        return getattr(self.progress, "step", None)

    def _value(self, since=None, step=None):
        now = self._clock()
        value = {"run": self.run_id, "host": self.host, "pid": self.pid, "operation": self.operation,
                 "since": int(since or now), "expires": int(now + VALIDITY)}
        step = step or self.step()
        if step:
            value["step"] = step[:300]
        return json.dumps(value, sort_keys=True)

    def _read(self):
        got = self.aws.call("ssm", "get_parameter", "run lock %s" % self.name, ignore=("ParameterNotFound",),
                            Name=self.name)
        if got is None:
            return None
        return parse(got["Parameter"]["Value"])

    def stale(self, holder):
        """Why the holder's lock no longer protects anything, or None while it does."""
        return stale(holder, self._clock(), self.host, self._alive)

    @staticmethod
    def describe(holder):
        return describe(holder)

    # -- acquire / release ----------------------------------------------------------------------------
    def acquire(self):
        """Take the lock, waiting for another run within the deadline; RackLocked when it does not end."""
        started = self._clock()
        delay = POLL[0]
        while True:
            taken = self.aws.call("ssm", "put_parameter", "run lock %s" % self.name,
                                  ignore=("ParameterAlreadyExists",), Name=self.name, Value=self._value(),
                                  Type="String", Overwrite=False,
                                  Description="convox.rack: the run that is changing rack %s" % self.rack,
                                  Tags=_tags(self.rack))
            if taken is not None:
                return self._hold(started)
            holder = self._read()
            if holder is None:
                continue  # released between our two calls: try again at once
            if holder.get("run") == self.run_id:
                # Our own PutParameter: AWS took it but its answer was lost, and botocore sent it
                # again. The lock is ours.
                return self._hold(started)
            self.contended = True
            why = self.stale(holder)
            if why:
                again = self._read()
                if again is not None and again.get("run") == holder.get("run"):
                    self.aws.call("ssm", "delete_parameter", "run lock %s" % self.name,
                                  ignore=("ParameterNotFound",), Name=self.name)
                    self.taken_over = dict(holder, reason=why)
                continue
            left = self.deadline.remaining()
            if left <= 0:
                raise RackLocked(
                    "rack %s is being changed by another run: %s; waited %ds (wait_timeout). Rerun when it has "
                    "finished; a run that died leaves a lock that expires %ds after its last renewal"
                    % (self.rack, self.describe(holder), int(self._clock() - started), VALIDITY),
                    resource="run lock %s" % self.name, error_code="RackLocked", holder=holder)
            self._sleep(min(delay, left))
            delay = min(delay * 1.5, POLL[1])

    def _hold(self, started):
        self.held = True
        self.waited = self._clock() - started
        self._start_heartbeat()
        return self

    def _start_heartbeat(self):
        since = self._clock()
        last = {"at": since, "step": self.step()}

        def renew():
            # Every HEARTBEAT seconds, and sooner (at most every STEP_BEAT) when the step changed.
            while not self._stop.wait(STEP_BEAT):
                step = self.step()
                if self._clock() - last["at"] < HEARTBEAT - STEP_BEAT / 2 and step == last["step"]:
                    continue
                try:
                    holder = self._read()
                    if holder is None or holder.get("run") != self.run_id:
                        return  # lost it (taken over after expiry): nothing left to renew
                    self.aws.call("ssm", "put_parameter", "run lock %s" % self.name, Name=self.name,
                                  Value=self._value(since, step), Type="String", Overwrite=True)
                    last.update(at=self._clock(), step=step)
                except RackError:
                    continue  # try again at the next beat; the lease outlives a few misses
        self._thread = threading.Thread(target=renew, name="convox-rack-lock", daemon=True)
        self._thread.start()

    # -- the generation -------------------------------------------------------------------------------
    def generation(self):
        """The run id of the last locked run that ended, or None."""
        got = self.aws.call("ssm", "get_parameter", "run generation %s" % generation_name(self.rack),
                            ignore=("ParameterNotFound",), Name=generation_name(self.rack))
        return got["Parameter"]["Value"] if got else None

    def _end_generation(self, rack_removed):
        name = generation_name(self.rack)
        if rack_removed:
            self.aws.call("ssm", "delete_parameter", "run generation %s" % name, ignore=("ParameterNotFound",),
                          Name=name)
            return
        put = self.aws.call("ssm", "put_parameter", "run generation %s" % name, Name=name, Value=self.run_id,
                            Type="String", Overwrite=True,
                            Description="convox.rack: the last run that changed rack %s" % self.rack)
        if put.get("Version") == 1:  # new: PutParameter cannot tag while overwriting
            self.aws.call("ssm", "add_tags_to_resource", "run generation %s" % name, ResourceType="Parameter",
                          ResourceId=name, Tags=_tags(self.rack))

    def release(self, rack_removed=False):
        """Stop renewing, record this run as the rack's generation (or forget it with the rack), and
        delete the lock if this run still holds it."""
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.held = False
        try:
            self._end_generation(rack_removed)
        finally:
            self._release_lock()

    def _release_lock(self):
        holder = self._read()
        if holder is not None and holder.get("run") == self.run_id:
            self.aws.call("ssm", "delete_parameter", "run lock %s" % self.name, ignore=("ParameterNotFound",),
                          Name=self.name)


class _LockTaken(Exception):
    """The first write of an unlocked pass took the lock: the run starts again under it."""


def locked_first(first_write, hook):
    """The before_first_write of a pass: take the lock (first_write, None once held), then hook."""
    if first_write is None:
        return hook

    def both():
        first_write()  # raises _LockTaken when the pass must start again
        if hook is not None:
            hook()
    return both


def with_run_lock(aws, rack, deadline, operation, check_mode, run, warnings, removed=None):
    """Return run(first_write), holding the rack's run lock from its first write to its end.

    run(first_write) reads, plans and applies; its Plan's before_first_write must call first_write
    (when not None) before anything else (locked_first). The run starts without the lock: when it has nothing to change,
    that is the answer. Its first write takes the lock; if the lock was held by another run, or
    the rack's generation moved since this run began, the run starts again under the lock, so
    that every change is decided from what exists while the lock is held. removed(result) says
    whether the run removed the rack (its generation then goes too). Check mode never locks."""
    if check_mode:
        return run(None)
    lock = RunLock(aws, rack, deadline, operation)
    seen = lock.generation()

    def take():
        if lock.held:  # taken before a refusal (Plan.lock_before_refusing), then the first write
            return
        lock.acquire()
        if lock.contended or lock.taken_over or lock.generation() != seen:
            raise _LockTaken()
    result = None
    try:
        try:
            result = run(take)
        except _LockTaken:
            result = run(None)
    finally:
        lock.release(rack_removed=bool(result is not None and removed and removed(result)))
    if "aws_calls" in result:
        result["aws_calls"] = len(aws.calls)  # the release's calls too
    if lock.taken_over:
        warnings.append("took over the run lock %s of a run that ended without releasing it (%s; %s)"
                        % (lock.name, RunLock.describe(lock.taken_over), lock.taken_over["reason"]))
    if lock.waited >= 1:
        warnings.append("waited %ds for another run of rack %s to finish" % (lock.waited, rack))
    return result


class LockedService:
    """What the rack and app services share: a module run's AWS, region, options and warnings, the
    caller's identity (read once), and their changes under the rack's run lock."""

    def __init__(self, aws, region, params, check_mode):
        self.aws = aws
        self.region = region
        self.params = params
        self.check_mode = check_mode
        self.warnings = []
        self._identity = None
        self.with_run_lock = with_run_lock  # the tests of a service's own calls run it without the lock

    @property
    def identity(self):
        if self._identity is None:
            self._identity = Identity(self.aws)
        return self._identity

    def locked(self, rack, operation, run, removed=None):
        """run(first_write) under the run lock of `rack` (see with_run_lock)."""
        return self.with_run_lock(self.aws, rack, self.aws.deadline, operation, self.check_mode, run, self.warnings,
                                  removed=removed)
