"""Data: no user data is deleted unless purge_data: true was given.

Objects (several versions of some) are put into every bucket the collection creates (the rack's
bucket and each app's bucket) and an image into an app's repository, then every other path runs
through the proxy (scripts/aws_proxy.py): an update under 10% faults, runs that fail (faults that
never stop, an uninstall refused while apps exist), an app delete without purge (killed as it
deletes the app's log group, then rerun under faults), rack uninstalls without purge (under
faults; forced with an app registered, killed again and again until one finishes), a reinstall
over the kept bucket and its uninstall. After each, every object body and every version is read
back from AWS. Last, purge_data: true removes it all, which proves that the data was there to be
deleted and that purging is the one path that does."""

from __future__ import annotations

import json

import reliability as R

# Where each uninstall of the interrupted series is killed: at its KILL_AT-th call that may change
# something (the run lock's calls included).
KILL_AT = 12

MANIFEST = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7,
                       "digest": "sha256:" + "b" * 64}, "layers": []}


class UserData:
    """What the user put where: {bucket: {key: [bodies, oldest first]}}, {repository: [tags]}."""

    def __init__(self, account):
        self.account = account
        self.objects = {}
        self.images = {}

    def put(self, bucket, key, *bodies):
        for body in bodies:
            R.put_objects(self.account, bucket, {key: body})
        self.objects.setdefault(bucket, {}).setdefault(key, []).extend(bodies)

    def push(self, repository, tag):
        ecr = self.account.client("ecr")
        ecr.put_image(repositoryName=repository, imageManifest=json.dumps(MANIFEST), imageTag=tag)
        self.images.setdefault(repository, []).append(tag)

    def versions(self, bucket):
        pages = self.account.client("s3").get_paginator("list_object_versions").paginate(Bucket=bucket)
        found = {}
        for page in pages:
            for v in page.get("Versions", []):
                found[v["Key"]] = found.get(v["Key"], 0) + 1
        return found

    def check(self, after):
        """Every body and version still where it was put."""
        present = set(R.buckets(self.account))
        for bucket, objects in sorted(self.objects.items()):
            assert bucket in present, "after %s: bucket %s, which holds user data, is gone" % (after, bucket)
            got = R.read_objects(self.account, bucket, sorted(objects))
            want = {k: bodies[-1] for k, bodies in objects.items()}
            assert got == want, "after %s: objects of %s changed: %s" % (after, bucket, got)
            versions = self.versions(bucket)
            for key, bodies in objects.items():
                assert versions.get(key) == len(bodies), "after %s: %s/%s has %s versions, not %d" % (
                    after, bucket, key, versions.get(key), len(bodies))
        ecr = self.account.client("ecr")
        for repo, tags in sorted(self.images.items()):
            listed = ecr.list_images(repositoryName=repo)["imageIds"]
            assert sorted(i.get("imageTag") for i in listed) == sorted(tags), "after %s: images of %s: %s" % (
                after, repo, listed)

    def gone(self):
        present = set(R.buckets(self.account))
        return [b for b in self.objects if b in present]


def app_bucket(account, app):
    found = [b for b in R.buckets(account) if b.startswith("convox-%s-%s-" % (R.RACK, app))]
    assert len(found) == 1, found
    return found[0]


def rack_bucket(account):
    found = [b for b in R.buckets(account) if b.startswith("convox-%s-" % R.RACK)
             and len(b) == len("convox-%s-" % R.RACK) + 12]
    assert len(found) == 1, found
    return found[0]


def setup_rack_with_data(driver, account, apps):
    driver.playbook("install_rack.yml", dict(R.RACK_VARS, rack=R.RACK, **R.POLL))
    data = UserData(account)
    data.put(rack_bucket(account), "user/settings.json", b'{"v": 1}', b'{"v": 2}')
    for app in apps:
        driver.playbook("create_app.yml", {"rack": R.RACK, "app": app})
        bucket = app_bucket(account, app)
        data.put(bucket, "releases/R1/app.json", b"release 1 of " + app.encode())
        data.put(bucket, "builds/B1.tgz", b"\x1f\x8b" + app.encode() * 64, b"\x1f\x8b rebuilt " + app.encode())
        data.push("convox/%s/%s" % (R.RACK, app), "B1")
    data.check("putting the data")
    return data


def test_data_survives_faults_failures_and_app_deletes(local_aws, aws_proxy):
    account = R.Account(local_aws, "data-apps")
    driver = R.Driver(local_aws, account, aws_proxy)
    data = setup_rack_with_data(driver, account, ["api"])
    figures = []

    # an update under 10% faults
    aws_proxy.configure(fault_rate=0.10, seed=7)
    driver.playbook("update_rack.yml", dict(R.UPDATE_VARS, rack=R.RACK, **R.POLL))
    data.check("an update under 10% faults")

    # a run that fails: faults that never stop on the first write of an update
    aws_proxy.configure(fault_rate=1.0, faults=["503", "throttle"], match=lambda r: r.name == "s3:PutBucketTagging")
    failed = driver.playbook("update_rack.yml", dict(R.POLL, rack=R.RACK, rack_instance_count=3, rack_wait_timeout=5),
                             expect_rc=2)
    assert "put_bucket_tagging" in failed.stdout
    aws_proxy.configure(fault_rate=0.0, faults=R.FAULT_MIX, match=False)
    data.check("a failed update")

    # an uninstall refused while apps exist (a failed run of its own)
    refused = driver.playbook("uninstall_rack.yml", dict(R.POLL, rack=R.RACK), expect_rc=2)
    assert "has apps" in refused.stdout
    data.check("an uninstall refused while apps exist")

    # app delete killed as it deletes the app's log group (the last step, taken by AWS, its answer
    # lost), then rerun under 10% faults: bucket and repository kept, and named
    killed = driver.playbook("delete_app.yml", {"rack": R.RACK, "app": "api"}, kill_after=1, kill_then="lost",
                             kill_counting=lambda r: r.name == "logs:DeleteLogGroup")
    assert killed.rc == -9 and killed.killed_at
    figures.append("delete_app api killed at %s" % killed.killed_at)
    data.check("delete_app killed as it deleted the log group")
    aws_proxy.configure(fault_rate=0.10, seed=7)
    deleted = driver.playbook("delete_app.yml", {"rack": R.RACK, "app": "api"})
    assert "kept because they hold data" in deleted.stdout and app_bucket(account, "api") in deleted.stdout
    data.check("deleting app api without purge_data under faults")

    # uninstall without purge, under 10% faults (the forced uninstall of a rack with an app: below)
    aws_proxy.configure(fault_rate=0.10, seed=11)
    gone = driver.playbook("uninstall_rack.yml", dict(R.POLL, rack=R.RACK))
    aws_proxy.configure(fault_rate=0.0)
    assert "kept buckets holding data" in gone.stdout
    data.check("an uninstall without purge_data under faults")
    left = R.picture(account, [R.RACK]).summary()
    assert set(left) == {"bucket", "repository"}, "the uninstall left more than the data: %s" % left
    R.report("data: apps", {"kill points": figures, "left after uninstall": left, "faults": aws_proxy.summary()})

    # purge_data: true is the one path that deletes it
    driver.playbook("delete_app.yml", {"rack": R.RACK, "app": "api", "app_purge_data": True})
    driver.playbook("uninstall_rack.yml", dict(R.POLL, rack=R.RACK, rack_purge_data=True))
    assert data.gone() == []
    assert R.picture(account).as_dict() == {}


def test_data_survives_interrupted_uninstalls_and_a_reinstall(local_aws, aws_proxy):
    account = R.Account(local_aws, "data-rack")
    driver = R.Driver(local_aws, account, aws_proxy)
    data = setup_rack_with_data(driver, account, ["web"])
    figures = []

    # Killed again and again at its KILL_AT-th write, each uninstall gets a little further than the
    # last, until one finishes by itself: the kills land all over the teardown, the bucket's last
    # steps included.
    while True:
        run = driver.playbook("uninstall_rack.yml", dict(R.POLL, rack=R.RACK, rack_force=True), kill_after=KILL_AT,
                              kill_then="lost", kill_counting=R.is_write)
        if not run.killed_at:
            break
        assert run.rc == -9
        figures.append(run.killed_at)
        data.check("an uninstall killed at %s" % run.killed_at)
        assert len(figures) < 15, "the uninstall makes no progress between kills: %s" % figures
    assert run.rc == 0, run.stdout[-3000:]
    assert len(figures) >= 3, "too few kills to prove anything: %s" % figures
    assert "kept buckets holding data" in run.stdout
    data.check("the uninstall rerun without purge_data")

    driver.playbook("install_rack.yml", dict(R.RACK_VARS, rack=R.RACK, **R.POLL))
    data.check("a reinstall over the kept bucket")
    driver.playbook("uninstall_rack.yml", dict(R.POLL, rack=R.RACK))
    data.check("the second uninstall without purge_data")
    R.report("data: rack", {"uninstall killed at": figures})

    driver.playbook("delete_app.yml", {"rack": R.RACK, "app": "web", "app_purge_data": True})
    driver.playbook("uninstall_rack.yml", dict(R.POLL, rack=R.RACK, rack_purge_data=True))
    assert data.gone() == []
    assert R.picture(account).as_dict() == {}
