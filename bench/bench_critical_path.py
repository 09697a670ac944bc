#!/usr/bin/env python
"""The critical path of an install and an uninstall, against the local AWS in realism mode.

On AWS the slow parts of a rack are its NAT gateways, its load balancer and its instances (and IAM,
which takes seconds to reach EC2). This benchmark runs the real playbooks (install_rack.yml,
uninstall_rack.yml) against the local AWS with AWS's timings put back (scripts/realism.py, scaled
by --scale), records every AWS call through scripts/aws_proxy.py, draws the timeline of each slow
resource (when it was asked for, when the timings make it ready) and prints the ratio of the run's
wall time to the longest chain of waits the timings allow:

  install:   max(NAT pending, load balancer provisioning,
                 IAM propagation + instances pending + their ECS agents registering them)
  uninstall: max(group deletion, NAT deleting, the load balancer's interfaces lingering)

A ratio near 1 means the run waited for AWS and little else; the fixed cost of a run (ansible's
start, the calls themselves) weighs more at a small --scale. Not a timed test: run it by hand,
`.venv/bin/python bench/bench_critical_path.py --scale 0.5` (about 15 minutes at 0.5).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from aws_proxy import AwsProxy  # noqa: E402

# The real timings (seconds of AWS's time), as scripts/realism.py names them.
TIMINGS = {"nat_pending": 120.0, "lb_provisioning": 150.0, "instance_pending": 90.0, "profile_propagation": 15.0,
           "agent_registration": 30.0,
           "nat_deleting": 60.0, "asg_delete": 120.0, "lb_eni_linger": 150.0, "latency": 0.05,
           "s3_consistency": 0.0, "ec2_consistency": 0.0, "tagging_lag": 0.0, "bucket_policy_propagation": 0.0,
           "kms_consistency": 0.0}
CASES = {"private": {"rack_private": True, "rack_high_availability": False, "rack_instance_count": 1},
         "high-availability": {"rack_private": True, "rack_high_availability": True, "rack_instance_count": 3}}
# (label, the call that asks for it, the timings that make it ready after that call)
INSTALL_PARTS = [("instance profile", "iam:CreateInstanceProfile", ("profile_propagation",)),
                 ("NAT gateways", "ec2:CreateNatGateway", ("nat_pending",)),
                 ("load balancer", "elasticloadbalancing:CreateLoadBalancer", ("lb_provisioning",)),
                 ("instances registered", "autoscaling:CreateAutoScalingGroup",
                  ("instance_pending", "agent_registration"))]
UNINSTALL_PARTS = [("Auto Scaling group", "autoscaling:DeleteAutoScalingGroup", ("asg_delete",)),
                   ("load balancer's interfaces", "elasticloadbalancing:DeleteLoadBalancer", ("lb_eni_linger",)),
                   ("NAT gateways", "ec2:DeleteNatGateway", ("nat_deleting",))]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_local_aws(scale):
    port = free_port()
    env = dict(os.environ, MOTO_REALISM=json.dumps({"scale": scale, "timings": TIMINGS}))
    log = open(os.path.join(tempfile.mkdtemp(prefix="bench-cp-"), "moto.log"), "w")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts", "moto_server.py"), "-H", "127.0.0.1",
                             "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    for _attempt in range(200):
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/moto-api/" % port, timeout=1).read()
            return proc, "http://127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the local AWS did not start")


def playbook(endpoint, name, extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    started, clock = time.time(), time.monotonic()   # the proxy's records carry time.time()
    proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"),
                           os.path.join(ROOT, "playbooks", name), "-e", json.dumps(extra)],
                          env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit("%s failed:\n%s" % (name, proc.stdout[-3000:]))
    return started, time.monotonic() - clock


def timeline(records, parts, started, scale):
    """[(label, asked, ready)] in seconds from the run's start, ready as the timings make it."""
    rows = []
    for label, call, timings in parts:
        asked = [r.started for r in records if r.name == call and r.status == 200]
        if asked:
            at = min(asked) - started
            rows.append((label, at, max(asked) - started + sum(TIMINGS[t] for t in timings) * scale))
    return rows


def draw(rows, wall, width=60):
    scale = width / max(wall, max((r[2] for r in rows), default=1))
    lines = []
    for label, asked, ready in rows:
        span = " " * int(asked * scale) + "#" * max(1, int((ready - asked) * scale))
        lines.append("  %-27s |%-*s| %5.1fs -> %5.1fs" % (label, width, span, asked, ready))
    lines.append("  %-27s |%-*s| %5.1fs" % ("the run", width, "=" * int(wall * scale), wall))
    return lines


def chain(kind, scale):
    t = TIMINGS
    if kind == "install":
        return scale * max(t["nat_pending"], t["lb_provisioning"],
                           t["profile_propagation"] + t["instance_pending"] + t["agent_registration"])
    return scale * max(t["asg_delete"], t["nat_deleting"], t["lb_eni_linger"])


def run_case(case, extra, scale):
    local, endpoint = start_local_aws(scale)
    proxy = AwsProxy(endpoint)
    proxy.start()
    out = {}
    try:
        rack = {"rack": "bench-%s" % case[:2], "rack_poll_interval": 1, "rack_wait_timeout": 3600}
        for kind, name, parts in (("install", "install_rack.yml", INSTALL_PARTS),
                                  ("uninstall", "uninstall_rack.yml", UNINSTALL_PARTS)):
            proxy.clear()
            started, wall = playbook(proxy.url, name, dict(rack, **(extra if kind == "install" else {})))
            rows = timeline(proxy.records, parts, started, scale)
            out[kind] = {"wall": wall, "chain": chain(kind, scale), "calls": len(proxy.records), "rows": rows}
    finally:
        proxy.stop()
        local.terminate()
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--scale", type=float, default=0.5, help="AWS's timings times this (1 = real time)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, of %s" % ", ".join(CASES))
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    results = {}
    for case in args.cases.split(","):
        results[case] = run_case(case, CASES[case], args.scale)
        for kind, fig in results[case].items():
            print("%s rack, %s (timings x%g): %.1fs for a chain of %.1fs: ratio %.2f (%d calls)"
                  % (case, kind, args.scale, fig["wall"], fig["chain"], fig["wall"] / fig["chain"], fig["calls"]))
            print("\n".join(draw(fig["rows"], fig["wall"])))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"scale": args.scale, "timings": TIMINGS, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
