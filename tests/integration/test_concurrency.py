"""Concurrency: the rack's run lock (SSM parameter /convox/<rack>/lock) against the local AWS.

Two installs of one rack started together build one rack; installs of different racks run side by
side; an uninstall racing an install ends in a state the next run finishes (the runs that race are
real ansible-playbook runs; the reruns and uninstalls after them, the module's main() in this
process: conftest.InProcess). The lock itself is driven directly (RunLock over boto3 clients of
the local AWS) for what a playbook cannot time: a held lock, an expired one, one left by a dead
process on this host.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time

import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack import lock as L
from ansible_collections.convox.rack.plugins.module_utils._rack.aws import Aws, Deadline
from conftest import PLAYBOOKS, ROOT, VENV_BIN, Runner, live_tagged


def lock_aws(local_aws):
    return Aws(local_aws.client)


def lock_value(local_aws, rack):
    try:
        got = local_aws.client("ssm").get_parameter(Name=L.lock_name(rack))
    except local_aws.client("ssm").exceptions.ParameterNotFound:
        return None
    return json.loads(got["Parameter"]["Value"])


# -- the lock, directly ------------------------------------------------------------------------------------
def test_lock_is_exclusive_and_released(local_aws):
    aws = lock_aws(local_aws)
    first = L.RunLock(aws, "lock-a", Deadline(30), "install of rack lock-a").acquire()
    try:
        held = lock_value(local_aws, "lock-a")
        assert held["run"] == first.run_id and held["pid"] == os.getpid()
        assert held["operation"] == "install of rack lock-a"
        second = L.RunLock(aws, "lock-a", Deadline(1), "uninstall of rack lock-a", sleep=lambda s: None)
        started = time.monotonic()
        with pytest.raises(L.RackLocked) as e:
            second.acquire()
        assert time.monotonic() - started < 15
        msg = e.value.msg
        assert msg.startswith("rack lock-a is being changed by another run: install of rack lock-a by run %s"
                              % first.run_id), msg
        assert "waited" in msg and "(wait_timeout)" in msg
        assert e.value.details["error_code"] == "RackLocked"
        assert lock_value(local_aws, "lock-a")["run"] == first.run_id, "a refused run leaves the holder's lock alone"
    finally:
        first.release()
    assert lock_value(local_aws, "lock-a") is None


def test_lock_waits_for_the_holder_then_takes_it(local_aws):
    aws = lock_aws(local_aws)
    first = L.RunLock(aws, "lock-b", Deadline(30), "install").acquire()
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        if len(slept) == 2:
            first.release()  # the other run ends while we wait
    second = L.RunLock(aws, "lock-b", Deadline(30), "update", sleep=sleep).acquire()
    try:
        assert len(slept) == 2
        assert lock_value(local_aws, "lock-b")["run"] == second.run_id
        assert second.taken_over is None
    finally:
        second.release()


def test_expired_lock_is_taken_over(local_aws):
    aws = lock_aws(local_aws)
    dead = L.RunLock(aws, "lock-c", Deadline(30), "install", host="ci-runner-7", pid=4242,
                     clock=lambda: time.time() - 3 * L.VALIDITY)
    dead.acquire()
    dead._stop.set()  # the killed run renews nothing
    taker = L.RunLock(aws, "lock-c", Deadline(5), "install").acquire()
    try:
        assert taker.taken_over["run"] == dead.run_id
        assert taker.taken_over["reason"].startswith("expired at ")
        assert lock_value(local_aws, "lock-c")["run"] == taker.run_id
    finally:
        taker.release()


def test_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(local_aws):
    aws = lock_aws(local_aws)
    proc = subprocess.Popen(["sleep", "0"])
    proc.wait()  # a pid that no longer runs
    dead = L.RunLock(aws, "lock-d", Deadline(30), "install", pid=proc.pid)
    dead.acquire()
    dead._stop.set()
    started = time.monotonic()
    taker = L.RunLock(aws, "lock-d", Deadline(5), "install", sleep=lambda s: pytest.fail("must not wait")).acquire()
    try:
        assert time.monotonic() - started < 5
        assert taker.taken_over["reason"] == "its process %d on %s is gone" % (proc.pid, taker.host)
    finally:
        taker.release()


def test_live_lock_of_another_host_is_not_taken_over(local_aws):
    aws = lock_aws(local_aws)
    other = L.RunLock(aws, "lock-e", Deadline(30), "install", host="another-host", pid=1).acquire()
    other._stop.set()
    try:
        with pytest.raises(L.RackLocked):
            L.RunLock(aws, "lock-e", Deadline(0.5), "install", sleep=lambda s: None).acquire()
    finally:
        other.held = True
        other.release()


# -- runs of the module, at the same time ----------------------------------------------------------------------
def start(runner, module_args, module_name="rack"):
    """Start one module run (ansible-playbook) in the background; returns (process, result path)."""
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    os.unlink(path)
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(PLAYBOOKS, "module.yml"), "-e",
           json.dumps({"module_args": module_args, "module_name": module_name, "result_file": path})]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=runner.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    return proc, path


def finish(proc, path):
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out[-4000:]
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    os.unlink(path)
    return result


def count_rack(local_aws, rack):
    ec2 = local_aws.client("ec2")
    flt = [{"Name": "tag:Rack", "Values": [rack]}, {"Name": "tag:System", "Values": ["convox"]}]
    nats = [n for n in ec2.describe_nat_gateways(Filters=flt)["NatGateways"] if n["State"] != "deleted"]
    lbs = [lb for lb in local_aws.client("elbv2").describe_load_balancers()["LoadBalancers"]
           if lb["LoadBalancerName"] == "convox-%s" % rack]
    buckets = [b for b in local_aws.client("s3").list_buckets()["Buckets"] if b["Name"].startswith("convox-%s-" % rack)
               and not b["Name"].endswith("-logs")]  # the rack's buckets, not its log bucket
    return {"vpcs": len(ec2.describe_vpcs(Filters=flt)["Vpcs"]),
            "subnets": len(ec2.describe_subnets(Filters=flt)["Subnets"]),
            "nat_gateways": len(nats), "load_balancers": len(lbs), "buckets": len(buckets)}


def test_two_installs_of_one_rack_at_once_build_one_rack(local_aws, runner, direct):
    rack = "race"
    args = {"name": rack, "private": True, "wait_timeout": 300}
    one, two = start(runner, args), start(runner, args)
    results = [finish(*one), finish(*two)]
    assert [r.get("failed", False) for r in results] == [False, False], results
    changed = sorted(r["changed"] for r in results)
    assert changed in ([False, True], [True, True]), "one built it; the other found it built (or finished it)"
    waited = [w for r in results for w in r.get("warnings", []) if "waited" in w and "another run" in w]
    assert waited or changed == [False, True], results
    built = results[0]["rack"]
    assert all(r["rack"]["vpc_id"] == built["vpc_id"] for r in results)
    zones = len(built["private_subnet_ids"])
    assert zones >= 2 and len(built["public_subnet_ids"]) == zones
    assert count_rack(local_aws, rack) == {"vpcs": 1, "subnets": 2 * zones, "nat_gateways": zones,
                                           "load_balancers": 1, "buckets": 1}
    assert lock_value(local_aws, rack) is None, "the lock is released"
    again = direct.module({"name": rack, "private": True})
    assert again["changed"] is False
    gone = direct.module({"name": rack, "state": "absent"})
    assert gone["changed"] is True and not live_tagged(local_aws, rack)


def test_a_quota_refusal_is_decided_under_the_lock(local_aws, aws_proxy, direct):
    """A run reads the rack without the lock and takes it at its first write; a quota it finds short
    (parts/quotas.py) is such a read: two installs of one private rack at once, the second counted the
    first's elastic IPs as others' and refused (CI, stop 18). Now a run takes the lock before refusing:
    here another run holds it while the region's elastic IPs (the account attribute vpc-max-elastic-ips:
    EC2 user guide, "Elastic IP address quota"; the local AWS's is raised, scripts/moto_server.py) leave
    too few for a new rack; that run frees them and ends, and the install, started again under the lock
    on what exists then, builds the rack. A region of its own: no other test's addresses count."""
    rack, region = "quota-race", "ap-southeast-2"
    ec2 = local_aws.client("ec2", region)
    limit = [int(a["AttributeValues"][0]["AttributeValue"]) for a in ec2.describe_account_attributes()
             ["AccountAttributes"] if a["AttributeName"] == "vpc-max-elastic-ips"][0]
    assert not ec2.describe_addresses()["Addresses"]
    others = [ec2.allocate_address(Domain="vpc")["AllocationId"] for _n in range(limit - 2)]  # 3 more do not fit
    aws = Aws(lambda service: local_aws.client(service, region))
    holder = L.RunLock(aws, rack, Deadline(300), "uninstall of rack %s" % rack).acquire()
    try:
        run = start(Runner(local_aws, proxy=aws_proxy), {"name": rack, "region": region, "private": True,
                                                         "wait_timeout": 300})
        until = time.monotonic() + 120
        while not any(r.action == "PutParameter" for r in aws_proxy.forwarded()):  # the install asks for the lock
            assert run[0].poll() is None and time.monotonic() < until, "the install did not wait for the lock"
            time.sleep(0.2)
        for allocation in others:
            ec2.release_address(AllocationId=allocation)
    finally:
        holder.release()
    result = finish(*run)
    assert not result.get("failed"), result
    assert result["changed"] is True and result["rack"]["status"] == "running", result
    assert [w for w in result.get("warnings", []) if "waited" in w and "another run" in w], result
    assert len(result["rack"]["private_subnet_ids"]) == 3
    assert len(ec2.describe_addresses()["Addresses"]) == 3, "the rack's own, one per zone"
    gone = direct.module({"name": rack, "region": region, "state": "absent"})
    assert gone["changed"] is True and not ec2.describe_addresses()["Addresses"]


def test_installs_of_different_racks_run_side_by_side(local_aws, runner, direct):
    runs = [start(runner, {"name": rack, "wait_timeout": 300}) for rack in ("side-a", "side-b")]
    results = [finish(*r) for r in runs]
    for rack, result in zip(("side-a", "side-b"), results):
        assert result["changed"] is True and result["rack"]["status"] == "running", result
        assert not [w for w in result.get("warnings", []) if "another run" in w], "no rack waits for another"
        assert count_rack(local_aws, rack)["vpcs"] == 1
    assert results[0]["rack"]["vpc_id"] != results[1]["rack"]["vpc_id"]
    for rack in ("side-a", "side-b"):
        direct.module({"name": rack, "state": "absent"})
        assert not live_tagged(local_aws, rack)


def test_uninstall_racing_an_install_ends_in_a_state_the_next_run_finishes(local_aws, runner, direct):
    rack = "racing"
    install = start(runner, {"name": rack, "wait_timeout": 300})
    time.sleep(1.5)
    uninstall = start(runner, {"name": rack, "state": "absent", "wait_timeout": 300})
    installed, uninstalled = finish(*install), finish(*uninstall)
    assert not installed.get("failed") and not uninstalled.get("failed"), (installed, uninstalled)
    counts = count_rack(local_aws, rack)
    # Either order is well defined: the install then the uninstall (nothing left), or the
    # uninstall found nothing yet and the install built the whole rack.
    zones = len(installed["rack"]["public_subnet_ids"])
    assert counts in ({"vpcs": 0, "subnets": 0, "nat_gateways": 0, "load_balancers": 0, "buckets": 0},
                      {"vpcs": 1, "subnets": zones, "nat_gateways": 0, "load_balancers": 1, "buckets": 1}), counts
    final = direct.module({"name": rack})
    assert not final.get("failed") and final["rack"]["status"] == "running"
    assert count_rack(local_aws, rack)["vpcs"] == 1
    direct.module({"name": rack, "state": "absent"})
    assert not live_tagged(local_aws, rack)
    assert lock_value(local_aws, rack) is None


def test_free_lock_and_same_generation_go_on_without_reading_again(local_aws):
    """with_run_lock reads the rack once when nothing happened between its read and its lock; it
    starts again (reads everything anew) when another run ended in between."""
    aws = lock_aws(local_aws)
    passes = []

    def run(first_write, between=None):
        passes.append("locked" if first_write is None else "first")
        if between and first_write:
            between()
        if first_write:
            first_write()  # the first write of the pass
        return {"changed": True, "aws_calls": 0}

    warnings = []
    L.with_run_lock(aws, "gen-a", Deadline(10), "install", False, run, warnings)
    assert passes == ["first"], "a free lock and the same generation: no second pass"
    first_generation = local_aws.client("ssm").get_parameter(Name=L.generation_name("gen-a"))["Parameter"]
    tags = local_aws.client("ssm").list_tags_for_resource(ResourceType="Parameter",
                                                          ResourceId=L.generation_name("gen-a"))["TagList"]
    assert {"Key": "Rack", "Value": "gen-a"} in tags and {"Key": "System", "Value": "convox"} in tags

    def another_run_ends():
        L.with_run_lock(aws, "gen-a", Deadline(10), "update", False, lambda fw: fw() or {"changed": True}, [])
    passes.clear()
    L.with_run_lock(aws, "gen-a", Deadline(10), "install", False, lambda fw: run(fw, another_run_ends), warnings)
    assert passes == ["first", "locked"], "another run ended in between: read again under the lock"
    now = local_aws.client("ssm").get_parameter(Name=L.generation_name("gen-a"))["Parameter"]
    assert now["Value"] != first_generation["Value"]
    assert lock_value(local_aws, "gen-a") is None

    L.with_run_lock(aws, "gen-a", Deadline(10), "uninstall", False, run, warnings, removed=lambda r: True)
    with pytest.raises(local_aws.client("ssm").exceptions.ParameterNotFound):
        local_aws.client("ssm").get_parameter(Name=L.generation_name("gen-a"))
    assert warnings == []
