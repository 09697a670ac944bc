"""The apps of a rack (module_utils/_rack/apps.py, app_service.py): names, validation and policy documents (pure),
then the service against botocore's Stubber, which answers as AWS does where the local emulator
cannot (request ids, RepositoryNotEmptyException and BucketNotEmpty races, an https endpoint where
the TLS-only policy stays in place) and checks the exact order of the calls across services."""

from __future__ import annotations

import hashlib
import json

import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack import app_service, apps, naming
from ansible_collections.convox.rack.plugins.module_utils._rack import params as P
from ansible_collections.convox.rack.plugins.module_utils._rack import desired as D
from ansible_collections.convox.rack.plugins.module_utils._rack.context import Identity
from ansible_collections.convox.rack.plugins.module_utils._rack.uninstall import Kept
from ansible_collections.convox.rack.plugins.module_utils._rack.errors import AWSCallError, RackError, ValidationError
from ansible_collections.convox.rack.plugins.module_utils._rack.naming import RackNames
from ansible_collections.convox.rack.plugins.module_utils._rack.params import DEFAULTS
from ansible_collections.convox.rack.plugins.module_utils._rack.record import parameters_to_tags
from ansible_collections.convox.rack.plugins.module_utils._rack.plan import Plan

REGION = "us-east-1"
ACCOUNT = "123456789012"
RACK = "prod"
APP = "web"
NAMES = naming.AppNames(RACK, APP, REGION, ACCOUNT)
RACK_BUCKET = RackNames(RACK, REGION, ACCOUNT).bucket
LOG_BUCKET = RACK_BUCKET + "-logs"
TAGS = {"System": "convox", "Rack": RACK, "Type": "app", "App": APP}
REPO_ARN = "arn:aws:ecr:us-east-1:%s:repository/%s" % (ACCOUNT, NAMES.repository)
REPO_URI = "%s.dkr.ecr.us-east-1.amazonaws.com/%s" % (ACCOUNT, NAMES.repository)
GROUP_ARN = "arn:aws:logs:us-east-1:%s:log-group:%s" % (ACCOUNT, NAMES.log_group)


# -- names -------------------------------------------------------------------------------------------------

def test_names_of_an_app():
    digest = hashlib.sha256(("%s:%s:%s:%s" % (ACCOUNT, REGION, RACK, APP)).encode()).hexdigest()[:12]
    assert NAMES.bucket == "convox-prod-web-" + digest
    assert NAMES.log_group == "/convox/prod/apps/web"
    assert NAMES.repository == "convox/prod/web"
    assert NAMES.access_logs_prefix == "logs/apps/web/"
    assert NAMES.rack_bucket == RACK_BUCKET
    assert naming.AppNames.of_rack(RackNames(RACK, REGION, ACCOUNT), APP).bucket == NAMES.bucket


def test_the_longest_names_fit_a_bucket_name():
    rack, app = "r" * 25, "a" * (naming.MAX_RACK_AND_APP - 25)
    P.validate_app_name(app, rack)
    assert len(naming.AppNames(rack, app, REGION, ACCOUNT).bucket) == 63


@pytest.mark.parametrize("other", [
    naming.AppNames("staging", APP, REGION, ACCOUNT),
    naming.AppNames(RACK, APP, "eu-west-1", ACCOUNT),
    naming.AppNames(RACK, APP, REGION, "210987654321"),
], ids=["other-rack", "other-region", "other-account"])
def test_same_app_name_elsewhere_never_shares_a_bucket(other):
    assert other.bucket != NAMES.bucket


def test_same_app_name_on_two_racks_shares_no_name():
    other = naming.AppNames("staging", APP, REGION, ACCOUNT)
    mine = {NAMES.log_group, NAMES.repository, NAMES.bucket}
    assert {other.log_group, other.repository, other.bucket}.isdisjoint(mine)


# -- validation ------------------------------------------------------------------------------------------------

def params(**kw):
    out = {"name": APP, "rack": RACK, "state": "present", "log_retention": None, "immutable_tags": False,
           "tags": None, "purge_tags": True, "purge_data": False}
    out.update(kw)
    return out


@pytest.mark.parametrize("name", ["web", "a", "api-v2", "w3b", "a--b", "a" * 38])
def test_good_app_names(name):
    P.validate_app_request(params(name=name))


@pytest.mark.parametrize("kw,field,rule", [
    ({"name": "Web"}, "name", "must be lowercase letters, digits and hyphens"),
    ({"name": "2web"}, "name", "must be lowercase letters, digits and hyphens"),
    ({"name": "web-"}, "name", "must be lowercase letters, digits and hyphens"),
    ({"name": "we_b"}, "name", "must be lowercase letters, digits and hyphens"),
    ({"name": ""}, "name", "is required"),
    ({"name": None}, "name", "is required"),
    ({"name": "a" * 39}, "name", "is 39 characters; on rack 'prod' (4 characters) an app name has at most 38"),
    ({"name": RACK}, "name", "must differ from the name of its rack ('prod')"),
    ({"rack": "Prod"}, "rack", "must be lowercase letters, digits and hyphens"),
    ({"rack": None}, "rack", "is required"),
    ({"log_retention": 10}, "log_retention", "must be one of CloudWatch Logs' retention periods"),
    ({"tags": {"Type": "rack"}}, "tags", "'Type' is reserved"),
    ({"tags": {"convox:status": "x"}}, "tags", "'convox:status' is reserved"),
])
def test_bad_input_names_the_field_and_the_rule(kw, field, rule):
    with pytest.raises(ValidationError) as e:
        P.validate_app_request(params(**kw))
    assert e.value.field == field
    assert e.value.msg.startswith("%s: %s" % (field, rule)), e.value.msg


def test_the_rack_is_validated_before_the_app():
    with pytest.raises(ValidationError) as e:
        P.validate_app_request(params(name="Bad", rack="Bad"))
    assert e.value.field == "rack"


# -- documents ---------------------------------------------------------------------------------------------------

def test_access_logs_statement_is_scoped():
    st = D.access_logs_statement("aws", RACK_BUCKET, RACK, ACCOUNT)
    assert st["Principal"] == {"Service": "logging.s3.amazonaws.com"} and st["Effect"] == "Allow"
    assert st["Action"] == "s3:PutObject"
    assert st["Resource"] == "arn:aws:s3:::%s/logs/apps/*" % RACK_BUCKET
    assert st["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                               "ArnLike": {"aws:SourceArn": "arn:aws:s3:::convox-prod-*"}}
    assert D.access_logs_statement("aws-cn", "b", RACK, ACCOUNT)["Resource"].startswith("arn:aws-cn:s3:::b/")


def test_with_statement_keeps_the_other_statements_and_replaces_its_own():
    tls = D.tls_only_bucket_policy("aws", RACK_BUCKET)
    st = D.access_logs_statement("aws", RACK_BUCKET, RACK, ACCOUNT)
    merged = D.with_statement(json.dumps(tls), st)
    assert merged["Statement"] == tls["Statement"] + [st] and merged["Version"] == "2012-10-17"
    stale = dict(st, Resource="arn:aws:s3:::%s/old/*" % RACK_BUCKET)
    assert D.with_statement(D.with_statement(tls, stale), st)["Statement"] == tls["Statement"] + [st]
    assert D.with_statement(None, st) == {"Version": "2012-10-17", "Statement": [st]}


def test_has_statement_compares_what_aws_returns():
    st = D.access_logs_statement("aws", RACK_BUCKET, RACK, ACCOUNT)
    as_returned = json.dumps({"Version": "2012-10-17", "Statement": [
        D.tls_only_bucket_policy("aws", RACK_BUCKET)["Statement"][0], dict(st, Action=["s3:PutObject"])]})
    assert D.has_statement(as_returned, st)
    assert not D.has_statement(json.dumps(D.tls_only_bucket_policy("aws", RACK_BUCKET)), st)
    assert not D.has_statement(D.with_statement(None, dict(st, Resource="arn:aws:s3:::x/*")), st)
    assert not D.has_statement(None, st) and not D.has_statement("not json", st)


def test_app_lifecycle_expires_noncurrent_versions_only():
    (rule,) = D.app_lifecycle_rules()
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": D.NONCURRENT_VERSION_DAYS}
    assert "Expiration" not in rule and rule["Filter"] == {"Prefix": ""}


def test_merge_user_tags():
    assert P.merge_user_tags({"a": "1"}, None, True) == {"a": "1"}
    assert P.merge_user_tags({"a": "1"}, {"b": 2}, True) == {"b": "2"}
    assert P.merge_user_tags({"a": "1"}, {"b": 2}, False) == {"a": "1", "b": "2"}


# -- the service against the Stubber -----------------------------------------------------------------------------

def tag_list(tags):
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def rack_tags(**extra):
    tags = {"System": "convox", "Rack": RACK, "Type": "rack", "convox:status": "running"}
    tags.update(parameters_to_tags(dict(DEFAULTS, instance_count=1)))
    tags.update(extra)
    return tags


def queue_identity(stubbed):
    stubbed.ok("sts", "get_caller_identity", {"Account": ACCOUNT, "Arn": "arn:aws:iam::%s:user/ops" % ACCOUNT,
                                              "UserId": "AIDA"})


def queue_rack(stubbed, tags=None):
    stubbed.ok("s3", "get_bucket_tagging", {"TagSet": tag_list(tags or rack_tags())}, {"Bucket": RACK_BUCKET})


def queue_existing_app(stubbed, tags=None, retention=DEFAULTS["log_retention"], mutability="MUTABLE"):
    tags = dict(TAGS, **(tags or {}))
    stubbed.ok("logs", "describe_log_groups", {"logGroups": [
        {"logGroupName": NAMES.log_group, "arn": GROUP_ARN + ":*", "retentionInDays": retention}]},
        {"logGroupNamePrefix": NAMES.log_group})
    stubbed.ok("logs", "list_tags_for_resource", {"tags": tags}, {"resourceArn": GROUP_ARN})
    stubbed.ok("s3", "get_bucket_tagging", {"TagSet": tag_list(tags)}, {"Bucket": NAMES.bucket})
    stubbed.ok("ecr", "describe_repositories", {"repositories": [
        {"repositoryName": NAMES.repository, "repositoryArn": REPO_ARN, "repositoryUri": REPO_URI,
         "imageTagMutability": mutability, "imageScanningConfiguration": {"scanOnPush": True}}]},
        {"repositoryNames": [NAMES.repository]})
    stubbed.ok("ecr", "list_tags_for_resource", {"tags": tag_list(tags)}, {"resourceArn": REPO_ARN})


def queue_missing_app(stubbed):
    stubbed.ok("logs", "describe_log_groups", {"logGroups": []}, {"logGroupNamePrefix": NAMES.log_group})
    stubbed.error("s3", "get_bucket_tagging", "NoSuchBucket", status=404, params={"Bucket": NAMES.bucket})
    stubbed.error("ecr", "describe_repositories", "RepositoryNotFoundException",
                  params={"repositoryNames": [NAMES.repository]})


def queue_no_rack_key(stubbed):
    """The rack has no key of its own (a rack converged before keys): the app keeps SSE-S3."""
    stubbed.error("kms", "describe_key", "NotFoundException", params={"KeyId": "alias/convox/%s" % RACK})


def rack_policy(with_logs=True, bucket=LOG_BUCKET):
    """The policy of the bucket the apps log into: the rack's log bucket (the rack's own on a rack of 0.1.0)."""
    doc = D.tls_only_bucket_policy("aws", bucket)
    if with_logs:
        doc = D.with_statement(doc, D.access_logs_statement("aws", bucket, RACK, ACCOUNT))
    return json.dumps(doc)


def queue_log_bucket(stubbed, with_logs=True):
    """The rack's log bucket, its tags confirmed, then its policy."""
    stubbed.ok("s3", "get_bucket_tagging", {"TagSet": tag_list({"System": "convox", "Rack": RACK, "Type": "rack"})},
               {"Bucket": LOG_BUCKET})
    stubbed.ok("s3", "get_bucket_policy", {"Policy": rack_policy(with_logs)}, {"Bucket": LOG_BUCKET})


def queue_hardened_bucket(stubbed):
    """A hardened bucket as AWS describes it (shapes differ from what was put: lists, strings)."""
    b = {"Bucket": NAMES.bucket}
    stubbed.ok("s3", "get_public_access_block", {"PublicAccessBlockConfiguration": D.PUBLIC_ACCESS_BLOCK}, b)
    stubbed.ok("s3", "get_bucket_ownership_controls",
               {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}}, b)
    stubbed.ok("s3", "get_bucket_encryption", {"ServerSideEncryptionConfiguration": D.ENCRYPTION}, b)
    stubbed.ok("s3", "get_bucket_lifecycle_configuration", {"Rules": D.app_lifecycle_rules()}, b)
    stubbed.ok("s3", "get_bucket_logging", {"LoggingEnabled": D.logging_config(NAMES)}, b)
    stubbed.ok("s3", "get_bucket_versioning", {"Status": "Enabled"}, b)
    stubbed.ok("s3", "get_bucket_policy", {"Policy": json.dumps(D.tls_only_bucket_policy("aws", NAMES.bucket))}, b)


def unlocked(aws, rack, deadline, operation, check_mode, run, warnings, removed=None):
    return run(None)


def service(stubbed, check_mode=False, **kw):
    """The app service without its run lock: these tests pin the order of the app's own calls (the
    lock's calls are pinned in test_lock.py, and it is exercised for real in the integration tests)."""
    svc = app_service.AppService(stubbed.aws, REGION, params(**kw), check_mode)
    svc.with_run_lock = unlocked
    return svc


def test_converged_app_is_read_and_left_alone(stubbed):
    queue_identity(stubbed)
    queue_rack(stubbed)
    queue_existing_app(stubbed)
    queue_no_rack_key(stubbed)
    queue_log_bucket(stubbed)
    queue_hardened_bucket(stubbed)
    result = service(stubbed).present()
    stubbed.assert_all_used()
    assert result["changed"] is False and result["plan"] == []
    assert result["app"]["status"] == "running" and result["app"]["repository_uri"] == REPO_URI
    assert not [op for op in stubbed.ops() if op.split(":")[1].startswith(("put_", "create_", "tag_", "delete_"))]


def queue_new_bucket_and_repository(stubbed):
    """The app's new bucket (created, then each setting put) and its repository."""
    stubbed.ok("s3", "create_bucket", {}, {"Bucket": NAMES.bucket, "ObjectOwnership": "BucketOwnerEnforced"})
    for op in ("put_bucket_tagging", "put_public_access_block", "put_bucket_encryption", "put_bucket_versioning",
               "put_bucket_lifecycle_configuration", "put_bucket_logging", "put_bucket_policy"):
        stubbed.ok("s3", op, {})
    stubbed.ok("ecr", "create_repository", {"repository": {"repositoryUri": REPO_URI}})


def test_new_app_is_created_registration_first(stubbed):
    queue_identity(stubbed)
    queue_rack(stubbed, rack_tags(**{"convox:log_retention": "30"}))
    queue_missing_app(stubbed)
    queue_no_rack_key(stubbed)
    stubbed.ok("logs", "create_log_group", {}, {"logGroupName": NAMES.log_group, "tags": TAGS})
    stubbed.ok("logs", "put_retention_policy", {}, {"logGroupName": NAMES.log_group, "retentionInDays": 30})
    queue_log_bucket(stubbed, with_logs=False)
    stubbed.ok("s3", "put_bucket_policy", {}, {"Bucket": LOG_BUCKET, "Policy": json.dumps(json.loads(rack_policy()))})
    queue_new_bucket_and_repository(stubbed)
    result = service(stubbed).present()
    stubbed.assert_all_used()
    assert result["app"]["log_retention"] == 30, "the rack's retention"
    assert result["app"]["repository_uri"] == REPO_URI
    writes = [op for op in stubbed.ops() if not op.split(":")[1].startswith(("get_", "describe_", "list_"))]
    assert writes[:2] == ["logs:create_log_group", "logs:put_retention_policy"], "registered first"
    assert writes.index("s3:put_bucket_logging") > writes.index("s3:put_bucket_policy"), \
        "the log bucket accepts the logs before the app bucket sends them"
    logging = [p for op, p in stubbed.log if op == "s3:put_bucket_logging"][0]
    assert logging["BucketLoggingStatus"] == {"LoggingEnabled": {"TargetBucket": LOG_BUCKET,
                                                                 "TargetPrefix": "logs/apps/web/"}}
    repo = [p for op, p in stubbed.log if op == "ecr:create_repository"][0]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True} and repo["imageTagMutability"] == "MUTABLE"


def test_an_app_of_a_rack_without_a_log_bucket_logs_into_the_rack_bucket_until_its_update(stubbed):
    """A rack installed by 0.1.0 has no log bucket until its next update (which moves its apps' logs
    there: test_upgrade.py): its apps keep logging into the rack's bucket, as that release made them."""
    queue_identity(stubbed)
    queue_rack(stubbed)
    queue_missing_app(stubbed)
    queue_no_rack_key(stubbed)
    stubbed.ok("logs", "create_log_group", {}, {"logGroupName": NAMES.log_group, "tags": TAGS})
    stubbed.ok("logs", "put_retention_policy", {}, {"logGroupName": NAMES.log_group, "retentionInDays": DEFAULTS["log_retention"]})
    stubbed.error("s3", "get_bucket_tagging", "NoSuchBucket", status=404, params={"Bucket": LOG_BUCKET})
    stubbed.ok("s3", "get_bucket_policy", {"Policy": rack_policy(bucket=RACK_BUCKET)}, {"Bucket": RACK_BUCKET})
    queue_new_bucket_and_repository(stubbed)
    result = service(stubbed).present()
    stubbed.assert_all_used()
    assert not result.get("failed") and result["changed"] is True
    logging = [p for op, p in stubbed.log if op == "s3:put_bucket_logging"][0]
    assert logging["BucketLoggingStatus"] == {"LoggingEnabled": {"TargetBucket": RACK_BUCKET,
                                                                 "TargetPrefix": "logs/apps/web/"}}
    assert [p["Bucket"] for op, p in stubbed.log if op == "s3:put_bucket_policy"] == [NAMES.bucket], \
        "the rack bucket's policy (0.1.0's) already takes the logs"


def test_check_mode_reads_and_plans_without_writing(stubbed):
    queue_identity(stubbed)
    queue_rack(stubbed)
    queue_missing_app(stubbed)
    queue_no_rack_key(stubbed)
    queue_log_bucket(stubbed)
    result = service(stubbed, check_mode=True, immutable_tags=True).present()
    stubbed.assert_all_used()
    assert result["changed"] is True and result["app"]["status"] == "creating"
    assert [(c["resource"], c["action"]) for c in result["plan"]] == [
        ("log_group", "create"), ("bucket", "create"), ("repository", "create")]
    assert result["diff"]["after"]["parameters"] == {"log_retention": 365, "immutable_tags": True}


@pytest.mark.parametrize("tags,why", [
    (None, "no rack named prod in us-east-1"),
    (rack_tags(**{"convox:status": "uninstalled"}), "no rack named prod in us-east-1"),
    (dict(rack_tags(), Rack="other"), "no rack named prod in us-east-1"),
    (rack_tags(**{"convox:status": "uninstalling", "convox:lease": "9999999999"}), "rack prod in us-east-1 is being uninstalled"),
])
def test_an_app_needs_its_rack(stubbed, tags, why):
    queue_identity(stubbed)
    if tags is None:
        stubbed.error("s3", "get_bucket_tagging", "NoSuchBucket", status=404, params={"Bucket": RACK_BUCKET})
    else:
        queue_rack(stubbed, tags)
    with pytest.raises(RackError) as e:
        service(stubbed).present()
    assert e.value.msg.startswith("rack: " + why) and e.value.details["field"] == "rack"
    stubbed.assert_all_used()


def test_a_rack_whose_lease_expired_takes_apps(stubbed):
    queue_identity(stubbed)
    queue_rack(stubbed, rack_tags(**{"convox:status": "installing", "convox:lease": "1"}))
    assert apps.find_rack(stubbed.aws, NAMES.rack_names)["log_retention"] == 365


def test_foreign_repository_is_not_adopted(stubbed):
    queue_identity(stubbed)
    queue_rack(stubbed)
    stubbed.ok("logs", "describe_log_groups", {"logGroups": []}, {"logGroupNamePrefix": NAMES.log_group})
    stubbed.error("s3", "get_bucket_tagging", "NoSuchBucket", status=404, params={"Bucket": NAMES.bucket})
    stubbed.ok("ecr", "describe_repositories", {"repositories": [
        {"repositoryName": NAMES.repository, "repositoryArn": REPO_ARN, "repositoryUri": REPO_URI}]})
    stubbed.ok("ecr", "list_tags_for_resource", {"tags": [{"Key": "team", "Value": "other"}]})
    with pytest.raises(RackError) as e:
        service(stubbed).present()
    assert e.value.details["resource"] == "ECR repository convox/prod/web"
    assert "refusing to adopt or delete it" in e.value.msg


def test_aws_error_names_resource_code_and_request_id(stubbed):
    queue_identity(stubbed)
    queue_rack(stubbed)
    queue_missing_app(stubbed)
    queue_no_rack_key(stubbed)
    stubbed.ok("logs", "create_log_group", {})
    stubbed.error("logs", "put_retention_policy", "AccessDeniedException", message="not allowed",
                  request_id="req-logs-42")
    with pytest.raises(AWSCallError) as e:
        service(stubbed).present()
    assert e.value.msg == ("log group /convox/prod/apps/web: put_retention_policy failed with AccessDeniedException:"
                           " not allowed (request id req-logs-42)")
    assert e.value.details == {"resource": "log group /convox/prod/apps/web", "operation": "put_retention_policy",
                               "error_code": "AccessDeniedException", "request_id": "req-logs-42"}


def test_drifted_app_is_converged_setting_by_setting(stubbed):
    queue_identity(stubbed)
    queue_rack(stubbed)
    queue_existing_app(stubbed, tags={"team": "a"}, retention=14, mutability="IMMUTABLE")
    queue_no_rack_key(stubbed)
    queue_log_bucket(stubbed)
    b = {"Bucket": NAMES.bucket}
    stubbed.error("s3", "get_public_access_block", "NoSuchPublicAccessBlockConfiguration", status=404, params=b)
    stubbed.ok("s3", "get_bucket_ownership_controls",
               {"OwnershipControls": {"Rules": [{"ObjectOwnership": "ObjectWriter"}]}}, b)
    stubbed.ok("s3", "get_bucket_encryption", {"ServerSideEncryptionConfiguration": D.ENCRYPTION}, b)
    stubbed.error("s3", "get_bucket_lifecycle_configuration", "NoSuchLifecycleConfiguration", status=404, params=b)
    stubbed.ok("s3", "get_bucket_logging", {}, b)
    stubbed.ok("s3", "get_bucket_versioning", {"Status": "Suspended"}, b)
    stubbed.error("s3", "get_bucket_policy", "NoSuchBucketPolicy", status=404, params=b)
    result = service(stubbed, check_mode=True, tags={"team": "b"}).present()
    stubbed.assert_all_used()
    changes = [(c["resource"], c["action"], sorted(c.get("changes", {}))) for c in result["plan"]]
    assert changes == [
        ("log_group", "update", ["retention_days"]), ("log_group", "update", ["tags"]),
        ("bucket", "update", ["tags"]),
        ("bucket", "update", ["public_access_block"]), ("bucket", "update", ["ownership"]),
        ("bucket", "update", ["versioning"]), ("bucket", "update", ["lifecycle"]), ("bucket", "update", ["logging"]),
        ("bucket", "update", ["policy"]),
        ("repository", "update", ["image_tag_mutability"]), ("repository", "update", ["tags"])]
    assert result["diff"]["before"] == {"parameters": {"log_retention": 14, "immutable_tags": True},
                                        "tags": {"team": "a"}}
    assert result["diff"]["after"]["tags"] == {"team": "b"}


# -- deleting -------------------------------------------------------------------------------------------------------

def _versions(prefix, count):
    return [{"Key": "%s/%04d" % (prefix, i), "VersionId": "v%s%04d" % (prefix, i)} for i in range(count)]


def queue_holding_data(stubbed, images=True, objects=True):
    stubbed.ok("ecr", "list_images", {"imageIds": [{"imageDigest": "sha256:" + "a" * 64}]} if images else {},
               {"repositoryName": NAMES.repository, "maxResults": 1})
    stubbed.ok("s3", "list_object_versions", {"Versions": _versions("a", 1) if objects else []},
               {"Bucket": NAMES.bucket, "MaxKeys": 1})


class AppTeardown:
    """apps.delete on an app read by apps.read, as the app service runs it; run() says what was kept."""

    def __init__(self, aws, state, plan, purge_data):
        self.run_ctx = apps.app_run(aws, REGION, IDENTITY, NAMES.rack_names, APP, plan)
        self.run_ctx.state = state
        self.purge_data = purge_data

    def run(self):
        kept = Kept()
        apps.delete(self.run_ctx, self.purge_data, kept)
        return {"buckets": kept.buckets, "repositories": kept.repositories}


class _Identity(Identity):
    def __init__(self):  # pylint: disable=super-init-not-called
        self.account, self.partition = ACCOUNT, "aws"


IDENTITY = _Identity()


def teardown(stubbed, purge_data, check_mode=False):
    queue_existing_app(stubbed)
    plan = Plan(check_mode)
    state = apps.read(stubbed.aws, NAMES)
    return AppTeardown(stubbed.aws, state, plan, purge_data), plan


def test_delete_keeps_data_without_purge_and_unregisters_last(stubbed):
    td, plan = teardown(stubbed, purge_data=False)
    queue_holding_data(stubbed)
    stubbed.ok("logs", "delete_log_group", {}, {"logGroupName": NAMES.log_group})
    assert td.run() == {"buckets": [NAMES.bucket], "repositories": [NAMES.repository]}
    stubbed.assert_all_used()
    assert [(c["resource"], c["action"]) for c in plan.changes] == [("log_group", "delete")]


def test_purge_empties_every_page_then_deletes_over_https(stubbed):
    """Over https the bucket's TLS-only policy stays in place while it is emptied."""
    td, plan = teardown(stubbed, purge_data=True)
    queue_holding_data(stubbed)
    stubbed.ok("ecr", "delete_repository", {}, {"repositoryName": NAMES.repository, "force": True})
    pages = [_versions("a", 1000), _versions("b", 500), []]
    for page in pages:
        stubbed.ok("s3", "list_object_versions", {"Versions": page}, {"Bucket": NAMES.bucket, "MaxKeys": 1000})
        if page:
            stubbed.ok("s3", "delete_objects", {}, {"Bucket": NAMES.bucket, "Delete": {
                "Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page], "Quiet": True}})
    stubbed.ok("s3", "delete_bucket", {}, {"Bucket": NAMES.bucket})
    stubbed.ok("logs", "delete_log_group", {}, {"logGroupName": NAMES.log_group})
    assert td.run() == {"buckets": [], "repositories": []}
    stubbed.assert_all_used()
    writes = [op for op in stubbed.ops() if op.split(":")[1].startswith("delete_")]
    assert writes == ["ecr:delete_repository", "s3:delete_objects", "s3:delete_objects", "s3:delete_bucket",
                      "logs:delete_log_group"]
    assert [c["resource"] for c in plan.changes] == ["repository", "bucket", "log_group"]


def test_purge_over_http_lifts_the_tls_only_policy_first(stubbed_http_s3):
    stubbed = stubbed_http_s3
    td = teardown(stubbed, purge_data=True)[0]
    queue_holding_data(stubbed, images=False)
    stubbed.ok("ecr", "delete_repository", {}, {"repositoryName": NAMES.repository, "force": False})
    policy = json.dumps(D.tls_only_bucket_policy("aws", NAMES.bucket))
    stubbed.ok("s3", "get_bucket_policy", {"Policy": policy}, {"Bucket": NAMES.bucket})
    stubbed.ok("s3", "delete_bucket_policy", {}, {"Bucket": NAMES.bucket})
    stubbed.ok("s3", "list_object_versions", {"Versions": _versions("a", 3)}, {"Bucket": NAMES.bucket, "MaxKeys": 1000})
    stubbed.error("s3", "delete_objects", "AccessDenied", request_id="req-s3-9")
    stubbed.ok("s3", "put_bucket_policy", {}, {"Bucket": NAMES.bucket, "Policy": policy})
    with pytest.raises(AWSCallError) as e:
        td.run()
    assert e.value.details["request_id"] == "req-s3-9"
    stubbed.assert_all_used()
    assert stubbed.ops()[-1] == "s3:put_bucket_policy", "the policy is put back when the emptying fails"
    assert "logs:delete_log_group" not in stubbed.ops(), "a failed delete leaves the app registered"


@pytest.mark.parametrize("kind,code", [
    ("ecr", "RepositoryNotEmptyException"),
    ("s3", "BucketNotEmpty"),
], ids=["repository", "bucket"])
def test_data_written_since_the_read_keeps_the_resource(stubbed, kind, code):
    td = teardown(stubbed, purge_data=False)[0]
    queue_holding_data(stubbed, images=False, objects=False)
    if kind == "ecr":
        stubbed.error("ecr", "delete_repository", code)
        stubbed.ok("s3", "delete_bucket", {})
    else:
        stubbed.ok("ecr", "delete_repository", {})
        stubbed.error("s3", "delete_bucket", code)
    stubbed.ok("logs", "delete_log_group", {})
    kept = td.run()
    stubbed.assert_all_used()
    assert kept == {"buckets": [NAMES.bucket] if kind == "s3" else [],
                    "repositories": [NAMES.repository] if kind == "ecr" else []}


def test_deleting_a_missing_app_changes_nothing(stubbed):
    queue_identity(stubbed)
    queue_missing_app(stubbed)
    result = service(stubbed, state="absent", purge_data=True).absent()
    stubbed.assert_all_used()
    assert result["changed"] is False and result["plan"] == [] and result["app"]["status"] == "deleted"
    assert result["kept_buckets"] == [] and result["kept_repositories"] == []


def test_check_mode_delete_reads_only(stubbed):
    queue_identity(stubbed)
    queue_existing_app(stubbed)
    queue_holding_data(stubbed, images=False)
    result = service(stubbed, check_mode=True, state="absent", purge_data=True).absent()
    stubbed.assert_all_used()
    assert result["changed"] is True and result["app"]["status"] == "deleting"
    assert result["diff"]["after"]["delete"] == ["repository " + NAMES.repository, "bucket " + NAMES.bucket,
                                                 "log_group " + NAMES.log_group]
    assert not [op for op in stubbed.ops() if op.split(":")[1].startswith("delete_")]


# -- listing ----------------------------------------------------------------------------------------------------------

def test_app_info_lists_registered_apps_sorted(stubbed):
    queue_identity(stubbed)
    queue_rack(stubbed)
    prefix = "/convox/prod/apps/"
    groups = [{"logGroupName": prefix + n, "arn": "arn:aws:logs:us-east-1:%s:log-group:%s%s:*" % (ACCOUNT, prefix, n),
               "retentionInDays": 7} for n in ("worker", "web")]
    stubbed.ok("logs", "describe_log_groups", {"logGroups": groups}, {"logGroupNamePrefix": prefix})
    for n in ("web", "worker"):
        names = naming.AppNames(RACK, n, REGION, ACCOUNT)
        tags = dict(TAGS, App=n)
        stubbed.ok("logs", "list_tags_for_resource", {"tags": tags})
        stubbed.ok("s3", "get_bucket_tagging", {"TagSet": tag_list(tags)}, {"Bucket": names.bucket})
        stubbed.error("ecr", "describe_repositories", "RepositoryNotFoundException")
    listed = app_service.read_apps(stubbed.aws, REGION, RACK)
    stubbed.assert_all_used()
    assert [(a["name"], a["status"], a["missing"]) for a in listed] == [
        ("web", "failed", ["repository"]), ("worker", "failed", ["repository"])]
