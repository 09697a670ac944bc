# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark helper (not part of the collection): time every task of a playbook run.

Enabled by bench/bench_rack.py with ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins and
ANSIBLE_CALLBACKS_ENABLED=bench_timer; writes one JSON line per finished task (name, action,
seconds from task start to its result, changed, failed, the module's aws_calls when it returns
one, the attempts of an until loop) and one line for the whole run to the file named by BENCH_TIMER_FILE.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: bench_timer
type: aggregate
short_description: per-task wall-clock timings for bench/bench_rack.py
description:
  - Writes one JSON line per task result to the file named by the BENCH_TIMER_FILE environment variable.
requirements:
  - enable in configuration
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("BENCH_TIMER_FILE")
        self._started = {}
        self._t0 = time.time()

    def _write(self, record):
        if not self._path:
            return
        with open(self._path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def v2_playbook_on_start(self, playbook):
        self._write({"event": "playbook_start", "t": time.time()})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._started[task._uuid] = time.time()

    def v2_playbook_on_handler_task_start(self, task):
        self._started[task._uuid] = time.time()

    def _result(self, result, status):
        task = result._task
        now = time.time()
        res = result._result or {}
        record = {
            "event": "task",
            "status": status,
            "name": task.get_name(),
            "action": task.action,
            "start": self._started.get(task._uuid, now),
            "end": now,
            "seconds": now - self._started.get(task._uuid, now),
            "changed": bool(res.get("changed")),
        }
        if "aws_calls" in res:
            record["aws_calls"] = res["aws_calls"]
        if "attempts" in res:
            record["attempts"] = res["attempts"]
        if status == "failed":
            record["msg"] = str(res.get("msg", ""))[:2000]
        self._write(record)

    def v2_runner_on_ok(self, result):
        self._result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "failed")

    def v2_playbook_on_stats(self, stats):
        self._write({"event": "playbook_end", "t": time.time(), "seconds": time.time() - self._t0})
