"""A module of the collection run in this process: its public main(), as ansible-playbook would run
it, with a real boto3 client talking HTTP to the local AWS, but without the start-up of
ansible-playbook and of the module's own Python process (about 2.5 s of CPU per run, the most of a
test that checks an option or a fault).

For the many option and fault permutations of the modules. What a user runs (each playbook, the
roles, AWX's paths, the inventory) stays real ansible-playbook runs (conftest.Runner).

The only door into the collection is `plugins/modules/<name>.py`'s main() with its arguments
(ansible.module_utils.testing.patch_module_args, as ansible-core's own unit tests do): nothing of
plugins/module_utils/ is imported here, so that its layout may change freely."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import threading

from ansible.module_utils.common import warnings as _warnings
from ansible.module_utils.testing import patch_module_args

_LOCK = threading.Lock()  # os.environ and the module's globals are the process's: one run at a time


@contextlib.contextmanager
def _environ(env):
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _message(item):
    """A warning or deprecation as the module's JSON gives it: its text."""
    if isinstance(item, dict):
        event = item.get("event") or {}
        return event.get("msg") or item.get("msg") or json.dumps(item)
    return item


def run_module(module_name, args, env, check=False, diff=False):
    """Run convox.rack.<module_name>'s main() with `args`, in `env` (the environment of an
    ansible-playbook run: AWS_ENDPOINT_URL, keys, region), in check mode and with diff as asked.
    Returns its result as module.yml registers it: `failed` when it failed, `changed` always,
    warnings and deprecations as their messages."""
    module = importlib.import_module("ansible_collections.convox.rack.plugins.modules.%s" % module_name)
    full = dict(args, _ansible_check_mode=check, _ansible_diff=diff, _ansible_module_name="convox.rack.%s" % module_name)
    out = io.StringIO()
    with _LOCK, _environ(env), patch_module_args(full), contextlib.redirect_stdout(out):
        _warnings._global_warnings.clear()
        _warnings._global_deprecations.clear()
        try:
            module.main()
        except SystemExit:
            pass
        finally:
            _warnings._global_warnings.clear()
            _warnings._global_deprecations.clear()
    text = out.getvalue().strip()
    if not text:
        raise AssertionError("convox.rack.%s printed no result" % module_name)
    result = json.loads(text.splitlines()[-1])
    # As ansible-playbook registers it: `failed` and `changed` always, no `invocation` (shown only at -vvv).
    result.setdefault("failed", False)
    result.setdefault("changed", False)
    result.pop("invocation", None)
    for key in ("warnings", "deprecations"):
        if key in result:
            result[key] = [_message(w) for w in result[key]]
    return result
