#!/usr/bin/env python
"""Benchmark convox.rack.rack against a peer built from amazon.aws / community.aws modules.

Run by hand from the repository root, after `make venv` (not part of `make test`):

    .venv/bin/python bench/bench_rack.py [--repeat 3] [--sides ours,role,peer] [--ref HEAD | --live]

What it does, on one local AWS (moto's server) that it starts itself on a free loopback port and
stops at the end:

* four phases per side, each an ansible-playbook run: install, a no-op rerun, an update of
  instance_count (1 -> 2) and uninstall. Sides:
    ours  bench/playbooks/ours_rack.yml: one task calling convox.rack.rack
    role  playbooks/install_rack.yml / uninstall_rack.yml: the convox.rack.rack role (async + polling)
    peer  bench/peer/install.yml / uninstall.yml: the same rack, one amazon.aws/community.aws task
          per resource
  Each repetition starts from an empty emulator (POST /moto-api/reset); within it the sides take
  turns phase by phase (their racks have different names), so that ours and the peer run each
  phase under the same machine load, and the sides' order rotates between repetitions.
* every phase is timed (wall clock of the ansible-playbook process; also its CPU time and the
  local AWS's, which a busy machine disturbs less) and its AWS API calls counted
  the same way for every side: the request lines moto's server logs (werkzeug logs one per request)
  between two marks, leaving out /moto-api/ requests. Each sequence runs --repeat times; the table
  shows medians.
* floors, --repeat times each: ansible-playbook with one debug task (no module process), with one
  ansible.builtin.ping task (one module process), with one amazon.aws.aws_az_info task (one AWS
  module process making one AWS call).
* one more, instrumented pass of ours and the peer (not in the medians), with bench/_probe on PYTHONPATH: every
  Python process records how long it lived, when it asked for its first AWS client, the time spent
  creating clients, sending AWS requests (per operation) and sleeping. That splits our time into
  process start, module run and AWS calls.
* calibration, once per repetition: the latency of one call to the local AWS (a boto3 loop), the
  imports a rack module run pays, and the cost of creating the rack's 9 clients with one boto3
  session per client (what AnsibleAWSModule.client does) and with one shared session.

The code measured is convox.rack at a commit (--ref, default HEAD), copied with git archive into
the results directory and found there through ANSIBLE_COLLECTIONS_PATH (amazon.aws and community.aws
from .venv), so that edits made while the benchmark runs do not mix into it; --live measures the
work tree instead. The bench's own files (bench/) are always taken from the work tree.

The local AWS is bench/moto_bench_server.py: scripts/moto_server.py unchanged plus four fixes the
peer's modules need (see that file); --plain-moto uses scripts/moto_server.py alone (the peer
cannot run there: it is then left out unless asked for).

Results: a table on stdout, and bench/results/<time>/ (results.json, summary.md, moto.log and the
log of every playbook run).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
VENV_BIN = os.path.join(REPO, ".venv", "bin")
PYTHON = os.path.join(VENV_BIN, "python")
ANSIBLE_PLAYBOOK = os.path.join(VENV_BIN, "ansible-playbook")
HOST = "127.0.0.1"

PHASES = ("install", "noop", "update", "uninstall")
PHASE_TITLES = {"install": "install", "noop": "no-op rerun", "update": "instance_count 1 -> 2",
                "uninstall": "uninstall"}
SIDES = ("ours", "role", "peer")
SIDE_TITLES = {"ours": "ours (convox.rack.rack, one task)", "role": "ours (convox.rack.rack role)",
               "peer": "peer (amazon.aws + community.aws)"}
FLOORS = ("debug", "ping", "aws")

# The aims of the issue: ours / peer at most these ratios.
AIMS = {("install", "time"): 0.10, ("noop", "time"): 1 / 6, ("install", "calls"): 0.60,
        ("noop", "calls"): 0.25}

# One request line of werkzeug's log: '127.0.0.1 - - [date] "GET /path HTTP/1.1" 200 -', where the
# quoted request and the status may be wrapped in ANSI colour codes.
ANSI = r"(?:\x1b\[[0-9;]*m)*"
REQUEST_LINE = re.compile(r'"' + ANSI + r"([A-Z]+) (\S+) HTTP/[0-9.]+" + ANSI + r'" (\d{3}) ')
MARK_PATH = "/moto-api/bench-mark/"

# What convox.rack does for the ECS capacity provider, which the peer cannot build (no module).
CAPACITY_PROVIDER_OPS = ("ecs:DescribeCapacityProviders", "ecs:CreateCapacityProvider",
                         "ecs:PutClusterCapacityProviders", "ecs:DeleteCapacityProvider")

# The services convox.rack.rack creates clients for on an install.
RACK_SERVICES = ("sts", "s3", "ec2", "iam", "autoscaling", "ecs", "elbv2", "logs", "ssm")


class BenchError(Exception):
    pass


# --- the local AWS -------------------------------------------------------------------------------
def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class LocalAws:
    """moto's server on a loopback port, its log in a file; counts requests between marks."""

    def __init__(self, log_path, plain=False, port=None):
        self.log_path = log_path
        self.plain = plain
        self.port = port or free_port()
        self.url = "http://%s:%d" % (HOST, self.port)
        self.process = None
        self._marks = 0

    def start(self, timeout=60):
        script = os.path.join(REPO, "scripts", "moto_server.py") if self.plain \
            else os.path.join(BENCH, "moto_bench_server.py")
        with open(self.log_path, "ab") as log, open(os.devnull, "rb") as devnull:
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                [PYTHON, script, "-H", HOST, "-p", str(self.port)], cwd=REPO, stdin=devnull, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, env=clean_env())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError("the local AWS exited at start (status %s); see %s"
                                 % (self.process.returncode, self.log_path))
            try:
                with urllib.request.urlopen(self.url + "/moto-api/data.json", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise BenchError("the local AWS did not answer within %ds; see %s" % (timeout, self.log_path))

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def cpu_seconds(self):
        """CPU time (user + system) the server process has used so far."""
        try:
            with open("/proc/%d/stat" % self.process.pid, encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def reset(self):
        req = urllib.request.Request(self.url + "/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=30) as response:
            response.read()

    def mark(self, label, timeout=30):
        """Log a mark (a request to a /moto-api/ path that 404s) and return the log offset just after it."""
        self._marks += 1
        path = "%s%d-%s" % (MARK_PATH, self._marks, re.sub(r"[^A-Za-z0-9_.-]", "_", label))
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError:
            pass
        needle = (" %s " % path).encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as log:
                data = log.read()
            at = data.rfind(needle)
            if at >= 0:
                end = data.find(b"\n", at)
                if end >= 0:
                    return end + 1
            time.sleep(0.05)
        raise BenchError("mark %s never reached the local AWS's log %s" % (path, self.log_path))

    def count(self, begin, end):
        """AWS API requests logged between two offsets: (count, count answered 5xx)."""
        with open(self.log_path, "rb") as log:
            log.seek(begin)
            data = log.read(end - begin).decode("utf-8", "replace")
        calls = errors = 0
        for line in data.splitlines():
            match = REQUEST_LINE.search(line)
            if not match or match.group(2).startswith("/moto-api/"):
                continue
            calls += 1
            if match.group(3).startswith("5"):
                errors += 1
        return calls, errors


# --- what is measured: a snapshot of a commit, or the work tree -------------------------------------
DEPENDENCIES = ("amazon/aws", "community/aws")
COLLECTION_PATHS = ("plugins", "roles", "playbooks", "meta")


def git(*args):
    return subprocess.run(["git", "-C", REPO] + list(args), capture_output=True, text=True, check=True).stdout.strip()


def tree_state():
    """HEAD and whether the collection's own files have uncommitted changes."""
    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = bool(git("status", "--porcelain", "--", *COLLECTION_PATHS))
    except (OSError, subprocess.CalledProcessError):
        return {"head": None, "dirty": None}
    return {"head": head, "dirty": dirty}


class Collections:
    """Where ansible finds convox.rack: a copy of a commit (default) or the work tree (--live).

    The work tree is edited while a benchmark runs (it takes many minutes); a copy of a commit
    keeps every run of one benchmark on the same code and says which code that was."""

    def __init__(self, out_dir, ref, live):
        self.live = live
        venv_collections = os.path.join(REPO, ".venv", "collections")
        if live:
            self.path = venv_collections
            self.rack_dir = REPO
            state = tree_state()
            self.describe = "the work tree at %s%s" % (state["head"], " with uncommitted changes" if state["dirty"] else "")
            self.commit = state["head"]
            return
        self.commit = git("rev-parse", "--short", ref + "^{commit}")
        subject = git("log", "-1", "--format=%s", self.commit)
        self.describe = "commit %s (%s)" % (self.commit, subject[:80])
        self.path = os.path.join(out_dir, "collections")
        self.rack_dir = os.path.join(self.path, "ansible_collections", "convox", "rack")
        os.makedirs(self.rack_dir)
        archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar", self.commit], capture_output=True,
                                 check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(self.rack_dir)  # nosec - our own repository's archive
        for dep in DEPENDENCIES:
            namespace, name = dep.split("/")
            os.makedirs(os.path.join(self.path, "ansible_collections", namespace), exist_ok=True)
            os.symlink(os.path.join(venv_collections, "ansible_collections", namespace, name),
                       os.path.join(self.path, "ansible_collections", namespace, name))

    def playbook(self, relative):
        """A playbook of the collection (the role's), from the measured code."""
        return os.path.join(self.rack_dir, relative)


# --- running playbooks ---------------------------------------------------------------------------
def clean_env():
    env = dict(os.environ)
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "PYTHONPATH",
                "BENCH_PROBE_FILE", "BENCH_TIMER_FILE"):
        env.pop(key, None)
    return env


def aws_env(aws, collections=None):
    env = clean_env()
    if collections is not None:
        env["ANSIBLE_COLLECTIONS_PATH"] = collections.path
    env.update({
        "AWS_ENDPOINT_URL": aws.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    })
    return env


def playbook_argv(side, phase, collections):
    """The ansible-playbook command line of one side's phase."""
    count = 2 if phase == "update" else 1
    if side == "ours":
        extra = {"rack": "bench", "state": "absent"} if phase == "uninstall" \
            else {"rack": "bench", "instance_count": count}
        return [ANSIBLE_PLAYBOOK, "bench/playbooks/ours_rack.yml", "-e", json.dumps(extra)]
    if side == "role":
        if phase == "uninstall":
            return [ANSIBLE_PLAYBOOK, collections.playbook("playbooks/uninstall_rack.yml"), "-e",
                    json.dumps({"rack": "benchrole", "rack_purge_data": True})]
        return [ANSIBLE_PLAYBOOK, collections.playbook("playbooks/install_rack.yml"), "-e",
                json.dumps({"rack": "benchrole", "rack_high_availability": False, "rack_instance_count": count})]
    if side == "peer":
        if phase == "uninstall":
            return [ANSIBLE_PLAYBOOK, "bench/peer/uninstall.yml", "-e", json.dumps({"rack": "peer"})]
        return [ANSIBLE_PLAYBOOK, "bench/peer/install.yml", "-e",
                json.dumps({"rack": "peer", "peer_instance_count": count})]
    raise ValueError(side)


def floor_argv(name):
    return [ANSIBLE_PLAYBOOK, "bench/playbooks/floor_%s.yml" % name]


class Runner:
    def __init__(self, aws, out_dir, collections):
        self.aws = aws
        self.collections = collections
        self.out_dir = out_dir
        self.runs = 0
        for sub in ("logs", "timers", "probes"):
            os.makedirs(os.path.join(out_dir, sub), exist_ok=True)

    def run(self, label, argv, probe=False):
        """Run one playbook; return its wall time, AWS calls, task timings and (with probe) process records."""
        self.runs += 1
        stem = "%03d-%s" % (self.runs, label)
        log_path = os.path.join(self.out_dir, "logs", stem + ".log")
        timer_path = os.path.join(self.out_dir, "timers", stem + ".jsonl")
        probe_path = os.path.join(self.out_dir, "probes", stem + ".jsonl")
        env = aws_env(self.aws, self.collections)
        env.update({
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_CALLBACK_PLUGINS": os.path.join(BENCH, "callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "bench_timer",
            "BENCH_TIMER_FILE": timer_path,
        })
        if probe:
            env["PYTHONPATH"] = os.path.join(BENCH, "_probe")
            env["BENCH_PROBE_FILE"] = probe_path
        begin = self.aws.mark(stem + "-begin")
        load = os.getloadavg()[0]
        moto_cpu = self.aws.cpu_seconds()
        with open(log_path, "wb") as log:
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            proc = subprocess.run(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, check=False)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        moto_cpu_after = self.aws.cpu_seconds()
        end = self.aws.mark(stem + "-end")
        calls, errors = self.aws.count(begin, end)
        tasks = read_jsonl(timer_path)
        if proc.returncode != 0:
            with open(log_path, encoding="utf-8", errors="replace") as log:
                tail = "".join(log.readlines()[-25:])
            raise BenchError("%s failed (exit status %d): %s\n%s\nfull log: %s"
                             % (label, proc.returncode, " ".join(argv), tail, log_path))
        task_records = [t for t in tasks if t.get("event") == "task"]
        result = {
            "label": label,
            "wall": wall,
            # CPU time of ansible-playbook and every process it waited for (its module runs; not the
            # detached async_wrapper job of the role), and of the local AWS while the run lasted.
            "cpu": (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime),
            "moto_cpu": None if moto_cpu is None or moto_cpu_after is None else moto_cpu_after - moto_cpu,
            "load": load,
            "calls": calls,
            "errors_5xx": errors,
            "tasks": task_records,
            "changed_tasks": [t["name"] for t in task_records if t.get("changed")],
            "module_aws_calls": sum(t.get("aws_calls", 0) for t in task_records),
            "log": os.path.relpath(log_path, REPO),
        }
        if probe:
            result["processes"] = read_jsonl(probe_path)
        return result


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


# --- calibration ---------------------------------------------------------------------------------
LATENCY_CODE = r"""
import json, sys, time, boto3
n = int(sys.argv[1])
out = {}
session = boto3.session.Session()
for service, op, kwargs in (("sts", "get_caller_identity", {}), ("ec2", "describe_vpcs", {}),
                            ("ec2", "describe_subnets", {}), ("s3", "list_buckets", {})):
    client = session.client(service)
    getattr(client, op)(**kwargs)
    took = []
    for _ in range(n):
        t0 = time.perf_counter()
        getattr(client, op)(**kwargs)
        took.append(time.perf_counter() - t0)
    out["%s:%s" % (service, op)] = sorted(took)[len(took) // 2]
print(json.dumps(out))
"""

CLIENTS_CODE = r"""
import json, sys, time
import boto3, botocore.session
services = sys.argv[2].split(",")
t0 = time.perf_counter()
if sys.argv[1] == "per-client":
    # As amazon.aws's boto3_conn does: a new boto3 Session for every client.
    for s in services:
        boto3.session.Session().client(s)
else:
    session = boto3.session.Session()
    for s in services:
        session.client(s)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

IMPORTS_CODE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
t0 = time.perf_counter()
import ansible.module_utils.basic
t1 = time.perf_counter()
import boto3, botocore
t2 = time.perf_counter()
import ansible_collections.amazon.aws.plugins.module_utils.modules
t3 = time.perf_counter()
import ansible_collections.convox.rack.plugins.module_utils._rack.service
t4 = time.perf_counter()
print(json.dumps({"ansible_basic": t1 - t0, "boto3": t2 - t1, "amazon_aws_module_utils": t3 - t2,
                  "convox_rack": t4 - t3, "total": t4 - t0}))
"""


def python_seconds(code, args, env, runs):
    out = []
    for _run in range(runs):
        res = subprocess.run([PYTHON, "-c", code] + list(args), cwd=REPO, env=env, capture_output=True, text=True,
                             check=True)
        out.append(json.loads(res.stdout))
    return out


def calibrate(aws, collections):
    """One round of the calibration; bench_rack runs one per repetition and keeps the medians."""
    env = aws_env(aws, collections)
    services = ",".join(RACK_SERVICES)
    t0 = time.perf_counter()
    subprocess.run([PYTHON, "-c", "pass"], check=True)
    python_start = time.perf_counter() - t0
    return {
        "latency_per_call": python_seconds(LATENCY_CODE, ["20"], env, 1)[0],
        "clients_session_per_client": python_seconds(CLIENTS_CODE, ["per-client", services], env, 1)[0]["seconds"],
        "clients_shared_session": python_seconds(CLIENTS_CODE, ["shared", services], env, 1)[0]["seconds"],
        "imports": python_seconds(IMPORTS_CODE, [collections.path], env, 1)[0],
        "python_start": python_start,
    }


def merge_calibrations(rounds):
    latency = {op: statistics.median(r["latency_per_call"][op] for r in rounds) for op in rounds[0]["latency_per_call"]}
    return {
        "latency_per_call": latency,
        "latency_median": statistics.median(latency.values()),
        "clients_session_per_client": statistics.median(r["clients_session_per_client"] for r in rounds),
        "clients_shared_session": statistics.median(r["clients_shared_session"] for r in rounds),
        "imports": {k: statistics.median(r["imports"][k] for r in rounds) for k in rounds[0]["imports"]},
        "python_start": statistics.median(r["python_start"] for r in rounds),
        "rounds": rounds,
    }


# --- summarising ---------------------------------------------------------------------------------
def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    values = [v for v in values if v is not None]
    return [min(values), max(values)] if values else [None, None]


def summarise(runs):
    """runs[side][phase] = [result, ...] -> medians and ranges."""
    out = {}
    for side, phases in runs.items():
        out[side] = {}
        for phase, results in phases.items():
            entry = {"n": len(results)}
            for key in ("wall", "cpu", "moto_cpu", "calls", "load"):
                values = [r[key] for r in results]
                entry[key] = med(values)
                entry[key + "_range"] = spread(values)
            entry["module_aws_calls"] = med([r["module_aws_calls"] for r in results])
            entry["errors_5xx"] = max(r["errors_5xx"] for r in results)
            entry["changed_tasks"] = results[-1]["changed_tasks"]
            entry["tasks"] = len(results[-1]["tasks"])
            out[side][phase] = entry
    return out


def paired_ratios(runs, side, phase, key):
    """ours / peer run by run: within a repetition both ran the phase one after the other."""
    ours, peer = runs.get(side, {}).get(phase, []), runs.get("peer", {}).get(phase, [])
    return [o[key] / p[key] for o, p in zip(ours, peer) if p[key]]


ROLE_TASK_GROUPS = (("start", "Start the run"), ("wait", "Wait"), ("cleanup", "Forget the finished job"))


def role_task_breakdown(results):
    """Median seconds of the role's tasks, grouped: async start, waiting (polls), cleanup, the rest."""
    groups = {name: [] for name, _prefix in ROLE_TASK_GROUPS}
    groups["other"] = []
    polls = []
    for res in results:
        sums = dict.fromkeys(groups, 0.0)
        for task in res["tasks"]:
            name = task["name"].split(" : ", 1)[-1]
            group = next((g for g, prefix in ROLE_TASK_GROUPS if name.startswith(prefix)), "other")
            sums[group] += task["seconds"]
        for group, value in sums.items():
            groups[group].append(value)
        polls.append(sum(t.get("attempts", 1) for t in res["tasks"]
                         if t["name"].split(" : ", 1)[-1].startswith("Wait") and t["status"] != "skipped"))
    out = {group: med(values) for group, values in groups.items()}
    out["polls"] = med(polls)
    return out


def merge_intervals(intervals):
    """Sorted, non-overlapping [start, end] covering the given ones."""
    out = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


def subtract_intervals(intervals, minus):
    """Parts of merged `intervals` not covered by merged `minus`."""
    out = []
    for start, end in intervals:
        cur = start
        for m_start, m_end in minus:
            if m_end <= cur or m_start >= end:
                continue
            if m_start > cur:
                out.append([cur, m_start])
            cur = max(cur, m_end)
        if cur < end:
            out.append([cur, end])
    return out


def covered(intervals):
    return sum(end - start for start, end in intervals)


def split_process(proc):
    """One process's lifetime, split without double counting (a module may send requests from
    several threads at once): before its first client; waiting for AWS (at least one request in
    flight); creating clients (no request in flight); sleeping (neither); the rest (Python)."""
    kinds = {"h": [], "c": [], "s": []}
    for kind, start, end in proc.get("intervals", []):
        kinds[kind].append([start, end])
    http = merge_intervals(kinds["h"])
    clients = subtract_intervals(merge_intervals(kinds["c"]), http)
    sleep = subtract_intervals(subtract_intervals(merge_intervals(kinds["s"]), http), clients)
    first = proc["first_client"] or proc["end"]
    out = {
        "lifetime": proc["end"] - proc["start"],
        "pre_client": first - proc["start"],
        "aws_wait": covered(http),
        "clients": covered(clients),
        "sleep": covered(sleep),
        "requests": len(kinds["h"]),
        "request_seconds": sum(end - start for start, end in kinds["h"]),
        "clients_n": len(kinds["c"]),
    }
    out["rest"] = max(0.0, (proc["end"] - first) - out["aws_wait"] - out["clients"] - out["sleep"])
    return out


def process_breakdown(result):
    """Sum the probe's records of one playbook run: ansible-playbook (and its forked workers, where
    lookups run) and the module processes."""
    procs = result.get("processes") or []
    controller = [p for p in procs if p["argv0"].startswith("ansible-playbook")]
    modules = [split_process(p) for p in procs if not p["argv0"].startswith("ansible-playbook")]
    out = {"wall": result["wall"], "cpu": result["cpu"], "moto_cpu": result["moto_cpu"], "calls": result["calls"],
           "module_processes": len(modules)}
    for key in ("lifetime", "pre_client", "aws_wait", "clients", "sleep", "rest", "requests", "request_seconds",
                "clients_n"):
        out["module_" + key] = sum(m[key] for m in modules)
    out["controller_requests"] = sum(p["http"]["n"] for p in controller)
    out["controller_request_seconds"] = sum(p["http"]["seconds"] for p in controller)
    out["requests"] = out["module_requests"] + out["controller_requests"]
    out["request_seconds"] = out["module_request_seconds"] + out["controller_request_seconds"]
    out["ops"] = {}
    for p in procs:
        for op, (n, secs) in p["http"]["ops"].items():
            cur = out["ops"].setdefault(op, [0, 0.0])
            cur[0] += n
            cur[1] += secs
    out["capacity_provider_calls"] = sum(out["ops"].get(op, [0])[0] for op in CAPACITY_PROVIDER_OPS)
    out["task_seconds"] = sum(t["seconds"] for t in result["tasks"])
    out["outside_tasks"] = result["wall"] - out["task_seconds"]
    out["ansible_per_task"] = out["task_seconds"] - out["module_lifetime"]
    out["slowest_tasks"] = sorted(([round(t["seconds"], 2), t["name"]] for t in result["tasks"]), reverse=True)[:6]
    return out


def fmt_s(value):
    return "-" if value is None else "%.2f s" % value


def fmt_ratio(value):
    return "-" if value is None else "%.3f" % value


def fmt_int(value):
    if value is None:
        return "-"
    return "%d" % value if float(value).is_integer() else "%.1f" % value


def ratio(a, b):
    if a is None or not b:
        return None
    return a / b


def report(summary, floors, calibration, probes, role_tasks, meta, runs):
    """The tables, as Markdown (printed and written to summary.md)."""
    lines = []
    add = lines.append
    add("convox.rack benchmark, %s: %s; ansible-core %s, boto3 %s, moto %s; local AWS %s." % (
        meta["date"], meta["machine"], meta["versions"]["ansible_core"], meta["versions"]["boto3"],
        meta["versions"]["moto"], meta["local_aws"]))
    add("Measured: convox.rack at %s." % meta["measured"])
    add("Median of %d run(s) per phase; load average (1 min) at the runs' start: median %.1f, %.1f to %.1f." % (
        meta["repeat"], meta["load"][0], meta["load"][1], meta["load"][2]))
    add("")
    ours_sides = [s for s in SIDES if s in summary and s != "peer"]
    peer = summary.get("peer")
    for side in ours_sides:
        add("#### %s vs %s" % (SIDE_TITLES[side], SIDE_TITLES["peer"] if peer else "(no peer run)"))
        add("")
        add("| phase | ours time | peer time | time ratio | ours calls | peer calls | calls ratio |"
            " ours CPU | peer CPU | CPU ratio |")
        add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for phase in PHASES:
            o = summary[side][phase]
            p = (peer or {}).get(phase, {})
            add("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                PHASE_TITLES[phase], fmt_s(o["wall"]), fmt_s(p.get("wall")), fmt_ratio(ratio(o["wall"], p.get("wall"))),
                fmt_int(o["calls"]), fmt_int(p.get("calls")), fmt_ratio(ratio(o["calls"], p.get("calls"))),
                fmt_s(o["cpu"]), fmt_s(p.get("cpu")), fmt_ratio(ratio(o["cpu"], p.get("cpu")))))
        add("")
    if peer and ours_sides:
        add("#### Aims (ours / peer, at most)")
        add("")
        add("Ratio of the medians, judged against the aim; in brackets the ratio run by run (ours and the peer"
            " ran each phase one after the other in every repetition): its median and range.")
        add("")
        add("| aim | limit | " + " | ".join(SIDE_TITLES[s] for s in ours_sides) + " |")
        add("|---|---:|" + "---:|" * len(ours_sides))
        for (phase, kind), limit in AIMS.items():
            cells = []
            key = "wall" if kind == "time" else "calls"
            for side in ours_sides:
                value = ratio(summary[side][phase][key], peer[phase][key])
                cell = "%s %s" % (fmt_ratio(value), "met" if value is not None and value <= limit else "NOT met")
                pairs = paired_ratios(runs, side, phase, key)
                if kind == "time" and pairs:
                    cell += " (%.3f; %.3f - %.3f)" % (statistics.median(pairs), min(pairs), max(pairs))
                cells.append(cell)
            add("| %s, %s | %.3f | %s |" % (PHASE_TITLES[phase], kind, limit, " | ".join(cells)))
        add("")
    add("#### Every side: ranges over the runs, the local AWS's CPU, what changed")
    add("")
    add("| side | phase | time min - max | CPU | local AWS CPU | calls min - max | module's aws_calls |"
        " 5xx | tasks | changed |")
    add("|---|---|---|---:|---:|---|---:|---:|---:|---:|")
    for side in [s for s in SIDES if s in summary]:
        for phase in PHASES:
            s = summary[side][phase]
            add("| %s | %s | %.2f - %.2f s | %s | %s | %s - %s | %s | %d | %d | %d |" % (
                side, PHASE_TITLES[phase], s["wall_range"][0], s["wall_range"][1], fmt_s(s["cpu"]),
                fmt_s(s["moto_cpu"]), fmt_int(s["calls_range"][0]), fmt_int(s["calls_range"][1]),
                fmt_int(s["module_aws_calls"]) if side != "peer" else "-", s["errors_5xx"], s["tasks"],
                len(s["changed_tasks"])))
    add("")
    add("#### Floors and calibration (median)")
    add("")
    add("| what | time |")
    add("|---|---:|")
    add("| ansible-playbook, one debug task (no module process) | %s |" % fmt_s(floors.get("debug")))
    add("| ansible-playbook, one ansible.builtin.ping task (one module process) | %s |" % fmt_s(floors.get("ping")))
    add("| ansible-playbook, one amazon.aws.aws_az_info task (one AWS module process, one call) | %s |"
        % fmt_s(floors.get("aws")))
    add("| python -c pass | %s |" % fmt_s(calibration["python_start"]))
    imp = calibration["imports"]
    add("| imports of a rack module run: ansible.module_utils.basic %.2f, boto3 %.2f, amazon.aws module_utils %.2f,"
        " convox.rack %.2f | %s |" % (
            imp["ansible_basic"], imp["boto3"], imp["amazon_aws_module_utils"], imp["convox_rack"], fmt_s(imp["total"])))
    add("| 9 boto3 clients, a new Session for each (as AnsibleAWSModule.client makes them) | %s |"
        % fmt_s(calibration["clients_session_per_client"]))
    add("| the same 9 clients from one shared Session | %s |" % fmt_s(calibration["clients_shared_session"]))
    add("| one call to the local AWS, client side (median over %s) | %.1f ms |" % (
        ", ".join(sorted(calibration["latency_per_call"])), 1000 * calibration["latency_median"]))
    add("")
    if probes:
        add("#### Where the time goes (instrumented pass: one run per phase, bench/_probe)")
        add("")
        add("Summed over the run's module processes, each split without double counting (convox.rack reads"
            " in parallel threads): pre-client = process start to its first AWS client (interpreter, AnsiballZ,"
            " imports, argument parsing); waiting for AWS = at least one request in flight (the local AWS"
            " answering); clients = creating botocore clients; sleep = time.sleep; rest = Python (module logic,"
            " result). Requests: how many, and their summed durations. Ansible per task = task time minus module"
            " process lifetime (building, starting and reading back the module); outside tasks = wall minus"
            " task time (ansible-playbook start, parsing, exit).")
        add("")
        add("| side | phase | wall | module runs | pre-client | clients (n) | waiting for AWS | requests (summed) |"
            " local AWS CPU | sleep | rest | ansible per task | outside tasks |")
        add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for side in [s for s in ("ours", "peer") if s in probes]:
            for phase in PHASES:
                b = probes[side][phase]
                add("| %s | %s | %.2f s | %d | %.2f s | %.2f s (%d) | %.2f s | %d (%.2f s) | %s | %.2f s | %.2f s |"
                    " %.2f s | %.2f s |" % (
                        side, PHASE_TITLES[phase], b["wall"], b["module_processes"], b["module_pre_client"],
                        b["module_clients"], b["module_clients_n"], b["module_aws_wait"], b["requests"],
                        b["request_seconds"], fmt_s(b["moto_cpu"]), b["module_sleep"], b["module_rest"],
                        b["ansible_per_task"], b["outside_tasks"]))
        add("")
        if "ours" in probes:
            add("Calls of ours for the ECS capacity provider (the peer has no module to build one): " + ", ".join(
                "%s %d" % (PHASE_TITLES[p], probes["ours"][p]["capacity_provider_calls"]) for p in PHASES) + ".")
            add("")
        if "peer" in probes:
            add("Slowest peer tasks: " + "; ".join(
                "%s: %s" % (PHASE_TITLES[p], ", ".join("%s %.1f s" % (name, secs)
                                                       for secs, name in probes["peer"][p]["slowest_tasks"][:3]))
                for p in PHASES) + ".")
            add("")
    if role_tasks:
        add("#### The role's tasks (median seconds): async start, waiting (async_status polls, 1 s apart), cleanup")
        add("")
        add("| phase | wall | start | wait (async_status polls) | cleanup | other tasks |")
        add("|---|---:|---:|---:|---:|---:|")
        for phase in PHASES:
            r = role_tasks[phase]
            add("| %s | %s | %s | %s (%s) | %s | %s |" % (
                PHASE_TITLES[phase], fmt_s(summary["role"][phase]["wall"]), fmt_s(r["start"]), fmt_s(r["wait"]),
                fmt_int(r["polls"]), fmt_s(r["cleanup"]), fmt_s(r["other"])))
        add("")
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of every phase and floor (default 3)")
    parser.add_argument("--sides", default=None,
                        help="comma-separated, of ours,role,peer (default all; ours,role with --plain-moto)")
    parser.add_argument("--plain-moto", action="store_true",
                        help="use scripts/moto_server.py without the peer's fixes (bench/moto_bench_server.py)")
    parser.add_argument("--no-probe", action="store_true", help="skip the instrumented pass")
    parser.add_argument("--ref", default="HEAD",
                        help="the commit whose convox.rack is measured, from a copy made with git archive (default HEAD)")
    parser.add_argument("--report", metavar="DIR",
                        help="print the tables again from DIR/results.json of an earlier benchmark, and run nothing")
    parser.add_argument("--live", action="store_true",
                        help="measure the work tree as it is (through .venv/collections), uncommitted changes included")
    parser.add_argument("--port", type=int, default=None, help="loopback port of the local AWS (default: a free one)")
    parser.add_argument("--results", default=os.path.join(BENCH, "results"),
                        help="where to put the run's directory (default bench/results)")
    args = parser.parse_args(argv)
    default_sides = "ours,role" if args.plain_moto else ",".join(SIDES)
    args.sides = [s.strip() for s in (args.sides or default_sides).split(",") if s.strip()]
    unknown = [s for s in args.sides if s not in SIDES]
    if unknown or not args.sides:
        parser.error("--sides: choose among %s (got %s)" % (", ".join(SIDES), ", ".join(unknown) or "nothing"))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def versions():
    code = ("import ansible.release, boto3, moto, sys; print(sys.version.split()[0], ansible.release.__version__,"
            " boto3.__version__, moto.__version__)")
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return {"python": out[0], "ansible_core": out[1], "boto3": out[2], "moto": out[3]}


def rotate(items, n):
    n %= len(items)
    return items[n:] + items[:n]


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if args.report:
        return rereport(args.report)
    for path in (PYTHON, ANSIBLE_PLAYBOOK):
        if not os.path.exists(path):
            print("bench_rack: %s is missing: run `make venv` first" % path, file=sys.stderr)
            return 2
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = os.path.join(args.results, stamp)
    os.makedirs(out_dir, exist_ok=True)
    aws = LocalAws(os.path.join(out_dir, "moto.log"), plain=args.plain_moto, port=args.port)
    try:
        collections = Collections(out_dir, args.ref, args.live)
    except (OSError, subprocess.CalledProcessError) as e:
        print("bench_rack: cannot take convox.rack at %s: %s" % (args.ref, e), file=sys.stderr)
        return 2
    state_before = tree_state()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)

    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": "%s, %d CPU(s), Python %s" % (platform.machine(), os.cpu_count() or 0, platform.python_version()),
        "repeat": args.repeat,
        "sides": args.sides,
        "local_aws": "scripts/moto_server.py" if args.plain_moto else "bench/moto_bench_server.py",
        "versions": versions(),
        "measured": collections.describe,
        "commit": collections.commit,
    }
    print("bench_rack: results in %s" % os.path.relpath(out_dir, REPO), flush=True)
    runs = {side: {phase: [] for phase in PHASES} for side in args.sides}
    floors = {name: [] for name in FLOORS}
    probes = {}
    loads = []
    try:
        aws.start()
        print("bench_rack: local AWS on %s (%s)" % (aws.url, meta["local_aws"]), flush=True)
        runner = Runner(aws, out_dir, collections)
        calibrations = []
        # Every repetition starts from an empty local AWS; within it the sides take turns phase by
        # phase (their racks have different names), so that each phase of ours and of the peer runs
        # under the same load; the order of the sides rotates from one repetition to the next.
        for rep in range(args.repeat):
            calibrations.append(calibrate(aws, collections))
            for name in rotate(list(FLOORS), rep):
                res = runner.run("floor-%s-r%d" % (name, rep + 1), floor_argv(name))
                floors[name].append(res["wall"])
                loads.append(res["load"])
                print("  run %d floor %-9s %6.2f s" % (rep + 1, name, res["wall"]), flush=True)
            aws.reset()
            for phase in PHASES:
                for side in rotate(list(args.sides), rep):
                    res = runner.run("%s-%s-r%d" % (side, phase, rep + 1), playbook_argv(side, phase, collections))
                    runs[side][phase].append(res)
                    loads.append(res["load"])
                    print("  run %d %-4s %-9s %6.2f s %4d calls  cpu %5.2f s  load %.1f%s" % (
                        rep + 1, side, phase, res["wall"], res["calls"], res["cpu"], res["load"],
                        ("  (%d 5xx)" % res["errors_5xx"]) if res["errors_5xx"] else ""), flush=True)
        if not args.no_probe:
            aws.reset()
            for phase in PHASES:
                # Not the role: its module runs detached (async), so its processes' sums say little.
                for side in [s for s in args.sides if s != "role"]:
                    res = runner.run("%s-%s-probe" % (side, phase), playbook_argv(side, phase, collections), probe=True)
                    probes.setdefault(side, {})[phase] = process_breakdown(res)
                    b = probes[side][phase]
                    print("  probe %-4s %-9s %6.2f s %4d calls (probe saw %d)" % (
                        side, phase, res["wall"], res["calls"], b["requests"]), flush=True)
    except BenchError as e:
        print("bench_rack: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench_rack: interrupted", file=sys.stderr)
        return 130
    finally:
        aws.stop()

    meta["load"] = [med(loads), min(loads), max(loads)]
    state_after = tree_state()
    if args.live and state_after != state_before:
        meta["measured"] += "; the work tree changed during the run (HEAD %s%s at the end)" % (
            state_after["head"], ", uncommitted changes" if state_after["dirty"] else "")
    data = {"meta": meta, "floors": floors, "calibration": merge_calibrations(calibrations), "probes": probes,
            "runs": runs}
    finish(out_dir, data)
    return 0


def finish(out_dir, data):
    """Summarise a benchmark's data; print the tables; write summary.md and results.json."""
    runs = data["runs"]
    data["summary"] = summarise(runs)
    data["floor_medians"] = {name: med(values) for name, values in data["floors"].items()}
    data["role_tasks"] = {phase: role_task_breakdown(runs["role"][phase]) for phase in PHASES} \
        if "role" in runs else None
    text = report(data["summary"], data["floor_medians"], data["calibration"], data["probes"], data["role_tasks"],
                  data["meta"], runs)
    print()
    print(text)
    with open(os.path.join(out_dir, "summary.md"), "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    with open(os.path.join(out_dir, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, default=str)
    print("\nbench_rack: details in %s" % os.path.relpath(out_dir, REPO))


def rereport(out_dir):
    """--report: the tables again from a finished benchmark's results.json."""
    with open(os.path.join(out_dir, "results.json"), encoding="utf-8") as handle:
        data = json.load(handle)
    finish(out_dir, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
