# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rack and app modules' action (plugins/action/app.py is this one): runs the module and, while it
runs, prints what it is doing; from the collection's roles, its messages name the playbook variables.

A run on AWS takes minutes (NAT gateways, load balancer, instances). The module notes each step
in a small JSON file (module_utils/_rack/aws.py, Progress: {"step": ..., "at": ...}) whose path
this action gives it in CONVOX_RACK_PROGRESS; the action reads it every second and prints

    rack production: waiting for NAT gateways 1/2 available (nat-2 pending) (1m40s)

at most every rack_poll_interval seconds (15 by default, a task variable) when the step changed,
and at least every twice that while the run lasts. A run shorter than rack_poll_interval prints
nothing. Progress needs the module to run on the controller (connection local, as in the
collection's playbooks); elsewhere, and with `async`, the module runs as any module does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
import threading
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

display = Display()

PROGRESS_ENV = "CONVOX_RACK_PROGRESS"

# From the collection's roles, messages name the playbook variables the user typed, not the
# module's options: `high_availability: cannot change` -> `rack_high_availability: ...`.
ROLE_VARIABLES = {
    "rack": dict({"name": "rack"}, **{o: "rack_" + o for o in (
        "state", "create", "region", "instance_type", "instance_count", "private", "high_availability", "vpc_cidr",
        "internal_only", "log_retention", "image_id", "permissions_boundary", "tags", "purge_tags", "force",
        "purge_data", "wait", "wait_timeout", "allow_downgrade")}),
    # roles/app: the app is `app`, its rack `rack` (the rack's region `rack_region`), the rest app_*.
    "app": dict({"name": "app", "rack": "rack", "region": "rack_region"}, **{o: "app_" + o for o in (
        "state", "log_retention", "immutable_tags", "tags", "purge_tags", "purge_data")}),
}


def with_message(summary, msg):
    """ansible-core 2.19 keeps the module's failure (its message, for the [ERROR] line) in the result's
    `exception`: give it the message in the user's words too. Other values are left as they are."""
    event = getattr(summary, "event", None)
    if summary is None or event is None or not dataclasses.is_dataclass(summary) or not dataclasses.is_dataclass(event):
        return summary
    try:
        return dataclasses.replace(summary, event=dataclasses.replace(event, msg=msg))
    except (TypeError, ValueError):
        return summary


def in_user_words(text, variables):
    """`option:` (a message's field, or `set force: true`), `set option` and `'option'` (ansible's own
    type errors) as the variables of a playbook."""
    if not isinstance(text, str):
        return text
    options = "|".join(sorted((re.escape(o) for o in variables), key=len, reverse=True))
    text = re.sub(r"(?<![\w.])(%s)(?=: )" % options, lambda m: variables[m.group(1)], text)
    text = re.sub(r"\b(set|with|give) (%s)\b" % options, lambda m: "%s %s" % (m.group(1), variables[m.group(2)]), text)
    return re.sub(r"'(%s)'" % options, lambda m: "'%s'" % variables[m.group(1)], text)


DEFAULT_INTERVAL = 15


def elapsed(seconds):
    seconds = int(seconds)
    return "%dm%02ds" % divmod(seconds, 60) if seconds >= 60 else "%ds" % seconds


def read_step(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f).get("step")
    except (OSError, ValueError, AttributeError):
        return None


class Ticker:
    """When to print: a new step once `interval` seconds passed since the last line, any step
    once twice that passed (the run is alive), never more often."""

    def __init__(self, interval, start):
        self.interval = interval
        self.last_line = start
        self.last_step = None

    def due(self, step, now):
        quiet = now - self.last_line
        if step is None or quiet < self.interval:
            return False
        if step != self.last_step or quiet >= 2 * self.interval:
            self.last_line, self.last_step = now, step
            return True
        return False


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        wrap_async = self._task.async_val and not self._connection.has_native_async
        if wrap_async or self._connection.transport not in ("local", "ansible.builtin.local"):
            result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        else:
            result = merge_hash(result, self._run_with_progress(task_vars))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        variables = self._role_variables()
        if variables and result.get("failed"):
            result["msg"] = in_user_words(result.get("msg"), variables)
            result["exception"] = with_message(result.get("exception"), result["msg"])
            if result.get("field") in variables:
                result["variable"] = variables[result["field"]]
        if variables and result.get("warnings"):
            result["warnings"] = [in_user_words(w, variables) for w in result["warnings"]]
        return result

    def _role_variables(self):
        """The module's options as the variables of the collection's role that runs it, if it does."""
        role = getattr(self._task, "_role", None)
        name = role.get_name() if role is not None else ""
        short = name.rsplit(".", 1)[-1]
        if short not in ROLE_VARIABLES or name not in (short, "convox.rack." + short):
            return None
        return ROLE_VARIABLES[short]

    def _interval(self, task_vars):
        try:
            value = int(self._templar.template(task_vars.get("rack_poll_interval", DEFAULT_INTERVAL)))
        except (TypeError, ValueError):
            value = DEFAULT_INTERVAL
        return max(value, 1)

    def _run_with_progress(self, task_vars):
        label = "%s %s" % (self._task.action.rsplit(".", 1)[-1], self._task.args.get("name", ""))
        fd, path = tempfile.mkstemp(prefix="convox-rack-progress-", suffix=".json")
        os.close(fd)
        done = {}

        def work():
            try:
                done["result"] = self._execute_module(task_vars=task_vars, wrap_async=False)
            except BaseException as e:  # pylint: disable=broad-except  # handed to the main thread
                done["error"] = e

        before = os.environ.get(PROGRESS_ENV)
        os.environ[PROGRESS_ENV] = path
        try:
            start = time.monotonic()
            ticker = Ticker(self._interval(task_vars), start)
            worker = threading.Thread(target=work, name="convox-rack-module", daemon=True)
            worker.start()
            while worker.is_alive():
                worker.join(1.0)
                now = time.monotonic()
                if worker.is_alive():
                    step = read_step(path)
                    if ticker.due(step, now):
                        display.display("%s: %s (%s)" % (label.strip(), step, elapsed(now - start)))
        finally:
            if before is None:
                os.environ.pop(PROGRESS_ENV, None)
            else:
                os.environ[PROGRESS_ENV] = before
            for leftover in (path,):
                try:
                    os.unlink(leftover)
                except OSError:
                    pass
        if "error" in done:
            raise done["error"]
        return done["result"]
