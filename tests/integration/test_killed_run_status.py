"""Issue 13, finding 6: a run killed mid-way (SIGKILL of ansible-playbook and its module) left the
rack reading `updating` in rack_status.yml, racks.yml and the inventory until the record's expiry
(wait_timeout + 5 minutes: 20 minutes by default). A rack reads a run status only while a run holds
its run lock (holder.py); once that run is gone (its process on this host, or its lock expired)
the rack reads `failed`, naming the step the run had reached, everywhere alike: rack_info with a
name (rack_status.yml), the bulk read of a region (racks.yml) and the inventory. A run at work on
another host still reads `updating`. The rerun finishes the rack (running).

The rack lives in an account of its own; every run goes through the fault proxy that kills it
(reliability.Driver)."""

from __future__ import annotations

import json
import re
import time

import reliability as R

RACK = "killed"
# A small public rack: the update that is killed changes the instance count.
INSTALL = {"rack": RACK, "rack_private": False, "rack_high_availability": False, "rack_instance_count": 1}
UPDATE = {"rack": RACK, "rack_instance_count": 2}


def statuses(driver, tmp_path):
    """The rack's status as rack_status.yml, racks.yml and the inventory show it, and the Missing line."""
    status = driver.playbook("rack_status.yml", {"rack": RACK})
    shown = re.search(r'"Status +(\w+)"', status.stdout).group(1)
    missing = re.search(r'"Missing +(.*)",?$', status.stdout, re.M)
    racks = driver.playbook("racks.yml")
    found = re.search(r'"local/%s +(\w+)' % RACK, racks.stdout)
    assert found, racks.stdout[-2000:]
    listed = found.group(1)
    inventory = R.listed_racks(driver.inventory(tmp_path))["local/%s" % RACK]
    return {"rack_status": shown, "racks": listed, "inventory": inventory}, missing.group(1) if missing else None


def test_a_killed_update_reads_failed_with_its_step_and_a_run_elsewhere_reads_updating(
        local_aws, aws_proxy, tmp_path):
    account = R.Account(local_aws, "killed-run-status")
    driver = R.Driver(local_aws, account, aws_proxy)
    driver.playbook("install_rack.yml", INSTALL)
    assert statuses(driver, tmp_path) == ({"rack_status": "running", "racks": "running", "inventory": "running"},
                                          None)

    # The update killed (its whole process tree) as it asks AWS to grow the group.
    killed = driver.playbook("update_rack.yml", UPDATE, kill_after=1, kill_scope="all",
                             kill_counting=lambda record: record.name == "autoscaling:UpdateAutoScalingGroup")
    assert killed.rc == -9 and killed.killed_at, killed
    bucket = account.client("s3").get_bucket_tagging(Bucket=_bucket(account))["TagSet"]
    assert {"Key": "convox:status", "Value": "updating"} in bucket, "the killed run left its run status"
    lock = json.loads(account.client("ssm").get_parameter(Name="/convox/%s/lock" % RACK)["Parameter"]["Value"])
    assert lock["step"], lock

    # At once (not 20 minutes later): failed, the step named, in all three places.
    seen, missing = statuses(driver, tmp_path)
    assert seen == {"rack_status": "failed", "racks": "failed", "inventory": "failed"}, seen
    assert missing.startswith("last run (install or update of rack %s, host " % RACK), missing
    assert "stopped without finishing, at: %s (its lock its process %d on " % (lock["step"], lock["pid"]) in missing

    # The rerun takes the dead run's lock over and finishes the update.
    rerun = driver.playbook("update_rack.yml", UPDATE)
    assert "took over the run lock" in rerun.stderr + rerun.stdout
    assert statuses(driver, tmp_path) == ({"rack_status": "running", "racks": "running", "inventory": "running"},
                                          None)

    # A run at work on another host (its lock valid, its process out of sight) still reads updating.
    tags = {t["Key"]: t["Value"] for t in account.client("s3").get_bucket_tagging(Bucket=_bucket(account))["TagSet"]}
    tags.update({"convox:status": "updating", "convox:lease": str(int(time.time()) + 1200)})
    account.client("s3").put_bucket_tagging(Bucket=_bucket(account), Tagging={"TagSet": [
        {"Key": k, "Value": v} for k, v in tags.items()]})
    account.client("ssm").put_parameter(Name="/convox/%s/lock" % RACK, Type="String", Value=json.dumps({
        "run": "elsewhere", "host": "ci-runner-7.example", "pid": 31337, "operation": "install or update of rack %s"
        % RACK, "since": int(time.time()), "expires": int(time.time()) + 120, "step": "updating Auto Scaling group"}))
    assert statuses(driver, tmp_path) == ({"rack_status": "updating", "racks": "updating", "inventory": "updating"},
                                          None)
    # ... until its lock expires (it stopped renewing it): then failed, naming its step.
    account.client("ssm").put_parameter(Name="/convox/%s/lock" % RACK, Type="String", Overwrite=True,
                                        Value=json.dumps({"run": "elsewhere", "host": "ci-runner-7.example",
                                                          "pid": 31337, "expires": int(time.time()) - 1,
                                                          "step": "updating Auto Scaling group"}))
    seen, missing = statuses(driver, tmp_path)
    assert seen == {"rack_status": "failed", "racks": "failed", "inventory": "failed"}, seen
    assert "at: updating Auto Scaling group (its lock expired at " in missing

    driver.playbook("uninstall_rack.yml", {"rack": RACK, "rack_purge_data": True})


def _bucket(account):
    return [b["Name"] for b in account.client("s3").list_buckets()["Buckets"] if b["Name"].startswith("convox-%s-" % RACK)
            and not b["Name"].endswith("-logs")][0]  # the rack's bucket, not its log bucket
