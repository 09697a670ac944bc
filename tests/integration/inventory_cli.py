"""ansible-inventory as a user runs it, and its JSON read back: for test_inventory.py,
test_input_properties_playbooks.py and awx_launch.py (which reads back what AWX stores).

(Not in conftest.py: `pytest tests/` loads two modules named conftest, so the test modules that
need these import them from here.)"""

from __future__ import annotations

import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def plain(data):
    """ansible-inventory's JSON with its {"__ansible_unsafe": value} markers taken off: ansible-core 2.19
    marks every string an inventory plugin sets, as none is trusted as a template. (AWX stores the
    marked export, and Ansible's JSON decoder turns it back into the (unsafe) string when a job loads
    AWX's inventory script: what a job reads is this.)"""
    if isinstance(data, dict):
        if set(data) == {"__ansible_unsafe"}:
            return data["__ansible_unsafe"]
        return {k: plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return data


def ansible_inventory(config, *args, env, expect_rc=0):
    """`ansible-inventory -i <config> ARGS` from the repository root, as a user runs it, with `env`;
    the finished process. Another exit status than expect_rc (None: any) fails with its output."""
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-inventory"), "-i", str(config)] + list(args), cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    if expect_rc is not None and proc.returncode != expect_rc:
        raise AssertionError("ansible-inventory exited %d\n%s\n%s" % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    return proc


def listed(proc):
    """What an ansible-inventory run printed (--list, --host), as plain data."""
    return plain(json.loads(proc.stdout))
