#!/usr/bin/env python
"""The collection on a real AWS account: install a small private rack and an app, read its
status, update it, remove the app and the rack with purge_data, then look for leftovers; write
one report (timings, AWS calls, every failure met, the leftovers). `make smoke-aws`; see
docs/real-aws.md. It costs money (NAT gateways, a load balancer, an instance for ~30 minutes) and
therefore refuses to run without an explicit profile and --i-accept-the-cost.

Standard library, boto3 and the repository's .venv only."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = [
    ("install", "install_rack.yml", {"rack_private": True, "rack_high_availability": False,
                                     "rack_instance_count": 1, "rack_instance_type": "t3.small"}),
    ("status", "rack_status.yml", {}),
    ("create app", "create_app.yml", {"app": "smoke"}),
    ("update", "update_rack.yml", {"rack_instance_count": 2, "rack_high_availability": False}),
    ("rerun", "install_rack.yml", {}),
    ("delete app", "delete_app.yml", {"app": "smoke", "app_purge_data": True}),
    ("uninstall", "uninstall_rack.yml", {"rack_purge_data": True}),
]


def run_step(args, label, playbook, extra):
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                                            "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
    env.update(AWS_PROFILE=args.profile, AWS_REGION=args.region, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    extra = dict(extra, rack=args.rack)
    started = time.monotonic()
    proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"),
                           os.path.join(ROOT, "playbooks", playbook), "-e", json.dumps(extra)],
                          env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    calls, failures = 0, []
    try:
        out = json.loads(proc.stdout)
        for play in out.get("plays", []):
            for task in play.get("tasks", []):
                for result in task.get("hosts", {}).values():
                    if isinstance(result.get("aws_calls"), int):
                        calls += result["aws_calls"]
                    if result.get("failed"):
                        keys = ("msg", "resource", "operation", "error_code", "request_id")
                        failures.append({k: result.get(k) for k in keys if result.get(k)})
    except ValueError:
        failures.append({"msg": "unreadable output", "tail": proc.stdout[-2000:]})
    return {"step": label, "playbook": playbook, "rc": proc.returncode, "seconds": round(seconds, 1),
            "aws_calls": calls, "failures": failures}


def leftovers(args):
    """Everything still tagged as the rack's (the tagging API lags: read again after a while)."""
    session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
    found = session.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "System", "Values": ["convox"]}, {"Key": "Rack", "Values": [args.rack]}])
    ec2 = session.client("ec2")
    filters = [{"Name": "tag:Rack", "Values": [args.rack]}, {"Name": "tag:System", "Values": ["convox"]}]
    live = {
        "tagged": [r["ResourceARN"] for r in found["ResourceTagMappingList"]],
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=filters)["Vpcs"]],
        "nat_gateways": [n["NatGatewayId"] for n in ec2.describe_nat_gateways(Filters=filters)["NatGateways"]
                         if n["State"] not in ("deleted", "deleting")],
        "addresses": [a["AllocationId"] for a in ec2.describe_addresses(Filters=filters)["Addresses"]],
    }
    return {k: v for k, v in live.items() if v}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--profile", required=True, help="the AWS profile of a sandbox account (never a default)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--rack", default="smoke")
    parser.add_argument("--i-accept-the-cost", action="store_true", dest="accepted",
                        help="say that you know it runs NAT gateways, a load balancer and instances for a while")
    parser.add_argument("--report", default=os.path.join(ROOT, "bench", "results", "smoke-aws.json"))
    args = parser.parse_args(argv)
    if not args.accepted:
        parser.error("refusing to spend money: add --i-accept-the-cost (see docs/real-aws.md for the cost)")
    if os.environ.get("AWS_ENDPOINT_URL"):
        parser.error("AWS_ENDPOINT_URL is set: this is for real AWS (unset it, do not source local-aws.env)")
    report = {"rack": args.rack, "region": args.region, "profile": args.profile, "steps": []}
    for label, playbook, extra in STEPS:
        step = run_step(args, label, playbook, extra)
        report["steps"].append(step)
        said = "; ".join(f.get("msg", "")[:120] for f in step["failures"])
        print("%-11s rc=%d %7.1fs %4d calls %s" % (label, step["rc"], step["seconds"], step["aws_calls"], said))
        if step["rc"] and label not in ("uninstall",):
            print("stopping: the uninstall runs next to clean up")
            report["steps"].append(run_step(args, "uninstall", "uninstall_rack.yml",
                                            {"rack_purge_data": True, "rack_force": True}))
            break
    report["leftovers"] = leftovers(args)
    os.makedirs(os.path.dirname(args.report), exist_ok=True)
    with open(args.report, "w") as f:
        json.dump(report, f, indent=2)
    print("leftovers: %s" % (report["leftovers"] or "none"))
    print("report: %s" % args.report)
    return 1 if report["leftovers"] or any(s["rc"] for s in report["steps"]) else 0


if __name__ == "__main__":
    sys.exit(main())
