# -*- coding: utf-8 -*-
"""Benchmark probe (bench/bench_rack.py's instrumented pass only; not part of the collection).

Put on PYTHONPATH with BENCH_PROBE_FILE set, it is imported by every Python process of a playbook
run (ansible-playbook and each module process) and, at that process's exit, appends one JSON line:

  argv0           the script (AnsiballZ_<module>.py for a module run, ansible-playbook, ...)
  start, end      wall clock when this file was imported (interpreter up) and at exit
  first_client    when the first botocore client was asked for (imports and argument parsing done)
  clients         botocore clients created: count and seconds (create_client, service model loads)
  http            AWS requests sent: count and seconds from send to response (what the local AWS takes
                  to answer, plus loopback HTTP), with counts and seconds per service:operation
  sleep           time.sleep calls in the process: count and seconds (waits, polling)
  intervals       [kind, start, end] (wall clock) of every client creation ("c"), request ("h") and,
                  outside ansible-playbook, sleep ("s"): a module may make requests from several
                  threads at once, so bench_rack.py merges them rather than adding them up

botocore is patched only when something imports it, so processes that never talk to AWS pay a few
microseconds per import and nothing else. A process forked from an instrumented one (ansible-playbook's
workers, which run lookups such as amazon.aws.ssm_parameter) starts its own record, with " (fork)"
after argv0, and writes it even when it leaves through os._exit.
"""

import atexit
import importlib.abc
import importlib.util
import json
import os
import sys
import threading
import time

_PATH = os.environ.get("BENCH_PROBE_FILE")
_STATS = {
    "pid": os.getpid(),
    "argv0": os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "",
    "start": time.time(),
    "first_client": None,
    "clients": {"n": 0, "seconds": 0.0},
    "http": {"n": 0, "seconds": 0.0, "ops": {}},
    "sleep": {"n": 0, "seconds": 0.0},
    "intervals": [],
}
_LOCAL = threading.local()
_KEEP_SLEEPS = not _STATS["argv0"].startswith("ansible-playbook")
_real_sleep = time.sleep


def _interval(kind, wall_start, took):
    _STATS["intervals"].append([kind, wall_start, wall_start + took])


def _sleep(seconds):
    wall, t0 = time.time(), time.perf_counter()
    try:
        return _real_sleep(seconds)
    finally:
        took = time.perf_counter() - t0
        _STATS["sleep"]["n"] += 1
        _STATS["sleep"]["seconds"] += took
        if _KEEP_SLEEPS:
            _interval("s", wall, took)


def _patch_endpoint(mod):
    endpoint_cls = mod.Endpoint
    do_get_response, send = endpoint_cls._do_get_response, endpoint_cls._send

    def _do_get_response_timed(self, request, operation_model, context):
        _LOCAL.op = "%s:%s" % (operation_model.service_model.service_name, operation_model.name)
        return do_get_response(self, request, operation_model, context)

    def _send_timed(self, request):
        wall, t0 = time.time(), time.perf_counter()
        try:
            return send(self, request)
        finally:
            took = time.perf_counter() - t0
            _interval("h", wall, took)
            http = _STATS["http"]
            http["n"] += 1
            http["seconds"] += took
            op = http["ops"].setdefault(getattr(_LOCAL, "op", "?"), [0, 0.0])
            op[0] += 1
            op[1] += took

    endpoint_cls._do_get_response = _do_get_response_timed
    endpoint_cls._send = _send_timed


def _patch_session(mod):
    session_cls = mod.Session
    create_client = session_cls.create_client

    def create_client_timed(self, *args, **kwargs):
        wall, t0 = time.time(), time.perf_counter()
        if _STATS["first_client"] is None:
            _STATS["first_client"] = wall
        try:
            return create_client(self, *args, **kwargs)
        finally:
            took = time.perf_counter() - t0
            _STATS["clients"]["n"] += 1
            _STATS["clients"]["seconds"] += took
            _interval("c", wall, took)

    session_cls.create_client = create_client_timed


_PATCHES = {"botocore.endpoint": _patch_endpoint, "botocore.session": _patch_session}


class _Loader(importlib.abc.Loader):
    def __init__(self, loader, patch):
        self._loader, self._patch = loader, patch

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        patch = _PATCHES.get(fullname)
        if patch is None:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader, patch)
        return spec


def _write():
    if _STATS.get("written"):
        return
    _STATS["written"] = True
    _STATS["end"] = time.time()
    record = dict(_STATS)
    del record["written"]
    try:
        with open(_PATH, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    except OSError:
        pass


def _after_fork_in_child():
    argv0 = _STATS["argv0"]
    _STATS.clear()
    _STATS.update({
        "pid": os.getpid(),
        "argv0": argv0 if argv0.endswith(" (fork)") else argv0 + " (fork)",
        "start": time.time(),
        "first_client": None,
        "clients": {"n": 0, "seconds": 0.0},
        "http": {"n": 0, "seconds": 0.0, "ops": {}},
        "sleep": {"n": 0, "seconds": 0.0},
        "intervals": [],
    })


_real_os_exit = os._exit


def _os_exit(status):
    _write()
    _real_os_exit(status)


if _PATH:
    time.sleep = _sleep
    sys.meta_path.insert(0, _Finder())
    atexit.register(_write)
    os.register_at_fork(after_in_child=_after_fork_in_child)
    os._exit = _os_exit
