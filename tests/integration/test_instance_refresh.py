"""Instance replacement by instance refresh (parts/refresh.py), through real ansible-playbook runs
against the local AWS in realism mode (scripts/realism.py at SCALE; the refresh itself is modelled in
scripts/instance_refresh.py, as the Amazon EC2 Auto Scaling API Reference and User Guide describe it).

The tests run in order on one rack of two instances, reading the local AWS while the playbooks run:
a type change keeps every old instance InService until its replacement is; a refresh that fails rolls
back and fails the run with AWS's StatusReason; a run killed mid-refresh is followed, not repeated, by
the next; a refresh started outside the collection is waited out before the collection's own."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time

import pytest

from aws_proxy import AwsProxy
import reliability as R
from conftest import ROOT, VENV_BIN, Runner

SCALE = 0.05  # instances Pending 4.5 s, the refresh's warm-up (60 s) 3 s
RACK = "refresh"
GROUP = "convox-" + RACK
INSTALL = "playbooks/install_rack.yml"
UPDATE = "playbooks/update_rack.yml"
QUICK = {"rack_poll_interval": 1, "rack": RACK}
X86 = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
ARM = "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"


def aws_time(aws, **timings):
    aws.realism(scale=SCALE, timings=dict({"profile_propagation": 0, "s3_consistency": 0, "ec2_consistency": 0},
                                          **timings), ecs_managed_tag=False)


@pytest.fixture(scope="module")
def aws(realistic_aws):
    realistic_aws.reset()
    aws_time(realistic_aws)
    Runner(realistic_aws).playbook(INSTALL, dict(QUICK, rack_instance_count=2, rack_high_availability=False))
    yield realistic_aws
    realistic_aws.realism(enabled=False)


def group(aws):
    return aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]


def refreshes(aws):
    return aws.client("autoscaling").describe_instance_refreshes(AutoScalingGroupName=GROUP)["InstanceRefreshes"]


def parameter(aws, name):
    return aws.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]


def recap_changed(proc):
    return int(re.search(r"changed=(\d+)", proc.stdout.split("PLAY RECAP", 1)[1]).group(1))


class Watch:
    """DescribeAutoScalingGroups every 0.2 s from this test while a playbook runs: the group as AWS
    shows it during the refresh."""

    def __init__(self, aws):
        self.aws, self.samples, self._stop = aws, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(group(self.aws)["Instances"])
            time.sleep(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def in_service(self):
        return [len([i for i in s if i["LifecycleState"] == "InService"]) for s in self.samples]


def popen(aws, extra, endpoint=None, mark=None):
    env = aws.env_via(endpoint) if endpoint else aws.env
    if mark:
        env[R.RUN_MARK] = mark  # every process of the run carries it: the kill finds the module too
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), UPDATE, "-e", __import__("json").dumps(dict(QUICK, **extra))]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_a_type_change_keeps_every_old_instance_in_service_until_its_replacement_is(aws):
    old = {i["InstanceId"] for i in group(aws)["Instances"]}
    assert len(old) == 2
    planned = Runner(aws).playbook(UPDATE, dict(QUICK, rack_instance_type="t3.medium"), check=True)
    assert "would replace instances %s (instance refresh: each new instance in service before an old one is " \
           "terminated)" % GROUP in planned.stdout
    with Watch(aws) as watch:
        proc = Runner(aws).playbook(UPDATE, dict(QUICK, rack_instance_type="t3.medium"))
    assert watch.samples and min(watch.in_service()) >= 2, watch.in_service()
    for sample in watch.samples:
        ids = {i["InstanceId"] for i in sample}
        gone = old - ids
        new_in_service = [i for i in sample if i["InstanceType"] == "t3.medium" and i["LifecycleState"] == "InService"]
        assert len(new_in_service) >= len(gone), "an old instance went before its replacement was in service"
    assert max(len(s) for s in watch.samples) == 4, "the replacements were not launched first"
    asg = group(aws)
    assert not old & {i["InstanceId"] for i in asg["Instances"]}
    assert {i["InstanceType"] for i in asg["Instances"]} == {"t3.medium"} and len(asg["Instances"]) == 2
    assert re.search(r"replacing instances: \d+% \(\d/2 replaced\)", proc.stdout), proc.stdout[-3000:]
    assert "replaced instances %s" % GROUP in proc.stdout
    done = refreshes(aws)
    assert len(done) == 1 and done[0]["Status"] == "Successful"
    prefs = done[0]["Preferences"]
    assert (prefs["MinHealthyPercentage"], prefs["MaxHealthyPercentage"], prefs["SkipMatching"],
            prefs["AutoRollback"]) == (100, 200, True, True)
    again = Runner(aws).playbook(UPDATE, QUICK)
    assert recap_changed(again) == 0 and len(refreshes(aws)) == 1


def test_a_refresh_that_fails_rolls_back_and_fails_the_run_with_aws_reason(aws):
    before = {i["InstanceId"] for i in group(aws)["Instances"]}
    version = group(aws)["LaunchTemplate"]["Version"]
    with Watch(aws) as watch:  # an arm64 image on t3.medium: every launch fails
        proc = Runner(aws).playbook(UPDATE, dict(QUICK, rack_image_id=parameter(aws, ARM)), expect_rc=2)
    assert "ended RollbackSuccessful" in proc.stdout, proc.stdout[-3000:]
    assert "does not match the architecture 'arm64' of the specified AMI" in proc.stdout
    assert min(watch.in_service()) >= 2
    asg = group(aws)
    assert {i["InstanceId"] for i in asg["Instances"]} == before and asg["LaunchTemplate"]["Version"] == version
    # the image of the rack's architecture again: a new launch template version, whose refresh succeeds
    Runner(aws).playbook(UPDATE, dict(QUICK, rack_image_id=parameter(aws, X86)))
    asg = group(aws)
    assert {i["LaunchTemplate"]["Version"] for i in asg["Instances"]} == {asg["LaunchTemplate"]["Version"]}
    assert refreshes(aws)[0]["Status"] == "Successful"


def test_a_killed_run_is_followed_by_the_next_without_a_second_refresh(aws):
    aws_time(aws, instance_pending=900)  # new instances Pending 45 s: the refresh outlives the killed run
    proxy = AwsProxy(aws.endpoint).start()
    try:
        started = len(refreshes(aws))
        mark = "refresh-killed-%d" % os.getpid()
        run = popen(aws, {"rack_instance_type": "t3.large"}, proxy.url, mark)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (len(refreshes(aws)) > started and len(group(aws)["Instances"]) > 2):
            time.sleep(0.1)
        R.kill_run(mark, run.pid)  # ansible-playbook and every process of the run, the module included
        run.wait()
        assert refreshes(aws)[0]["Status"] in ("Pending", "InProgress"), "the refresh ended before the kill"
        with Watch(aws) as watch:
            proc = Runner(aws, proxy=proxy).playbook(UPDATE, dict(QUICK, rack_instance_type="t3.large"))
        starts = [r for r in proxy.forwarded() if r.name == "autoscaling:StartInstanceRefresh"]
        assert len(starts) == 1, "the rerun started a second refresh"
        assert "following instance refresh %s" % refreshes(aws)[0]["InstanceRefreshId"] in proc.stdout, proc.stdout[-4000:]
        assert min(watch.in_service()) >= 2
        assert {i["InstanceType"] for i in group(aws)["Instances"]} == {"t3.large"}
        assert recap_changed(Runner(aws).playbook(UPDATE, QUICK)) == 0
    finally:
        proxy.stop()
        aws_time(aws)


def test_a_refresh_started_outside_is_waited_out_then_the_rack_starts_its_own(aws):
    autoscaling = aws.client("autoscaling")
    outside = autoscaling.start_instance_refresh(AutoScalingGroupName=GROUP, Preferences={
        "MinHealthyPercentage": 100, "MaxHealthyPercentage": 200, "InstanceWarmup": 100})["InstanceRefreshId"]
    proc = Runner(aws).playbook(UPDATE, dict(QUICK, rack_instance_type="t3.small"))
    assert "started outside this run" in proc.stdout
    done = refreshes(aws)
    assert done[1]["InstanceRefreshId"] == outside and done[1]["Status"] == "Successful"
    assert done[0]["Status"] == "Successful" and done[0]["InstanceRefreshId"] != outside
    assert {i["InstanceType"] for i in group(aws)["Instances"]} == {"t3.small"}


def status(aws):
    return Runner(aws).playbook("playbooks/rack_status.yml", {"rack": RACK}).stdout


def test_status_says_when_a_newer_ecs_ami_exists_and_latest_moves_to_it(aws):
    """The rack runs an older x86_64 image; rack_status names the ECS-optimised AMI of today (the SSM
    parameter) and update_rack.yml -e rack_image_id=latest moves to it, by an instance refresh, recording
    the AMI id: the next run keeps it and changes nothing."""
    newest = parameter(aws, X86)
    older = next(i["ImageId"] for i in aws.client("ec2").describe_images(
        Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"] if i["ImageId"] != newest)
    Runner(aws).playbook(UPDATE, dict(QUICK, rack_image_id=older))
    shown = status(aws)
    assert "Image       %s (a newer ECS-optimized AMI exists: %s; update_rack.yml -e rack_image_id=latest moves to it)" % (
        older, newest) in shown, shown[-2000:]
    before = {i["InstanceId"] for i in group(aws)["Instances"]}
    planned = Runner(aws).playbook(UPDATE, dict(QUICK, rack_image_id="latest"), check=True)
    assert "would replace instances %s" % GROUP in planned.stdout
    with Watch(aws) as watch:
        Runner(aws).playbook(UPDATE, dict(QUICK, rack_image_id="latest"))
    assert min(watch.in_service()) >= 2
    ec2 = aws.client("ec2")
    ids = [i["InstanceId"] for i in group(aws)["Instances"]]
    assert not before & set(ids)
    images = {i["ImageId"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]}
    assert images == {newest}
    shown = status(aws)
    assert "Image       %s (the newest ECS-optimized AMI)" % newest in shown
    assert "  image_id=%s" % newest in shown, "the AMI id, not latest, is recorded"
    assert recap_changed(Runner(aws).playbook(UPDATE, QUICK)) == 0


def test_a_run_that_does_not_wait_leaves_the_refresh_to_aws_and_the_status_shows_it(aws):
    """rack_wait: false starts the refresh and returns, saying so; AWS goes on with it. rack_status
    (rack_info's instance_refresh) shows it in progress with its progress words, and no more once it
    ended; the next run then changes nothing (the group took the new type with the refresh's success)."""
    aws_time(aws, instance_pending=400)  # 20 s: the status below runs while the refresh is in progress
    try:
        proc = Runner(aws).playbook(UPDATE, dict(QUICK, rack_instance_type="t3.large", rack_wait=False))
        said = " ".join((proc.stdout + proc.stderr).split())
        assert re.search(r"\[WARNING\]: instance refresh \S+ replaces 2 instance\(s\) of %s in AWS; this run did not "
                         r"wait for it \(wait: false\)" % GROUP, said), said[-3000:]
        # the warning alone: no [DEPRECATION WARNING] of how it reached ansible (amazon.aws 11 on ansible-core 2.19)
        assert "DEPRECATION" not in said, said[-3000:]
        active = refreshes(aws)[0]
        assert active["Status"] in ("Pending", "InProgress"), active
        shown = status(aws)
        line = re.search(r"Refresh     replacing instances: \d+% \(\d/2 replaced\), instance refresh (\S+) (\w+) "
                         r"\(the next run of update_rack.yml follows it\)", shown)
        assert line and line.group(1) == active["InstanceRefreshId"], shown[-2000:]
        deadline = time.monotonic() + 120
        while refreshes(aws)[0]["Status"] not in ("Successful", "Failed", "Cancelled") and time.monotonic() < deadline:
            time.sleep(1)
        assert refreshes(aws)[0]["Status"] == "Successful"
        shown = status(aws)
        assert "Refresh " not in shown and "  instance_type=t3.large" in shown, shown[-2000:]
        assert {i["InstanceType"] for i in group(aws)["Instances"]} == {"t3.large"}
        assert recap_changed(Runner(aws).playbook(UPDATE, QUICK)) == 0
    finally:
        aws_time(aws)
