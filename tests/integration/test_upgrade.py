"""Upgrading a rack installed by the last release to the working tree, as a user does it.

The last release is the highest release below the working tree's version (0.1.0 today), as its tarball
in tests/integration/data/releases/: `make release` (scripts/release.py) builds it from the release's
tag and commits it with the next development version, so that a checkout without tags or history (a
shallow clone, an archive: CI's) still holds it. It is installed into a collections path of its own
beside amazon.aws and community.aws, and its playbooks (`convox.rack.install_rack`,
`convox.rack.create_app`) install a private rack (NAT gateways) with an app. Objects go into the rack's
and the app's buckets. Then the working tree's update_rack.yml upgrades the rack: every id is kept, the
objects are intact, the recorded version is the working tree's and the output names the upgrade; a rerun
(install_rack.yml) changes nothing. A rack recorded by a newer release is refused, naming both versions,
and converged with rack_allow_downgrade. The working tree's uninstall then leaves nothing of the rack.

A tree without the release's tarball FAILS here, saying how to make it: a skipped upgrade test would
hide that nobody tested the upgrade. The rack lives in an account of its own (see test_inventory.py)."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import tarfile
import types

import pytest

from conftest import live_tagged
from inventory_cli import listed
from test_inventory import ROOT, VENV_BIN, account_client, account_env, inventory

from ansible_collections.convox.rack.plugins.module_utils._rack.version import (
    COLLECTION_VERSION, compare_versions, parse_version)

ACCOUNT = "585858585858"  # an account of its own: no rack of another test shows up
RACK = "upg"
APP = "web"
OBJECTS = {"settings/env": b"PORT=5000\n", "logs/2026/12/04/app.log": b"line one\nline two\n"}


RELEASES = os.path.join(ROOT, "tests", "integration", "data", "releases")
TARBALL = re.compile(r"^convox-rack-(.+)\.tar\.gz$")


def last_release():
    """(version, path) of the highest release tarball (X.Y.Z, no prerelease) below the working tree's
    version; the test fails without one, saying how to make it."""
    found = {}
    for name in os.listdir(RELEASES) if os.path.isdir(RELEASES) else []:
        match = TARBALL.match(name)
        parsed = parse_version(match.group(1)) if match else None
        if parsed and not parsed[3] and compare_versions(match.group(1), COLLECTION_VERSION) < 0:
            found[match.group(1)] = os.path.join(RELEASES, name)
    if not found:
        pytest.fail("no release tarball below %s in %s: the upgrade test installs a rack with the last release. "
                    "`make release` puts it there; by hand: `git archive <tag> | tar -x -C DIR && ansible-galaxy "
                    "collection build --output-path %s DIR`" % (COLLECTION_VERSION, RELEASES, RELEASES))
    version = max(found, key=functools.cmp_to_key(compare_versions))
    return version, found[version]


@pytest.fixture(scope="module")
def old_release(tmp_path_factory):
    """The last release's tarball, installed (offline) into a collections path of its own."""
    release, tarball = last_release()
    work = tmp_path_factory.mktemp("old-release")
    collections = work / "collections"
    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == ("convox", "rack", release), manifest
    galaxy = os.path.join(VENV_BIN, "ansible-galaxy")
    deps = os.path.join(ROOT, ".venv", "collections", "ansible_collections")
    for dep in ("amazon/aws", "community/aws"):
        os.makedirs(collections / "ansible_collections" / dep.split("/", maxsplit=1)[0], exist_ok=True)
        os.symlink(os.path.join(deps, dep), collections / "ansible_collections" / dep)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections))
    done = subprocess.run([galaxy, "collection", "install", "--offline", "-p", str(collections), tarball],
                          cwd=str(work), env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    installed = collections / "ansible_collections" / "convox" / "rack"
    assert not installed.is_symlink() and (installed / "MANIFEST.json").exists()
    (work / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = False\ninterpreter_python = auto_silent\n")
    return types.SimpleNamespace(version=release, collections=str(collections), work=str(work),
                                 config=str(work / "ansible.cfg"))


@pytest.fixture(scope="module")
def account(local_aws, tmp_path_factory):
    env = account_env(local_aws, ACCOUNT)
    env.update(XDG_CONFIG_HOME=str(tmp_path_factory.mktemp("config")), CONVOX_RACK="")
    return env


def old_playbook(local_aws, old, account, name, extra_vars, expect_rc=0):
    """`ansible-playbook convox.rack.<name>` of the old release, from outside the repository."""
    env = dict(local_aws.env, **account)
    env.update(ANSIBLE_COLLECTIONS_PATH=old.collections, ANSIBLE_CONFIG=old.config,
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "convox.rack." + name, "-e", json.dumps(extra_vars)]
    proc = subprocess.run(cmd, cwd=old.work, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == expect_rc, proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc


def playbook(runner, account, name, extra_vars, check=False, expect_rc=0):
    """The working tree's playbooks/<name>.yml."""
    return runner.playbook(os.path.join(ROOT, "playbooks", name), extra_vars, check=check, env=account,
                           expect_rc=expect_rc)


class Account:
    """conftest.live_tagged's `aws`, in the test's account."""

    def __init__(self, local_aws, env):
        self.local_aws, self.env = local_aws, env

    def client(self, service, region="us-east-1"):
        return account_client(self.local_aws, self.env, service, region)


def bucket_tags(s3, bucket):
    return {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}


def ids(local_aws, account, rack_bucket, app_bucket):
    """What must survive an upgrade, read from AWS."""
    ec2 = account_client(local_aws, account, "ec2")
    flt = [{"Name": "tag:Rack", "Values": [RACK]}, {"Name": "tag:System", "Values": ["convox"]}]
    elb = account_client(local_aws, account, "elbv2")
    s3 = account_client(local_aws, account, "s3")
    return {
        "vpcs": sorted(v["VpcId"] for v in ec2.describe_vpcs(Filters=flt)["Vpcs"]),
        "subnets": sorted(s["SubnetId"] for s in ec2.describe_subnets(Filters=flt)["Subnets"]),
        "nat_gateways": sorted(n["NatGatewayId"] for n in ec2.describe_nat_gateways(Filters=flt)["NatGateways"]
                               if n["State"] != "deleted" and {"Key": "Rack", "Value": RACK} in n.get("Tags", [])),
        "addresses": sorted(a["AllocationId"] for a in ec2.describe_addresses(Filters=flt)["Addresses"]),
        "load_balancers": sorted(lb["LoadBalancerArn"] for lb in elb.describe_load_balancers()["LoadBalancers"]
                                 if lb["LoadBalancerName"] == "convox-" + RACK),
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"] in (rack_bucket, app_bucket)),
    }


def with_policy_lifted(s3, bucket, action):
    """The bucket's TLS-only policy refuses every object call over the local AWS's plain HTTP (and moto
    ignores its condition): lift it for the object call, put it back as it was (conftest.put_object)."""
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    try:
        return action()
    finally:
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)


def read_objects(s3, bucket):
    def read():
        return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in OBJECTS}
    return with_policy_lifted(s3, bucket, read)


@pytest.fixture(scope="module")
def old_rack(local_aws, old_release, account):
    """A private rack and an app installed by the last release, with objects in both buckets."""
    old_playbook(local_aws, old_release, account, "install_rack",
                 {"rack": RACK, "rack_private": True, "rack_high_availability": False, "rack_instance_count": 1})
    old_playbook(local_aws, old_release, account, "create_app", {"rack": RACK, "app": APP})
    s3 = account_client(local_aws, account, "s3")
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    rack_bucket = [b for b in buckets if b.startswith("convox-%s-" % RACK) and len(b) == len("convox-%s-" % RACK) + 12]
    app_bucket = [b for b in buckets if b.startswith("convox-%s-%s-" % (RACK, APP))]
    assert len(rack_bucket) == 1 and len(app_bucket) == 1, buckets
    for bucket in rack_bucket + app_bucket:
        for key, body in OBJECTS.items():
            with_policy_lifted(s3, bucket, functools.partial(s3.put_object, Bucket=bucket, Key=key, Body=body))
    assert bucket_tags(s3, rack_bucket[0])["convox:version"] == old_release.version
    before = ids(local_aws, account, rack_bucket[0], app_bucket[0])
    assert len(before["vpcs"]) == 1 and len(before["subnets"]) == 4 and len(before["nat_gateways"]) == 2
    assert len(before["load_balancers"]) == 1 and len(before["buckets"]) == 2
    return types.SimpleNamespace(bucket=rack_bucket[0], app_bucket=app_bucket[0], ids=before, s3=s3)


def version_group(version):
    return "version_" + version.replace(".", "_").replace("-", "_")


def test_upgrade_from_the_last_release_keeps_every_id_and_object(local_aws, runner, old_release, account, old_rack,
                                                                 tmp_path):
    old, new = old_release.version, COLLECTION_VERSION
    line = "upgraded rack %s from %s to %s" % (RACK, old, new)
    # the inventory groups the rack by the version that converged it: an AWX job limited to that group
    # (upgrade_racks.yml) upgrades every rack of it; here in check mode
    config = {"regions": ["us-east-1"]}
    groups = listed(inventory(local_aws, account, config, tmp_path, "--list"))
    assert groups[version_group(old)]["hosts"] == ["local/" + RACK]
    assert groups["_meta"]["hostvars"]["local/" + RACK]["rack_version"] == old
    (tmp_path / "racks.convox.yml").write_text("plugin: convox.rack.racks\nregions: [us-east-1]\n")
    fleet = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(ROOT, "playbooks", "upgrade_racks.yml"),
                            "-i", str(tmp_path / "racks.convox.yml"), "--limit", version_group(old), "--check"],
                           cwd=ROOT, env=dict(local_aws.env, **account), capture_output=True, text=True, timeout=600,
                           check=False)
    assert fleet.returncode == 0, fleet.stdout[-3000:] + fleet.stderr[-2000:]
    assert "  would upgrade rack %s from %s to %s" % (RACK, old, new) in fleet.stdout, fleet.stdout[-3000:]
    assert "ok: [local/%s]" % RACK in fleet.stdout
    # check mode: the upgrade is planned, as one entry, and nothing is written
    planned = playbook(runner, account, "update_rack.yml", {"rack": RACK}, check=True)
    assert "  would upgrade rack %s from %s to %s" % (RACK, old, new) in planned.stdout, planned.stdout[-3000:]
    assert bucket_tags(old_rack.s3, old_rack.bucket)["convox:version"] == old

    # the working tree's app converge, before the rack's update: the rack has no log bucket yet, so the
    # app keeps logging into the rack's bucket, as the release made it (the update moves it, below)
    playbook(runner, account, "create_app.yml", {"rack": RACK, "app": APP})
    s3, log_bucket = old_rack.s3, old_rack.bucket + "-logs"
    assert s3.get_bucket_logging(Bucket=old_rack.app_bucket)["LoggingEnabled"]["TargetBucket"] == old_rack.bucket
    assert log_bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]

    upgraded = playbook(runner, account, "update_rack.yml", {"rack": RACK})
    assert ("rack %s is running" % RACK) in upgraded.stdout and "  " + line in upgraded.stdout, upgraded.stdout[-3000:]
    assert "changed=1" in upgraded.stdout
    tags = bucket_tags(old_rack.s3, old_rack.bucket)
    assert tags["convox:version"] == new and tags["convox:status"] == "running"
    assert ids(local_aws, account, old_rack.bucket, old_rack.app_bucket) == old_rack.ids
    # the release recorded 7 days of logs; the new default (a year) applies to new racks only
    assert tags["convox:log_retention"] == "7"
    groups = account_client(local_aws, account, "logs").describe_log_groups(logGroupNamePrefix="/convox/" + RACK)
    assert {g["logGroupName"]: g["retentionInDays"] for g in groups["logGroups"]} == {
        "/convox/" + RACK: 7, "/convox/%s/apps/%s" % (RACK, APP): 7}
    # every log delivery now lands in the new log bucket, the app's access logs too; the rack's bucket takes
    # none (its policy TLS only) and is SSE-KMS with the rack's new key
    assert s3.get_bucket_logging(Bucket=old_rack.app_bucket)["LoggingEnabled"] == {
        "TargetBucket": log_bucket, "TargetPrefix": "logs/apps/%s/" % APP}
    assert [st["Sid"] for st in json.loads(s3.get_bucket_policy(Bucket=old_rack.bucket)["Policy"])["Statement"]] == [
        "DenyInsecureTransport"]
    assert "AllowS3AccessLogsOfApps" in s3.get_bucket_policy(Bucket=log_bucket)["Policy"]
    rule = s3.get_bucket_encryption(Bucket=old_rack.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" and rule["BucketKeyEnabled"]

    # a rerun, with install_rack.yml this time, changes nothing
    again = playbook(runner, account, "install_rack.yml", {"rack": RACK})
    assert "rack %s is running" % RACK in again.stdout and ": no change" in again.stdout and "changed=0" in again.stdout
    assert "upgraded" not in again.stdout
    assert read_objects(old_rack.s3, old_rack.bucket) == OBJECTS
    assert read_objects(old_rack.s3, old_rack.app_bucket) == OBJECTS
    app = playbook(runner, account, "create_app.yml", {"rack": RACK, "app": APP})
    assert "changed=0" in app.stdout, app.stdout[-3000:]

    # the inventory (as rack_info: one bulk read) moves the rack to the new version's group, with its app
    groups = listed(inventory(local_aws, account, config, tmp_path, "--list"))
    assert groups[version_group(new)]["hosts"] == ["local/" + RACK] and version_group(old) not in groups
    hostvars = groups["_meta"]["hostvars"]["local/" + RACK]
    assert hostvars["rack_version"] == new and hostvars["rack_apps"] == [APP] and hostvars["rack_status"] == "running"


def test_a_rack_recorded_by_a_newer_release_is_refused_unless_allowed(local_aws, runner, account, old_rack):
    s3, bucket = old_rack.s3, old_rack.bucket
    tags = dict(bucket_tags(s3, bucket), **{"convox:version": "9.9.9"})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    want = ("rack %s was last converged by convox.rack 9.9.9, newer than this collection (convox.rack %s)"
            % (RACK, COLLECTION_VERSION))
    for check in (True, False):
        refused = playbook(runner, account, "update_rack.yml", {"rack": RACK, "rack_instance_count": 2}, check=check,
                           expect_rc=2)
        assert want in refused.stdout and "set rack_allow_downgrade: true" in refused.stdout, refused.stdout[-3000:]
        assert "nothing was changed" in refused.stdout
    assert bucket_tags(s3, bucket) == tags     # nothing written: no run status, no parameter
    asg = account_client(local_aws, account, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["convox-" + RACK])["AutoScalingGroups"][0]
    assert asg["DesiredCapacity"] == 1

    forced = playbook(runner, account, "update_rack.yml", {"rack": RACK, "rack_allow_downgrade": True})
    assert "  downgraded rack %s from 9.9.9 to %s" % (RACK, COLLECTION_VERSION) in forced.stdout, forced.stdout[-3000:]
    assert bucket_tags(s3, bucket)["convox:version"] == COLLECTION_VERSION
    assert ids(local_aws, account, bucket, old_rack.app_bucket) == old_rack.ids
    again = playbook(runner, account, "update_rack.yml", {"rack": RACK})
    assert "changed=0" in again.stdout


def test_the_working_tree_uninstalls_the_upgraded_rack(local_aws, runner, account, old_rack):
    """Even a rack recorded by a newer release: an uninstall is never refused for a version, it warns."""
    s3, bucket = old_rack.s3, old_rack.bucket
    tags = dict(bucket_tags(s3, bucket), **{"convox:version": "9.9.9"})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    gone = playbook(runner, account, "uninstall_rack.yml",
                    {"rack": RACK, "rack_force": True, "rack_purge_data": True})
    assert "rack %s is uninstalled" % RACK in gone.stdout, gone.stdout[-3000:]
    warned = " ".join((gone.stdout + gone.stderr).split())
    assert ("rack %s was last converged by convox.rack 9.9.9, newer than this collection (convox.rack %s): what that"
            " release added to racks may be left behind" % (RACK, COLLECTION_VERSION)) in warned, warned[-3000:]
    assert live_tagged(Account(local_aws, account), RACK) == []
    buckets = [b["Name"] for b in old_rack.s3.list_buckets()["Buckets"]]
    assert old_rack.bucket not in buckets and old_rack.app_bucket not in buckets
