#!/usr/bin/env python
"""Offline stand-in for ansible-test's pip bootstrap script (get-pip.py).

Before most sanity tests ansible-test creates a virtual environment without pip and
bootstraps pip into it with ``get-pip-<version>.py``, downloaded from a host that cannot be
reached from this project's machines. ansible-test first looks for a cached copy at
``~/.ansible/test/cache/get_pip_<version with underscores>.py``; this file is written there.

Two ways to run it:

* ``python scripts/get_pip_standin.py --install`` (what ``make venv`` does, run with the
  venv's python): copies this file to the cache path for the pip version that the installed
  ansible-test asks for. A real get-pip script already in the cache is left alone.
* As the cached bootstrap script (what ansible-test does): ``python get_pip_X_Y.py
  [pip options] pip==X.Y [--no-setuptools] [--no-wheel]``. It bootstraps pip with the
  standard library's ``ensurepip`` (offline, bundled wheel), then installs the requested
  pip release from the package index, as the real get-pip.py would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

MARKER = "convox.rack get-pip stand-in"  # identifies files this script wrote
# Flags of get-pip.py that mean "do not install this package"; pip itself does not know them.
GET_PIP_ONLY_FLAGS = ("--no-setuptools", "--no-wheel")
CACHE_DIR = os.path.expanduser(os.path.join("~", ".ansible", "test", "cache"))


def bootstrap(argv: list[str]) -> int:
    """Install pip into the running interpreter's environment, like get-pip.py."""
    # In a child process: ensurepip.bootstrap() in this one would set PIP_CONFIG_FILE to
    # /dev/null in os.environ, and the pip install below would lose the machine's pip
    # configuration (index, certificate bundle).
    status = subprocess.call(
        [sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], stdout=subprocess.DEVNULL
    )
    if status:
        return status
    pip_args = [arg for arg in argv if arg not in GET_PIP_ONLY_FLAGS]
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"] + pip_args
    status = subprocess.call(command)
    if status == 0 and "--no-setuptools" in argv:
        # ensurepip of Python < 3.12 also brings setuptools, which get-pip would not install
        status = subprocess.call([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"])
    return status


def wanted_pip_version() -> str:
    """Return the pip version that the installed ansible-test bootstraps."""
    # pylint: disable=import-outside-toplevel
    from ansible_test._internal import python_requirements

    class _Python:  # only .version is read
        version = "%d.%d" % sys.version_info[:2]

    return python_requirements.get_venv_packages(_Python())["pip"]


def same_content(target: str) -> bool:
    """Tell whether target already is a copy of this file."""
    with open(target, "rb") as cached, open(os.path.abspath(__file__), "rb") as this:
        return cached.read() == this.read()


def install() -> int:
    """Copy this file to ansible-test's cache under the name it looks for."""
    version = wanted_pip_version()
    target = os.path.join(CACHE_DIR, "get_pip_%s.py" % version.replace(".", "_"))
    if os.path.exists(target):
        with open(target, encoding="utf-8", errors="replace") as handle:
            if MARKER not in handle.read():
                print("%s: a real bootstrap script is already cached, left alone" % target)
                return 0
        if same_content(target):
            return 0
    os.makedirs(CACHE_DIR, exist_ok=True)
    shutil.copyfile(os.path.abspath(__file__), target)
    print("%s: pip %s bootstrap stand-in written" % (target, version))
    return 0


def main() -> int:
    """Dispatch on how the script was called."""
    if sys.argv[1:] == ["--install"]:
        return install()
    if re.match(r"^get_pip_[0-9_]+\.py$", os.path.basename(sys.argv[0])) or any(
        arg.startswith("pip==") for arg in sys.argv[1:]
    ):
        return bootstrap(sys.argv[1:])
    print("usage: %s --install" % sys.argv[0], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
