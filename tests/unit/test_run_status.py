"""A rack reads `installing`, `updating` or `uninstalling` only while a run holds its run lock
(holder.py, status.decide): a run killed mid-way (SIGKILL, a lost machine) leaves the record's run
status and a stale lock behind, and the rack then reads `failed`, naming the step that run had
reached, instead of the run status until the record's expiry (20 minutes by default)."""

from __future__ import annotations

import os
import socket
import time

from ansible_collections.convox.rack.plugins.module_utils._rack import holder
from ansible_collections.convox.rack.plugins.module_utils._rack.naming import RackNames
from ansible_collections.convox.rack.plugins.module_utils._rack.record import STATUS_EXPIRES_TAG, STATUS_TAG
from ansible_collections.convox.rack.plugins.module_utils._rack.state import NOT_READ, RackState
from ansible_collections.convox.rack.plugins.module_utils._rack.status import decide


def working_rack(status="updating", lock=NOT_READ, expires_in=3600):
    """A rack whose record says a run works on it, its expiry `expires_in` seconds away."""
    state = RackState(RackNames("production", "us-east-1", "123456789012"))
    state.bucket = {"name": state.names.bucket,
                    "tags": {STATUS_TAG: status, STATUS_EXPIRES_TAG: str(int(time.time() + expires_in))}}
    state.lock = lock
    return state


def lock(host=None, pid=None, expires_in=100, step="waiting for NAT gateways 1/2 available"):
    now = time.time()
    return {"run": "r1", "host": host or socket.gethostname(), "pid": pid or os.getpid(),
            "operation": "install or update of rack production", "since": int(now - 60),
            "expires": int(now + expires_in), "step": step}


def dead_pid():
    """A pid that no process has (the highest the kernel hands out, plus one)."""
    with open("/proc/sys/kernel/pid_max", encoding="ascii") as f:
        return int(f.read()) + 1


def test_a_run_holding_the_lock_is_believed():
    assert decide(working_rack(lock=lock())) == ("updating", [])
    assert decide(working_rack("installing", lock=lock())) == ("installing", [])


def test_a_run_on_another_host_is_believed_until_its_lock_expires():
    """Another host's process cannot be looked at: its lock is believed until it expires."""
    assert decide(working_rack(lock=lock(host="build-2.example", pid=dead_pid()))) == ("updating", [])
    status, missing = decide(working_rack(lock=lock(host="build-2.example", expires_in=-5)))
    assert status == "failed"
    assert missing[0].startswith("last run (install or update of rack production, host build-2.example")
    assert "stopped without finishing, at: waiting for NAT gateways 1/2 available (its lock expired at" in missing[0]


def test_a_killed_run_on_this_host_fails_at_once_naming_its_step():
    """Its lock is still valid for a while, but its process is gone: the rack reads failed now, not
    in 20 minutes (the record's expiry is an hour away here)."""
    status, missing = decide(working_rack("uninstalling", lock=lock(pid=dead_pid(), step="deleting subnet x")))
    assert status == "failed"
    assert missing == ["last run (install or update of rack production, host %s, pid %d) stopped without finishing,"
                       " at: deleting subnet x (its lock its process %d on %s is gone)"
                       % (socket.gethostname(), dead_pid(), dead_pid(), socket.gethostname())]


def test_a_run_status_with_no_lock_is_a_run_that_stopped():
    assert decide(working_rack(lock=None)) == (
        "failed", ["last run (updating) stopped without finishing and holds no lock"])


def test_where_the_lock_was_not_read_the_record_is_believed_until_its_expiry():
    assert decide(working_rack(lock=NOT_READ)) == ("updating", [])
    status, _missing = decide(working_rack(lock=NOT_READ, expires_in=-1))
    assert status == "failed"  # past its expiry, the status is read from what exists (nothing here)


class Calls:
    """An Aws stand-in answering GetParameters from a dict of parameters."""

    def __init__(self, params):
        self.params = params
        self.calls = []

    def call(self, service, operation, _resource, **kwargs):
        self.calls.append((service, operation, kwargs["Names"]))
        return {"Parameters": [{"Name": n, "Value": self.params[n]} for n in kwargs["Names"] if n in self.params],
                "InvalidParameters": [n for n in kwargs["Names"] if n not in self.params]}


def test_the_locks_of_a_region_are_read_ten_a_call():
    racks = ["r%02d" % i for i in range(23)]
    aws = Calls({holder.lock_name("r03"): '{"run": "a", "expires": 1}', holder.lock_name("r17"): "not json"})
    found = holder.read_many(aws, racks, "us-east-1")
    assert found == {"r03": {"run": "a", "expires": 1}, "r17": {}}
    assert [len(names) for _s, _o, names in aws.calls] == [10, 10, 3]
    assert holder.read_many(aws, [], "us-east-1") == {} and len(aws.calls) == 3
