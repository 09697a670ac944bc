#!/usr/bin/env python
"""The ansible-core matrix: the collection's demo and its module tests on each supported ansible-core.

For each entry CORE:PYTHON (by default 2.17 on Python 3.12, 2.19 on 3.11 (the pinned one, .venv's)
and 2.21 on 3.13), a virtual environment of its own under .venv/matrix/ holds that ansible-core (the
newest patch release on PyPI) and what the tests import (boto3, PyYAML, pytest), nothing else; the
collections are .venv's (amazon.aws and community.aws from the `ansible` wheel, convox.rack linked),
and the local AWS is started by .venv's Python (moto does not depend on ansible-core). Then, with that
environment's ansible-playbook, ansible-inventory and ansible-doc first on PATH (CONVOX_VENV_BIN, read
by tests/integration/conftest.py), pytest runs TESTS: the README's demo as a user types it and the
tests of what ansible-core shapes (module documentation, the action plugin's progress, the summary,
errors in the user's words, argument checks, deprecation warnings).

The Pythons come from pyenv (`pyenv root`/versions/<X.Y>.*) or from PATH (pythonX.Y). A venv is
rebuilt when its recipe (the core version, this file's PINNED) changes. The entry that is .venv itself
(the pinned ansible-core on its Python) uses .venv as it is. Prints the wall time of
each step; exits non-zero when any version fails (after running them all).

Usage: matrix.py [--versions 2.17:3.12,2.19:3.11,2.21:3.13] [--root .venv/matrix] [-- PYTEST ARGS]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSIONS = "2.17:3.12,2.19:3.11,2.21:3.13"
# What the tests import, pinned as requirements-dev.txt pins them (ansible-core brings Jinja2 and PyYAML).
PINNED = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "PyYAML", "pytest",
          "pytest-xdist", "execnet", "iniconfig", "pluggy", "packaging", "Pygments")
# The demo (README.md's commands, run and compared) and the tests of what ansible-core shapes.
# Lean on purpose (each version adds its venv and these to make test: about 2 and 3 minutes for 2.17 and 2.21
# on the 2-core machine, venvs 1.5 minutes from nothing): the demo, the modules' documentation as ansible-doc
# reads it, and what differs between ansible-core releases: the action plugin (progress, error rewriting in
# 2.19's result dataclasses), role argument validation, deprecation warnings. Three workers: the tests wait.
UX = "tests/integration/test_user_output.py::"
TESTS = ["tests/integration/test_docs_commands.py::test_readme_commands", "tests/unit/test_docs_match_spec.py",
         UX + "test_a_slow_healthy_install_shows_its_steps_and_no_failure",
         UX + "test_app_errors_name_the_playbook_variables",
         UX + "test_a_wrong_type_is_one_line_naming_the_variable_and_the_type",
         UX + "test_no_deprecation_warning"]


def pins():
    wanted = {name.lower() for name in PINNED}
    out = []
    with open(os.path.join(ROOT, "requirements-dev.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if "==" in line and line.split("==")[0].split("[")[0].lower() in wanted:
                out.append(line)
    return out


def find_python(version):
    """The interpreter of Python `version` (X.Y): pyenv's, else pythonX.Y on PATH."""
    roots = []
    try:
        roots.append(subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    roots.append(os.path.expanduser("~/.pyenv"))
    for root in roots:
        found = sorted(glob.glob(os.path.join(root, "versions", version + ".*", "bin", "python" + version)))
        if found:
            return found[-1]
    return shutil.which("python" + version)


def pinned(core, py):
    """Whether .venv is that entry already (the pinned ansible-core on its Python): it is used as is."""
    probe = os.path.join(ROOT, ".venv", "bin", "python")
    if not os.path.exists(probe):
        return False
    got = subprocess.run([probe, "-c", "import sys, ansible.release as r; print('%d.%d' % sys.version_info[:2],"
                                 " r.__version__)"], capture_output=True, text=True, check=False).stdout.split()
    return len(got) == 2 and got[0] == py and got[1].startswith(core + ".")


def run(cmd, **kw):
    print("+ %s" % " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=False, **kw).returncode


def build(venv, python, core, log):
    """Create or refresh the venv of one matrix entry; (ok, seconds)."""
    started = time.monotonic()
    recipe = "\n".join(["ansible-core==%s.*" % core] + pins()) + "\n"
    stamp = os.path.join(venv, ".matrix.stamp")
    digest = hashlib.sha256((python + recipe).encode()).hexdigest()
    if os.path.exists(stamp) and open(stamp, encoding="utf-8").read() == digest:
        return True, time.monotonic() - started
    shutil.rmtree(venv, ignore_errors=True)
    if run([python, "-m", "venv", venv], stdout=log, stderr=subprocess.STDOUT):
        return False, time.monotonic() - started
    pip = [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    reqs = os.path.join(venv, "requirements.txt")
    with open(reqs, "w", encoding="utf-8") as f:
        f.write(recipe)
    if run(pip + ["-r", reqs], stdout=log, stderr=subprocess.STDOUT):
        return False, time.monotonic() - started
    with open(stamp, "w", encoding="utf-8") as f:
        f.write(digest)
    return True, time.monotonic() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--versions", default=os.environ.get("MATRIX_VERSIONS", VERSIONS))
    parser.add_argument("--root", default=os.path.join(ROOT, ".venv", "matrix"))
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args(argv)
    os.makedirs(args.root, exist_ok=True)
    results = []
    for entry in args.versions.replace(" ", ",").split(","):
        if not entry:
            continue
        core, py = entry.split(":")
        print("\n==================== ansible-core %s on Python %s" % (core, py), flush=True)
        python = find_python(py)
        if python is None:
            results.append((entry, "FAILED (no Python %s: pyenv install %s)" % (py, py), 0, 0))
            continue
        venv = os.path.join(args.root, "core-%s" % core)
        if pinned(core, py):
            venv, ok, built = os.path.join(ROOT, ".venv"), True, 0.0  # .venv itself: nothing to build
        else:
            with open(os.path.join(args.root, "core-%s.log" % core), "a", encoding="utf-8") as log:
                ok, built = build(venv, python, core, log)
        if not ok:
            results.append((entry, "FAILED (venv: see %s)" % os.path.join(args.root, "core-%s.log" % core), built, 0))
            continue
        bin_dir = os.path.join(venv, "bin")
        env = dict(os.environ, CONVOX_VENV_BIN=bin_dir, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
        run([os.path.join(bin_dir, "ansible"), "--version"], env=env, cwd=ROOT)
        started = time.monotonic()
        rc = 0
        # tests/unit and tests/integration each have a conftest.py imported as `conftest`: one pytest each.
        for group in ("tests/integration/", "tests/unit/"):
            chosen = [t for t in args.pytest_args or TESTS if t.startswith(group)]
            if chosen:
                rc |= run([os.path.join(bin_dir, "python"), "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "-n", os.environ.get("MATRIX_WORKERS", "3")] + chosen, env=env, cwd=ROOT)
        results.append((entry, "ok" if rc == 0 else "FAILED (pytest rc %d)" % rc, built, time.monotonic() - started))
    print("\n==================== matrix")
    for entry, result, built, tested in results:
        print("  ansible-core %-12s %-40s venv %5.0fs  tests %5.0fs" % (entry, result, built, tested))
    return 0 if results and all(r[1] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
