#!/usr/bin/env python
"""Start, stop, reset and probe the embedded local AWS (moto's server on loopback).

Usage: local_aws.py up|down|reset|status [--port PORT] [--state-dir DIR] [--quiet]

* ``up`` starts ``moto_server -H 127.0.0.1 -p PORT`` in its own session (so that it keeps
  nobody's stdout open), with its output in ``DIR/local-aws.log`` and its pid in
  ``DIR/local-aws.pid``, then waits until ``GET /moto-api/`` answers (data.json serialises every resource and grows slow). It does
  nothing when the server already answers. Exit status 0 when up.
* ``down`` stops the server started by ``up`` (the pid in the pid file only).
* ``reset`` wipes every region and account (``POST /moto-api/reset``).
* ``status`` exits 0 when the server answers, 1 otherwise.

The port also comes from ``LOCAL_AWS_PORT``; the default is 4566.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def url(port: int, path: str) -> str:
    """Return the address of a moto API path."""
    return "http://%s:%d%s" % (HOST, port, path)


def answers(port: int, tries: int = 3) -> bool:
    """Tell whether a moto server answers on the port (a loaded machine may answer slowly)."""
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(url(port, "/moto-api/"), timeout=5) as response:
                return response.status == 200
        except ConnectionRefusedError:
            return False
        except (urllib.error.URLError, OSError) as err:
            if isinstance(getattr(err, "reason", None), ConnectionRefusedError):
                return False
            if attempt + 1 < tries:
                time.sleep(0.5)
    return False


def read_pid(pid_file: str) -> int | None:
    """Return the pid recorded by ``up``, if that process still runs."""
    try:
        with open(pid_file, encoding="utf-8") as handle:
            pid = int(handle.read().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def moto_server() -> list:
    """Return the command that runs moto's server: scripts/moto_server.py (moto with fixes for
    emulator crashes, see that file) under the running python (the venv's)."""
    return [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "moto_server.py")]


def up(args: argparse.Namespace, pid_file: str, log_file: str) -> int:
    """Start the server unless it already answers."""
    if answers(args.port):
        say(args, "local AWS already up on %s" % url(args.port, ""))
        return 0
    os.makedirs(args.state_dir, exist_ok=True)
    with open(log_file, "ab") as log, open(os.devnull, "rb") as devnull:
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            moto_server() + ["-H", HOST, "-p", str(args.port)],
            stdin=devnull,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    with open(pid_file, "w", encoding="utf-8") as handle:
        handle.write("%d\n" % process.pid)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if answers(args.port):
            say(args, "local AWS up on %s (pid %d, log %s)" % (url(args.port, ""), process.pid, log_file))
            return 0
        if process.poll() is not None:
            break
        time.sleep(0.2)
    print("local AWS did not come up; last lines of %s:" % log_file, file=sys.stderr)
    with open(log_file, encoding="utf-8", errors="replace") as handle:
        sys.stderr.writelines(handle.readlines()[-20:])
    if process.poll() is None:
        process.terminate()
    return 1


def down(args: argparse.Namespace, pid_file: str) -> int:
    """Stop the server whose pid ``up`` recorded."""
    pid = read_pid(pid_file)
    if pid is None:
        if answers(args.port):
            print("a server answers on port %d but was not started by 'up': left alone" % args.port, file=sys.stderr)
        else:
            say(args, "local AWS not running")
        _remove(pid_file)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and read_pid(pid_file) is not None:
        time.sleep(0.1)
    if read_pid(pid_file) is not None:
        os.kill(pid, signal.SIGKILL)
    _remove(pid_file)
    say(args, "local AWS stopped (pid %d)" % pid)
    return 0


def reset(args: argparse.Namespace) -> int:
    """Wipe all state of the server."""
    request = urllib.request.Request(url(args.port, "/moto-api/reset"), data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except (urllib.error.URLError, OSError) as error:
        print("local AWS reset failed: %s" % error, file=sys.stderr)
        return 1
    say(args, "local AWS reset")
    return 0


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def say(args: argparse.Namespace, message: str) -> None:
    """Print a progress line unless --quiet."""
    if not args.quiet:
        print(message)


def main() -> int:
    """Parse the command line and run the action."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "reset", "status"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_AWS_PORT") or 4566))
    parser.add_argument("--state-dir", default=".venv")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    pid_file = os.path.join(args.state_dir, "local-aws.pid")
    log_file = os.path.join(args.state_dir, "local-aws.log")
    if args.action == "up":
        return up(args, pid_file, log_file)
    if args.action == "down":
        return down(args, pid_file)
    if args.action == "reset":
        return reset(args)
    up_now = answers(args.port)
    say(args, "local AWS %s on %s" % ("up" if up_now else "down", url(args.port, "")))
    return 0 if up_now else 1


if __name__ == "__main__":
    sys.exit(main())
