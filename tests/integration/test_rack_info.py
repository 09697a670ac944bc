"""rack_info, rack_status.yml and racks.yml against the local AWS: status words derived from what
exists (running, converging, a run's status while its lease holds, failed with the missing parts
named), one rack by name or every rack of a region in bulk (the same dictionaries), check mode,
never changed; the playbooks print for a person as `convox rack` and `convox racks` do. The
module's own cases run its main() in this process (conftest.InProcess); the playbooks are real runs.

Racks live in an account of their own of the local AWS (see test_inventory.py)."""

from __future__ import annotations

import json
import os
import time

import pytest

from test_inventory import ROOT, account_client, account_env, install, run_module

from ansible_collections.convox.rack.plugins.module_utils._rack.version import COLLECTION_VERSION

ACCOUNT = "616161616161"  # an account of its own: test_awx.py assumes a role in 666666666666


@pytest.fixture(scope="module")
def racks(local_aws, direct):
    env = account_env(local_aws, ACCOUNT)
    for rack in ("info-ok", "info-held", "info-slow", "info-broken"):
        install(direct, env, rack)
    # an app of info-ok (its log group, as the app module makes it)
    account_client(local_aws, env, "logs").create_log_group(
        logGroupName="/convox/info-ok/apps/web", tags={"System": "convox", "Type": "app", "Rack": "info-ok", "App": "web"})
    # info-held: an update run holds it (status recorded, lease not expired), and an older release converged it
    s3 = account_client(local_aws, env, "s3")
    bucket = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("convox-info-held-")
              and not b["Name"].endswith("-logs")][0]  # the rack's bucket, not its log bucket
    tags = [t for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
            if t["Key"] not in ("convox:status", "convox:lease", "convox:version")]
    tags += [{"Key": "convox:status", "Value": "updating"}, {"Key": "convox:lease", "Value": str(int(time.time()) + 3600)},
             {"Key": "convox:version", "Value": "0.1.0"}]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    # ... and that run, on another host, holds the rack's run lock (a rack reads a run status only while a run
    # holds its lock: holder.py; a killed run's rack reads failed, tests/integration/test_killed_run_status.py)
    account_client(local_aws, env, "ssm").put_parameter(Name="/convox/info-held/lock", Type="String", Value=json.dumps({
        "run": "r1", "host": "ci-runner-7.example", "pid": 4242, "operation": "install or update of rack info-held",
        "since": int(time.time()), "expires": int(time.time()) + 3600, "step": "updating Auto Scaling group"}))
    # info-slow: its instance is not healthy (yet)
    asg = account_client(local_aws, env, "autoscaling")
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["convox-info-slow"])["AutoScalingGroups"][0]
    asg.set_instance_health(InstanceId=group["Instances"][0]["InstanceId"], HealthStatus="Unhealthy")
    # info-broken: its load balancer deleted by hand
    elb = account_client(local_aws, env, "elbv2")
    arn = elb.describe_load_balancers(Names=["convox-info-broken"])["LoadBalancers"][0]["LoadBalancerArn"]
    # Its deletion protection first, as AWS refuses to delete a protected load balancer.
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled",
                                                                          "Value": "false"}])
    elb.delete_load_balancer(LoadBalancerArn=arn)
    return env


EXPECTED = {"info-broken": "failed", "info-held": "updating", "info-ok": "running", "info-slow": "converging"}


def test_every_rack_of_the_region(direct, racks):
    result = run_module(direct, racks, {}, "rack_info")
    assert result["changed"] is False and not result.get("failed")
    assert {r["name"]: r["status"] for r in result["racks"]} == EXPECTED
    assert result["source"] == {"name": "local", "account_id": ACCOUNT, "account_alias": None, "local": True,
                                "partition": "aws"}
    by_name = {r["name"]: r for r in result["racks"]}
    ok = by_name["info-ok"]
    assert ok["apps"] == ["web"] and ok["instances"] == {"desired": 1, "in_service": 1, "registered": 1}
    assert ok["load_balancer"]["dns_name"].startswith("convox-info-ok-") and ok["missing"] == []
    assert ok["parameters"]["instance_count"] == 1 and ok["version"] == COLLECTION_VERSION
    assert by_name["info-slow"]["instances"]["in_service"] == 0
    assert by_name["info-broken"]["missing"] == ["listener", "load_balancer"]
    assert by_name["info-broken"]["load_balancer"] == {"arn": None, "dns_name": None, "access_logs": None,
                                                       "deletion_protection": None, "listeners": None}
    # about nine calls for the region (the racks' keys' aliases among them, and the run lock of info-held, the
    # rack at work: one GetParameters for up to ten such racks), plus who the caller is and IAM: not ~30 a rack
    assert result["aws_calls"] <= 12


def test_one_rack_by_name_is_the_same_rack(direct, racks):
    every = {r["name"]: r for r in run_module(direct, racks, {}, "rack_info")["racks"]}
    for name in EXPECTED:
        one = run_module(direct, racks, {"name": name}, "rack_info")["racks"]
        # The listing does not read (a call a rack each) the router's attributes and listeners, nor flow logs.
        for key in ("access_logs", "deletion_protection", "listeners"):
            has_lb = one[0]["load_balancer"]["arn"] is not None
            assert every[name]["load_balancer"].pop(key) is None
            assert (one[0]["load_balancer"].pop(key) is not None) == has_lb, (name, key)
        assert every[name].pop("flow_log_id") is None and one[0].pop("flow_log_id"), name
        assert one == [every[name]], name


def test_check_mode_and_a_rack_that_does_not_exist(direct, racks):
    result = run_module(direct, racks, {"name": "info-ok"}, "rack_info", check=True)
    assert result["changed"] is False and result["racks"][0]["status"] == "running"
    assert run_module(direct, racks, {"name": "info-none"}, "rack_info")["racks"] == []


def test_bad_name_fails_before_any_call(direct, racks, local_aws):
    before = local_aws.request_count()
    result = run_module(direct, racks, {"name": "Info_Bad"}, "rack_info")
    assert result["failed"] is True and result["msg"].startswith("name: must be lowercase")
    assert local_aws.request_count() == before


def test_rack_status_prints_for_a_person(runner, racks, tmp_path):
    env = dict(racks, XDG_CONFIG_HOME=str(tmp_path), CONVOX_RACK="")
    proc = runner.playbook(os.path.join(ROOT, "playbooks", "rack_status.yml"), {"rack": "info-ok"}, env=env)
    for line in ('"Name        local/info-ok"', '"Status      running"', '"Region      us-east-1"',
                 '"Router      convox-info-ok-', '"Instances   1/1 in service, 1 registered in the cluster"',
                 '"Apps        1 (web)"', '"Version     %s"' % COLLECTION_VERSION, '"  instance_count=1"'):
        assert line in proc.stdout, line
    assert "changed=0" in proc.stdout
    broken = runner.playbook(os.path.join(ROOT, "playbooks", "rack_status.yml"), {"rack": "info-broken"}, env=env, check=True)
    assert '"Status      failed"' in broken.stdout and '"Missing     listener, load_balancer"' in broken.stdout
    missing = runner.playbook(os.path.join(ROOT, "playbooks", "rack_status.yml"), {"rack": "info-none"}, env=env, expect_rc=2)
    assert "could not find rack info-none" in missing.stdout


def test_racks_prints_name_status_version_sorted(runner, racks):
    proc = runner.playbook(os.path.join(ROOT, "playbooks", "racks.yml"), env=racks)
    versions = {"info-held": "0.1.0"}
    rows = [("NAME", "STATUS", "VERSION")] + [("local/" + name, status, versions.get(name, COLLECTION_VERSION))
                                              for name, status in sorted(EXPECTED.items())]
    table = ['"%-17s  %-10s  %s"' % row for row in rows]
    positions = [proc.stdout.index(row) for row in table]
    assert positions == sorted(positions)
    assert "changed=0" in proc.stdout
