"""Apps of a rack against the local AWS, checked by reading AWS back with boto3: create (check mode
first), rerun, converge, two racks, delete with and without data (more than 1,000 object versions,
so that paging is proven), the rack's uninstall refused then forced, bad input, and the playbooks.

The create and its reruns (the `created` fixture) and the playbooks are real ansible-playbook runs;
the other option permutations run the modules' main() in this process (conftest.InProcess)."""

from __future__ import annotations

import json
import os
import re
import tempfile

import pytest

from conftest import live_tagged

RACK = "apprack"
OTHER_RACK = "apprack2"
HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "app_module.yml")


def _tags(items, key="Key", value="Value"):
    return {t[key]: t.get(value, "") for t in items or []}


# werkzeug colours the log lines of 4xx and 5xx answers (which reads that find nothing get): the
# pattern takes the colour codes too, so that every request counts.
REQUEST_LINE = re.compile(r'"(?:\x1b\[[0-9;]*m)*(POST|GET|PUT|DELETE|HEAD) /(?!moto-api)')


def answered(aws):
    """AWS API requests the local AWS has answered, 4xx and 5xx included."""
    with open(aws.log_path, encoding="utf-8", errors="replace") as f:
        return sum(1 for line in f if REQUEST_LINE.search(line))


def run_apps(runner, calls, module_name="app"):
    """Run convox.rack.app (or app_info) once per call, in order, in one play; return the results.
    With conftest.InProcess (`direct`), each call is the module's main() in this process instead.

    A call is the module's arguments, or a (arguments, {"check": bool, "diff": bool}) pair."""
    items = [{"args": c[0], **c[1]} if isinstance(c, tuple) else {"args": c} for c in calls]
    if runner.in_process:
        return [runner.module(i["args"], module_name, check=i.get("check", False), diff=i.get("diff", False))
                for i in items]
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        runner.playbook(HARNESS, {"calls": items, "module_name": module_name, "result_file": path})
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    finally:
        os.unlink(path)
    for result in results:
        result.pop("item", None)
    return results


def run_app(runner, args, module_name="app", check=False, diff=False):
    """Run convox.rack.app (or app_info) once; return its result dict (failed or not)."""
    return run_apps(runner, [(args, {"check": check, "diff": diff})], module_name)[0]


def install_rack(runner, name):
    result = runner.module({"name": name, "high_availability": False, "instance_count": 1})
    assert not result.get("failed"), result.get("msg")
    return result["rack"]


def app_resources(aws, rack, app):
    """What exists of an app, read straight from AWS: 'kind name' strings."""
    found = []
    logs = aws.client("logs").describe_log_groups(logGroupNamePrefix="/convox/%s/apps/%s" % (rack, app))["logGroups"]
    found += ["log-group " + g["logGroupName"] for g in logs if g["logGroupName"] == "/convox/%s/apps/%s" % (rack, app)]
    found += ["bucket " + b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]
              if b["Name"].startswith("convox-%s-%s-" % (rack, app)) and len(b["Name"]) == len(
                  "convox-%s-%s-" % (rack, app)) + 12]
    repos = aws.client("ecr").describe_repositories()["repositories"]
    found += ["repository " + r["repositoryName"] for r in repos if r["repositoryName"] == "convox/%s/%s" % (rack, app)]
    return sorted(found)


def lift_policy(aws, bucket):
    """The TLS-only policy refuses every object call over plain HTTP (and moto ignores its
    condition): the test lifts it to write data, and returns what puts it back."""
    s3 = aws.client("s3")
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    return lambda: s3.put_bucket_policy(Bucket=bucket, Policy=policy)


def fill_bucket(aws, bucket, keys=300, marker_rounds=3):
    """keys object versions plus keys x marker_rounds delete markers: 1,200 entries by default."""
    s3 = aws.client("s3")
    restore = lift_policy(aws, bucket)
    try:
        for i in range(keys):
            s3.put_object(Bucket=bucket, Key="releases/R%04d/artifact.tgz" % i, Body=b"release")
        for _round in range(marker_rounds):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [
                {"Key": "releases/R%04d/artifact.tgz" % i} for i in range(keys)], "Quiet": True})
    finally:
        restore()
    return keys * (1 + marker_rounds)


def count_versions(aws, bucket):
    pages = aws.client("s3").get_paginator("list_object_versions").paginate(Bucket=bucket)
    return sum(len(p.get("Versions", [])) + len(p.get("DeleteMarkers", [])) for p in pages)


def bulk_deletes(aws, bucket):
    """DeleteObjects requests the local AWS has answered for the bucket."""
    with open(aws.log_path, encoding="utf-8", errors="replace") as f:
        return sum(1 for line in f if "POST /%s?delete" % bucket in line)


def push_image(aws, repository, tag="v1"):
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7,
                           "digest": "sha256:" + "a" * 64},
                "layers": []}
    aws.client("ecr").put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)


@pytest.fixture(scope="module")
def rack(direct, local_aws):
    rack = install_rack(direct, RACK)
    yield rack
    run_apps(direct, [{"name": app, "rack": RACK, "state": "absent", "purge_data": True}
                      for app in ("web", "worker", "keeper", "empty")])
    direct.module({"name": RACK, "state": "absent", "purge_data": True})


@pytest.fixture(scope="module")
def created(runner, local_aws, rack):
    """Check mode first (nothing created), then a real create, then a rerun in check mode and for real."""
    args = {"name": "web", "rack": RACK, "tags": {"team": "storefront"}}
    before = answered(local_aws)
    planned = run_app(runner, args, check=True, diff=True)
    planned_calls = answered(local_aws) - before
    assert not planned.get("failed"), planned.get("msg")
    assert app_resources(local_aws, RACK, "web") == [], "check mode created resources"
    result, replanned = run_apps(runner, [args, (args, {"check": True})])
    assert not result.get("failed"), result.get("msg")
    before = answered(local_aws)
    rerun, untagged = run_apps(runner, [args, {"name": "web", "rack": RACK}])
    rerun_calls = answered(local_aws) - before
    return {"planned": planned, "planned_calls": planned_calls, "result": result, "args": args,
            "replanned": replanned, "rerun": rerun, "untagged": untagged, "rerun_calls": rerun_calls}


def test_check_mode_plans_the_app_and_writes_nothing(created):
    planned = created["planned"]
    assert planned["changed"] is True
    assert planned["app"]["status"] == "creating"
    assert [(c["resource"], c["action"]) for c in planned["plan"]] == [
        ("log_group", "create"), ("bucket", "create"), ("repository", "create")]
    assert planned["diff"]["before"] == {"parameters": {}, "tags": {}}
    assert planned["diff"]["after"]["parameters"] == {"log_retention": 365, "immutable_tags": True}
    assert planned["diff"]["after"]["create"] == [
        "log_group /convox/%s/apps/web" % RACK, "bucket " + planned["app"]["bucket"], "repository convox/%s/web" % RACK]
    # Only reads: the server answered exactly the calls the module counted.
    assert created["planned_calls"] == planned["aws_calls"]


def test_create_registers_the_app_with_its_rack(created, direct, local_aws):
    app = created["result"]["app"]
    assert created["result"]["changed"] is True
    assert app["status"] == "running" and app["missing"] == []
    assert app["log_group"] == "/convox/%s/apps/web" % RACK
    assert app["repository"] == "convox/%s/web" % RACK
    assert app["repository_uri"].endswith(".amazonaws.com/convox/%s/web" % RACK)
    assert app["tags"] == {"team": "storefront"}
    (listed, one, none) = run_apps(direct, [{"rack": RACK}, {"rack": RACK, "name": "web"},
                                            {"rack": RACK, "name": "nope"}], module_name="app_info")
    assert listed["apps"] == [app] and one["apps"] == [app] and none["apps"] == []
    assert direct.module({"name": RACK}, module_name="rack_info")["racks"][0]["apps"] == ["web"]


def test_every_resource_is_tagged(created, local_aws):
    app = created["result"]["app"]
    wanted = {"System": "convox", "Rack": RACK, "Type": "app", "App": "web", "team": "storefront"}
    logs = local_aws.client("logs")
    group = logs.describe_log_groups(logGroupNamePrefix=app["log_group"])["logGroups"][0]
    assert logs.list_tags_for_resource(resourceArn=group["arn"].rstrip(":*"))["tags"] == wanted
    assert _tags(local_aws.client("s3").get_bucket_tagging(Bucket=app["bucket"])["TagSet"]) == wanted
    ecr = local_aws.client("ecr")
    repo = ecr.describe_repositories(repositoryNames=[app["repository"]])["repositories"][0]
    assert _tags(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]) == wanted


def test_log_group_takes_the_rack_retention(created, local_aws):
    group = local_aws.client("logs").describe_log_groups(
        logGroupNamePrefix=created["result"]["app"]["log_group"])["logGroups"][0]
    assert group["retentionInDays"] == 365 == created["result"]["app"]["log_retention"]  # the rack's default


def test_bucket_is_hardened_like_the_rack_bucket(created, rack, local_aws):
    bucket = created["result"]["app"]["bucket"]
    s3 = local_aws.client("s3")
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    # SSE-KMS with the rack's key and a Bucket Key (issue 14), as the rack's own bucket.
    key = local_aws.client("kms").describe_key(KeyId="alias/convox/%s" % RACK)["KeyMetadata"]["Arn"]
    assert enc["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
    assert enc["BucketKeyEnabled"] is True
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    (stmt,) = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert stmt["Effect"] == "Deny" and stmt["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30 and rule["Status"] == "Enabled"
    # Into the rack's log bucket, which takes every log delivery of the rack.
    assert rack["log_bucket"] == rack["bucket"] + "-logs"
    assert s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"] == {
        "TargetBucket": rack["log_bucket"], "TargetPrefix": "logs/apps/web/"}


def test_the_log_bucket_accepts_the_access_logs(created, rack, direct, local_aws):
    s3 = local_aws.client("s3")
    statements = json.loads(s3.get_bucket_policy(Bucket=rack["log_bucket"])["Policy"])["Statement"]
    logging = [s for s in statements if s.get("Sid") == "AllowS3AccessLogsOfApps"]
    assert len(logging) == 1
    assert logging[0]["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert logging[0]["Effect"] == "Allow" and logging[0]["Action"] == "s3:PutObject"
    assert logging[0]["Resource"] == "arn:aws:s3:::%s/logs/apps/*" % rack["log_bucket"]
    assert logging[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    # The rack's own bucket takes no delivery: TLS only.
    assert [s["Sid"] for s in json.loads(s3.get_bucket_policy(Bucket=rack["bucket"])["Policy"])["Statement"]] == [
        "DenyInsecureTransport"]
    # The rack's TLS-only statement is still there, and converging the rack keeps the logging one.
    assert any(s["Effect"] == "Deny" for s in statements)
    assert direct.module({"name": RACK})["changed"] is False
    assert run_app(direct, created["args"], check=True)["changed"] is False

    # The local AWS delivers access logs at once (AWS within hours), under the app's prefix.
    def delivered():
        return s3.list_objects_v2(Bucket=rack["log_bucket"], Prefix="logs/apps/web/").get("KeyCount", 0)
    before = delivered()
    restore = lift_policy(local_aws, created["result"]["app"]["bucket"])
    try:
        s3.put_object(Bucket=created["result"]["app"]["bucket"], Key="probe", Body=b"x")
    finally:
        restore()
    assert delivered() > before


def test_repository_scans_on_push(created, local_aws):
    repo = local_aws.client("ecr").describe_repositories(
        repositoryNames=[created["result"]["app"]["repository"]])["repositories"][0]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["encryptionConfiguration"]["encryptionType"] == "AES256"


def test_rerun_changes_nothing_and_writes_nothing(created):
    assert created["replanned"]["changed"] is False and created["replanned"]["plan"] == []
    rerun, untagged = created["rerun"], created["untagged"]
    assert rerun["changed"] is False and rerun["plan"] == []
    assert rerun["app"] == created["result"]["app"]
    # Unset tags leave the app's tags alone.
    assert untagged["changed"] is False and untagged["app"]["tags"] == {"team": "storefront"}
    # Only reads: the server answered exactly the calls the module counted.
    assert created["rerun_calls"] == rerun["aws_calls"] + untagged["aws_calls"]
    # 16 before racks had keys; the rack's key is looked up by its alias, its tags confirmed (2 calls); the log
    # bucket's tags confirmed before its policy is read (1 call: it takes the app's access logs).
    assert rerun["aws_calls"] <= 19


def test_own_retention_then_back_to_the_rack_one(created, direct, local_aws):
    args = created["args"]
    planned, applied, back, again = run_apps(direct, [
        (dict(args, log_retention=30), {"check": True, "diff": True}), dict(args, log_retention=30), args, args])
    assert [(c["resource"], c["action"]) for c in planned["plan"]] == [("log_group", "update")]
    assert planned["diff"]["before"]["parameters"]["log_retention"] == 365
    assert planned["diff"]["after"]["parameters"]["log_retention"] == 30
    assert applied["changed"] is True and applied["app"]["log_retention"] == 30
    assert back["changed"] is True and back["app"]["log_retention"] == 365
    assert again["changed"] is False
    group = local_aws.client("logs").describe_log_groups(logGroupNamePrefix="/convox/%s/apps/web" % RACK)["logGroups"][0]
    assert group["retentionInDays"] == 365


def test_tags_and_immutable_image_tags(created, direct, local_aws):
    args = created["args"]
    changed = {"name": "web", "rack": RACK, "tags": {"cost": "42"}, "purge_tags": False, "immutable_tags": False}
    result, back, again = run_apps(direct, [(changed, {"diff": True}), args, args])
    assert result["changed"] is True
    assert result["app"]["tags"] == {"team": "storefront", "cost": "42"}
    assert result["diff"]["after"]["parameters"]["immutable_tags"] is False
    assert {(c["resource"], c["action"]) for c in result["plan"]} == {
        ("log_group", "update"), ("bucket", "update"), ("repository", "update")}
    assert back["changed"] is True and back["app"]["tags"] == {"team": "storefront"}
    assert back["app"]["immutable_tags"] is True, "unset: immutable, the default"
    assert again["changed"] is False
    repo = local_aws.client("ecr").describe_repositories(repositoryNames=["convox/%s/web" % RACK])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert "cost" not in _tags(local_aws.client("s3").get_bucket_tagging(Bucket=result["app"]["bucket"])["TagSet"])


def test_same_app_name_on_two_racks_never_collides(created, direct, local_aws):
    install_rack(direct, OTHER_RACK)
    try:
        other, gone = run_apps(direct, [{"name": "web", "rack": OTHER_RACK},
                                        {"name": "web", "rack": OTHER_RACK, "state": "absent"}])
        assert not other.get("failed"), other.get("msg")
        mine = created["result"]["app"]
        for key in ("bucket", "log_group", "repository"):
            assert other["app"][key] != mine[key]
        assert gone["changed"] is True
        assert app_resources(local_aws, OTHER_RACK, "web") == []
        assert len(app_resources(local_aws, RACK, "web")) == 3
        assert run_app(direct, created["args"], check=True)["changed"] is False
    finally:
        run_app(direct, {"name": "web", "rack": OTHER_RACK, "state": "absent", "purge_data": True})
        direct.module({"name": OTHER_RACK, "state": "absent", "purge_data": True})
    assert live_tagged(local_aws, OTHER_RACK) == []


def test_delete_an_empty_app_removes_everything(rack, direct, local_aws):
    made, planned = run_apps(direct, [{"name": "empty", "rack": RACK},
                                      ({"name": "empty", "rack": RACK, "state": "absent"}, {"check": True})])
    assert not made.get("failed"), made.get("msg")
    assert planned["changed"] is True and planned["app"]["status"] == "deleting"
    assert len(app_resources(local_aws, RACK, "empty")) == 3
    gone, again = run_apps(direct, [{"name": "empty", "rack": RACK, "state": "absent"}] * 2)
    assert gone["changed"] is True and gone["kept_buckets"] == [] and gone["kept_repositories"] == []
    # The registration goes last.
    assert [(c["resource"], c["action"]) for c in gone["plan"]] == [
        ("repository", "delete"), ("bucket", "delete"), ("log_group", "delete")]
    assert again["changed"] is False and again["plan"] == []
    assert app_resources(local_aws, RACK, "empty") == []


def test_delete_an_app_that_never_existed_is_a_no_op(rack, direct, local_aws):
    before = answered(local_aws)
    result = run_app(direct, {"name": "ghost", "rack": RACK, "state": "absent", "purge_data": True})
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False and result["app"]["status"] == "deleted"
    assert answered(local_aws) - before == result["aws_calls"]


def test_delete_keeps_data_then_purges_every_version(rack, direct, local_aws):
    created = run_app(direct, {"name": "keeper", "rack": RACK})["app"]
    bucket, repository = created["bucket"], created["repository"]
    entries = fill_bucket(local_aws, bucket)
    assert entries > 1000 and count_versions(local_aws, bucket) == entries
    push_image(local_aws, repository)

    gone, again = run_apps(direct, [{"name": "keeper", "rack": RACK, "state": "absent"}] * 2)
    assert gone["changed"] is True
    assert gone["kept_buckets"] == [bucket] and gone["kept_repositories"] == [repository]
    assert [(c["resource"], c["action"]) for c in gone["plan"]] == [("log_group", "delete")]
    assert again["changed"] is False and again["kept_buckets"] == [bucket]
    assert again["kept_repositories"] == [repository]
    assert app_resources(local_aws, RACK, "keeper") == sorted(["bucket " + bucket, "repository " + repository])
    assert count_versions(local_aws, bucket) == entries, "data was deleted without purge_data"

    before, deletes = answered(local_aws), bulk_deletes(local_aws, bucket)
    purged = run_app(direct, {"name": "keeper", "rack": RACK, "state": "absent", "purge_data": True})
    calls = answered(local_aws) - before
    assert purged["changed"] is True and purged["kept_buckets"] == [] and purged["kept_repositories"] == []
    assert purged["aws_calls"] == calls
    # Paging: 1,200 entries took two delete_objects calls of at most 1,000 keys each.
    assert bulk_deletes(local_aws, bucket) - deletes == 2
    assert app_resources(local_aws, RACK, "keeper") == []


def test_rack_uninstall_refused_while_apps_exist_then_forced(direct, local_aws):
    rack = install_rack(direct, "forced")
    app = run_app(direct, {"name": "dual", "rack": "forced"})["app"]
    restore = lift_policy(local_aws, app["bucket"])
    try:
        local_aws.client("s3").put_object(Bucket=app["bucket"], Key="releases/R1/app.tgz", Body=b"release")
    finally:
        restore()

    before = answered(local_aws)
    refused = direct.module({"name": "forced", "state": "absent"})
    assert refused.get("failed") is True and refused["apps"] == ["dual"]
    assert refused["msg"] == "rack forced has apps (dual): delete them first, or set force: true"
    assert answered(local_aws) - before == refused["aws_calls"], "a refused uninstall wrote"
    assert len(app_resources(local_aws, "forced", "dual")) == 3

    forced = direct.module({"name": "forced", "state": "absent", "force": True})
    assert not forced.get("failed"), forced.get("msg")
    assert app["bucket"] in forced["kept_buckets"] and forced["kept_repositories"] == []
    assert app_resources(local_aws, "forced", "dual") == ["bucket " + app["bucket"]]
    # The rack's log bucket holds the app's access logs (and the rack bucket's): data, kept too; the rack's
    # own bucket, which no delivery writes into, held nothing: deleted.
    assert sorted(forced["kept_buckets"]) == sorted([app["bucket"], rack["log_bucket"]])
    assert live_tagged(local_aws, "forced") == []

    def buckets():
        return [b["Name"] for b in local_aws.client("s3").list_buckets()["Buckets"]]
    assert rack["log_bucket"] in buckets() and rack["bucket"] not in buckets()
    # The app's kept data goes with the app module and purge_data, rack or no rack.
    purged = run_app(direct, {"name": "dual", "rack": "forced", "state": "absent", "purge_data": True})
    assert purged["changed"] is True and app_resources(local_aws, "forced", "dual") == []
    direct.module({"name": "forced", "state": "absent", "purge_data": True})
    assert live_tagged(local_aws, "forced") == [] and rack["log_bucket"] not in buckets()


BAD = [
    ({"name": "Web1"}, "name: must be lowercase letters, digits and hyphens"),
    ({"name": "1web"}, "name: must be lowercase letters, digits and hyphens"),
    ({"name": "web-"}, "name: must be lowercase letters, digits and hyphens"),
    ({"name": "my_app"}, "name: must be lowercase letters, digits and hyphens"),
    ({"name": "web.app"}, "name: must be lowercase letters, digits and hyphens"),
    ({"name": "a" * 36}, "name: is 36 characters; on rack 'apprack' (7 characters) an app name has at most 35"),
    ({"name": "a" * 18, "rack": "r" * 25},
     "name: is 18 characters; on rack 'rrrrrrrrrrrrrrrrrrrrrrrrr' (25 characters) an app name has at most 17"),
    ({"name": RACK}, "name: must differ from the name of its rack"),
    ({"rack": "Bad_Rack"}, "rack: must be lowercase letters, digits and hyphens"),
    ({"rack": "r" * 26}, "rack: is 26 characters; at most 25"),
    ({"log_retention": 8}, "log_retention: must be one of CloudWatch Logs' retention periods"),
    ({"tags": {"App": "other"}}, "tags: 'App' is reserved"),
    ({"tags": {"aws:owner": "x"}}, "tags: keys may not start with 'aws:'"),
    ({"state": "absent", "name": "UPPER"}, "name: must be lowercase letters, digits and hyphens"),
    ({"region": "mars-north-1a"}, "region: must be an AWS region name"),
]


def test_bad_input_is_refused_before_any_aws_call(direct, local_aws):
    before = answered(local_aws)
    results = run_apps(direct, [dict({"name": "badapp", "rack": RACK}, **args) for args, message in BAD])
    assert answered(local_aws) == before, "an AWS call was made"
    for (args, message), result in zip(BAD, results):
        assert result.get("failed") is True, args
        assert result["msg"].startswith(message), result["msg"]
        assert result["changed"] is False
    infos = run_apps(direct, [{"rack": "Bad_Rack"}, {"rack": RACK, "name": "Web1"}], module_name="app_info")
    assert [r["msg"].split(":")[0] for r in infos] == ["rack", "name"]
    assert answered(local_aws) == before, "an AWS call was made"


def test_app_of_a_missing_rack_fails_and_creates_nothing(direct, local_aws):
    before = answered(local_aws)
    results = run_apps(direct, [({"name": "orphan", "rack": "norack"}, {"check": True}),
                                {"name": "orphan", "rack": "norack"}])
    assert answered(local_aws) - before == sum(r["aws_calls"] for r in results), "a write was made"
    for result in results:
        assert result.get("failed") is True and result["field"] == "rack"
        assert result["msg"].startswith("rack: no rack named norack in us-east-1"), result["msg"]
    assert app_resources(local_aws, "norack", "orphan") == []
    listed = run_app(direct, {"rack": "norack"}, module_name="app_info")
    assert listed.get("failed") is True and listed["msg"].startswith("rack: no rack named norack")


def test_a_foreign_resource_with_the_app_name_is_never_adopted(rack, direct, local_aws):
    logs = local_aws.client("logs")
    name = "/convox/%s/apps/squat" % RACK
    logs.create_log_group(logGroupName=name, tags={"owner": "someone-else"})
    try:
        taken, refused = run_apps(direct, [{"name": "squat", "rack": RACK},
                                           {"name": "squat", "rack": RACK, "state": "absent"}])
        assert taken.get("failed") is True and taken["resource"] == "log group " + name
        assert "is not tagged as app squat of rack %s" % RACK in taken["msg"]
        assert refused.get("failed") is True and "refusing to adopt or delete it" in refused["msg"]
        assert app_resources(local_aws, RACK, "squat") == ["log-group " + name]
    finally:
        logs.delete_log_group(logGroupName=name)


def test_playbooks_create_list_and_delete(created, runner, local_aws):
    made = runner.playbook("playbooks/create_app.yml", {"rack": RACK, "app": "worker", "app_log_retention": 14})
    assert "app worker of rack %s is running: 3 change(s)" % RACK in made.stdout
    again = runner.playbook("playbooks/create_app.yml", {"rack": RACK, "app": "worker", "app_log_retention": 14})
    assert "app worker of rack %s is running: no change" % RACK in again.stdout
    listed = runner.playbook("playbooks/apps.yml", {"rack": RACK})
    lines = [line.strip().strip('",') for line in listed.stdout.splitlines()]
    header = lines.index("APP     STATUS")
    assert lines[header + 1:header + 3] == ["web     running", "worker  running"]
    gone = runner.playbook("playbooks/delete_app.yml", {"rack": RACK, "app": "worker"})
    assert "app worker of rack %s is deleted: 3 change(s)" % RACK in gone.stdout
    assert app_resources(local_aws, RACK, "worker") == []
    missing = runner.playbook("playbooks/create_app.yml", {"rack": "norack", "app": "worker"}, expect_rc=2)
    assert "rack: no rack named norack" in missing.stdout
