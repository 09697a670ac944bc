# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The apps of a rack: what the app and app_info modules hand over to.

An app of rack R in a region is three resources, named after both and tagged
System=convox, Rack=R, Type=app, App=<app> (plus the user's tags):

- its CloudWatch log group /convox/R/apps/<app>, which is also its registration: the rack
  (observe.read_logs), rack_info and app_info list an app when its log group exists. It is
  created first and deleted last, so a half-made app is always listed (and can be deleted or
  finished) and a half-deleted one too;
- an S3 bucket for release artifacts and templates, hardened like the rack's (public access
  blocked, owner-enforced ownership, encryption, versioning, TLS-only policy, expiry of
  noncurrent versions) and logging its accesses into the rack's bucket under logs/apps/<app>/;
- an ECR repository convox/R/<app> for its images (scan on push, immutable tags optional).

present(): validate -> find the rack -> read the app -> plan and apply each difference.
absent(): validate -> read the app -> delete repository, bucket, then log group; a bucket or
repository holding data is kept (and named) unless purge_data, which empties it first.
"""

from __future__ import annotations

import hashlib
import json
import re

from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

from . import desired as D
from .aws import Deadline
from .errors import AWSCallError, RackError, ValidationError
from .lock import with_run_lock
from .naming import RackNames, system_tags
from .observe import Identity, is_ours, read_bucket_tags_tolerant, tag_dict, user_tags
from .params import (DEFAULTS, LOG_RETENTION_DAYS, STATE_TAG_PREFIX, lease_active, merge_user_tags,
                     parameters_from_tags, validate_name, validate_tags)
from .plan import Plan
from .runner import fail, make_aws, region_of
from .spec import DEFAULT_WAIT_TIMEOUT
from .teardown import empty_bucket_over_any_endpoint
from .params import MAX_APP_USER_TAGS, shown

# Convox's rule for app names (lowercase letters, digits and hyphens, starting with a letter), and
# an ending that ECR repository names accept (a letter or a digit).
APP_NAME_RE = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?\Z")
BUCKET_NAME_MAX = 63
DIGEST_LEN = 12
# "convox-" + rack + "-" + app + "-" + digest must fit an S3 bucket name.
MAX_RACK_AND_APP = BUCKET_NAME_MAX - len("convox---") - DIGEST_LEN

# Where S3 delivers an app bucket's access logs in its rack's bucket: logs/apps/<app>/. The rack
# bucket's lifecycle expires logs/ after the rack's log retention.
ACCESS_LOGS_PREFIX = D.LOGS_PREFIX + "apps/"
ACCESS_LOGS_SID = "AllowS3AccessLogsOfApps"
LOGGING_SERVICE = "logging.s3.amazonaws.com"


# -- names ---------------------------------------------------------------------------------------
class AppNames:
    """The names of one app's resources, for its rack in one account and region."""

    def __init__(self, rack, app, region, account_id=None):
        self.rack = rack
        self.app = app
        self.region = region
        self.account_id = account_id
        self.rack_names = RackNames(rack, region, account_id)

    @classmethod
    def of_rack(cls, rack_names, app):
        return cls(rack_names.rack, app, rack_names.region, rack_names.account_id)

    @property
    def bucket(self):
        # Globally unique and stable: the app of this rack, account and region.
        seed = "%s:%s:%s:%s" % (self.account_id, self.region, self.rack, self.app)
        return "convox-%s-%s-%s" % (self.rack, self.app, hashlib.sha256(seed.encode()).hexdigest()[:DIGEST_LEN])

    @property
    def log_group(self):
        return self.rack_names.app_log_group_prefix() + self.app

    @property
    def repository(self):
        return "convox/%s/%s" % (self.rack, self.app)

    @property
    def access_logs_prefix(self):
        return "%s%s/" % (ACCESS_LOGS_PREFIX, self.app)

    @property
    def rack_bucket(self):
        return self.rack_names.bucket


def app_tags(rack, app, user=None):
    tags = system_tags(rack, "app", app)
    tags.update(user or {})
    return tags


# -- validation (pure: before any AWS call) ----------------------------------------------------------
def validate_app_name(name, rack, field="name"):
    if not isinstance(name, str) or not name:
        raise ValidationError(field, "is required")
    if not APP_NAME_RE.match(name):
        raise ValidationError(
            field,
            "must be lowercase letters, digits and hyphens, start with a letter and not end with a hyphen"
            " (got %s)" % shown(name))
    if len(rack) + len(name) > MAX_RACK_AND_APP:
        raise ValidationError(
            field,
            "is %d characters; on rack %r (%d characters) an app name has at most %d, so that the app's bucket"
            " name convox-<rack>-<app>-<%d-character digest> fits S3's %d characters"
            % (len(name), rack, len(rack), MAX_RACK_AND_APP - len(rack), DIGEST_LEN, BUCKET_NAME_MAX))
    if name == rack:
        raise ValidationError(field, "must differ from the name of its rack (%r): Convox refuses an app named like its rack"
                              % rack)


def validate_app_request(params):
    """Validate what the user gave; raise ValidationError naming the option and the rule."""
    validate_name(params.get("rack"), field="rack")
    validate_app_name(params.get("name"), params["rack"])
    retention = params.get("log_retention")
    if retention is not None and retention not in LOG_RETENTION_DAYS:
        raise ValidationError(
            "log_retention", "must be one of CloudWatch Logs' retention periods %s (got %s)"
            % (", ".join(str(d) for d in LOG_RETENTION_DAYS), shown(retention)))
    validate_tags(params.get("tags"), limit=MAX_APP_USER_TAGS)


# -- desired documents (pure) ----------------------------------------------------------------------------
def access_logs_statement(partition, rack_bucket, rack, account):
    """The rack bucket's policy statement that lets S3 deliver its apps' access logs.

    With owner-enforced object ownership, ACL grants to the log delivery group do not work: a
    bucket policy must allow the logging service to put objects, here only under logs/apps/,
    only for source buckets of this account named as this rack's apps' buckets are."""
    return {
        "Sid": ACCESS_LOGS_SID,
        "Effect": "Allow",
        "Principal": {"Service": LOGGING_SERVICE},
        "Action": "s3:PutObject",
        "Resource": "arn:%s:s3:::%s/%s*" % (partition, rack_bucket, ACCESS_LOGS_PREFIX),
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": "arn:%s:s3:::convox-%s-*" % (partition, rack)},
        },
    }


def with_statement(policy, statement):
    """The policy document (a JSON string, a dict or None) with `statement` in place of any
    statement of the same Sid, every other statement kept."""
    if isinstance(policy, str):
        policy = json.loads(policy)
    doc = dict(policy or {"Version": "2012-10-17"})
    others = [s for s in doc.get("Statement", []) if s.get("Sid") != statement["Sid"]]
    doc["Statement"] = others + [statement]
    return doc


def has_statement(policy, statement):
    if not policy:
        return False
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return False
    return any(s.get("Sid") == statement["Sid"] and D.policy_equal(s, statement) for s in policy.get("Statement", []))


def app_lifecycle_rules():
    """Noncurrent versions of release artifacts expire; current ones stay."""
    return [
        {
            "ID": "expire-noncurrent-versions",
            "Filter": {"Prefix": ""},
            "Status": "Enabled",
            "NoncurrentVersionExpiration": {"NoncurrentDays": D.NONCURRENT_VERSION_DAYS},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        },
    ]


def logging_config(names):
    return {"TargetBucket": names.rack_bucket, "TargetPrefix": names.access_logs_prefix}


ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]}


def _tl(tags, key="Key", value="Value"):
    return [{key: k, value: v} for k, v in sorted(tags.items())]


# -- reading -----------------------------------------------------------------------------------------------
class AppState:
    """What exists of one app. Attributes are None for what is missing."""

    def __init__(self, names):
        self.names = names
        self.log_group = None        # describe_log_groups item, plus "tag_arn"
        self.log_group_tags = {}
        self.bucket = None           # {"name", "tags"}
        self.repository = None       # describe_repositories item
        self.repository_tags = {}

    @property
    def exists(self):
        return any([self.log_group, self.bucket, self.repository])

    @property
    def registered(self):
        return self.log_group is not None

    def user_tags(self):
        """The user's tags, from the registration first."""
        for present, tags in ((self.log_group, self.log_group_tags), (self.bucket, (self.bucket or {}).get("tags")),
                              (self.repository, self.repository_tags)):
            if present is not None and tags:
                return user_tags(tags)
        return {}

    def missing(self):
        parts = (("log_group", self.log_group), ("bucket", self.bucket), ("repository", self.repository))
        return [name for name, found in parts if found is None]


def _confirm(tags, names, what):
    wanted = system_tags(names.rack, "app", names.app)
    if any(tags.get(k) != v for k, v in wanted.items()):
        raise RackError(
            "%s exists but is not tagged as app %s of rack %s (System=convox, Rack=%s, Type=app, App=%s);"
            " refusing to adopt or delete it" % (what, names.app, names.rack, names.rack, names.app), resource=what)


def log_group_arn(group):
    arn = group["arn"]
    return arn[:-2] if arn.endswith(":*") else arn


def read_log_group(aws, state, listed=None):
    names = state.names
    what = "log group %s" % names.log_group
    if listed is None:
        listed = aws.paginate("logs", "describe_log_groups", what,
                              logGroupNamePrefix=names.log_group).get("logGroups", [])
    exact = [g for g in listed if g["logGroupName"] == names.log_group]
    if not exact:
        return
    group = dict(exact[0], tag_arn=log_group_arn(exact[0]))
    tags = (aws.call("logs", "list_tags_for_resource", what, resourceArn=group["tag_arn"]) or {}).get("tags", {})
    _confirm(tags, names, what)
    state.log_group, state.log_group_tags = group, tags


def read_bucket(aws, state):
    names = state.names
    bucket = read_bucket_tags_tolerant(aws, names)
    if bucket is not None and bucket["tags"]:
        # A bucket of the derived name with no tags at all is one of ours whose tagging failed.
        _confirm(bucket["tags"], names, "bucket %s" % names.bucket)
    state.bucket = bucket


def read_repository(aws, state):
    names = state.names
    what = "ECR repository %s" % names.repository
    found = aws.call("ecr", "describe_repositories", what, ignore=("RepositoryNotFoundException",),
                     repositoryNames=[names.repository])
    repos = (found or {}).get("repositories", [])
    if not repos:
        return
    repo = repos[0]
    tags = tag_dict(aws.call("ecr", "list_tags_for_resource", what, resourceArn=repo["repositoryArn"]).get("tags"))
    _confirm(tags, names, what)
    state.repository, state.repository_tags = repo, tags


def read_app(aws, names, listed_log_groups=None):
    """Everything that exists of the app, registered or not (a kept bucket or repository counts)."""
    state = AppState(names)
    read_log_group(aws, state, listed_log_groups)
    read_bucket(aws, state)
    read_repository(aws, state)
    return state


def read_bucket_config(aws, name):
    """What we manage of a bucket's configuration, normalised for comparison."""
    def s3(op, ignore=()):
        return aws.call("s3", op, "bucket %s" % name, ignore=ignore, Bucket=name) or {}
    pab = s3("get_public_access_block", ignore=("NoSuchPublicAccessBlockConfiguration",))
    own = s3("get_bucket_ownership_controls", ignore=("OwnershipControlsNotFoundError",))
    enc = s3("get_bucket_encryption", ignore=("ServerSideEncryptionConfigurationNotFoundError",))
    lifecycle = s3("get_bucket_lifecycle_configuration", ignore=("NoSuchLifecycleConfiguration",))
    logging = s3("get_bucket_logging").get("LoggingEnabled") or {}
    enc_rules = (enc.get("ServerSideEncryptionConfiguration") or {}).get("Rules") or [{}]
    return {
        "public_access_block": pab.get("PublicAccessBlockConfiguration"),
        "ownership": ((own.get("OwnershipControls") or {}).get("Rules") or [{}])[0].get("ObjectOwnership"),
        "encryption": (enc_rules[0].get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm"),
        "versioning": s3("get_bucket_versioning").get("Status"),
        "lifecycle": lifecycle.get("Rules"),
        "policy": s3("get_bucket_policy", ignore=("NoSuchBucketPolicy",)).get("Policy"),
        "logging": {k: logging.get(k) for k in ("TargetBucket", "TargetPrefix")} if logging else None,
    }


def find_rack(aws, rack_names, to_change=True):
    """The rack's parameters, as its bucket's tags record them; RackError naming `rack` when there
    is no such rack, or (to_change) when a run is uninstalling it."""
    rack, region = rack_names.rack, rack_names.region
    tagging = aws.call("s3", "get_bucket_tagging", "bucket %s" % rack_names.bucket,
                       ignore=("NoSuchBucket", "NoSuchTagSet"), Bucket=rack_names.bucket)
    tags = tag_dict((tagging or {}).get("TagSet"))
    status = tags.get(STATE_TAG_PREFIX + "status")
    if tagging is None or not is_ours(tags, rack) or status == "uninstalled":
        raise RackError("rack: no rack named %s in %s (install it first: playbooks/install_rack.yml -e rack=%s)"
                        % (rack, region, rack), field="rack")
    if to_change and status == "uninstalling" and lease_active(tags):
        raise RackError("rack: rack %s in %s is being uninstalled" % (rack, region), field="rack")
    return parameters_from_tags(tags)


# -- the app dict ----------------------------------------------------------------------------------------
def app_status(state):
    """Convox's words: running when every part is there, failed (naming what is missing) otherwise."""
    missing = state.missing()
    return ("failed" if missing else "running"), missing


def app_dict(state, region, status=None):
    """The `app` return value shared by app and app_info."""
    derived, missing = app_status(state)
    repo = state.repository or {}
    return {
        "name": state.names.app,
        "rack": state.names.rack,
        "region": region,
        "status": status or derived,
        "log_group": (state.log_group or {}).get("logGroupName"),
        "log_retention": (state.log_group or {}).get("retentionInDays"),
        "bucket": (state.bucket or {}).get("name"),
        "repository": repo.get("repositoryName"),
        "repository_uri": repo.get("repositoryUri"),
        "immutable_tags": repo.get("imageTagMutability") == "IMMUTABLE" if repo else None,
        "tags": state.user_tags(),
        "missing": missing if status is None else [],
    }


# -- present -------------------------------------------------------------------------------------------------
class AppBuilder:
    """Converge one app's resources; every difference goes through the plan."""

    def __init__(self, aws, identity, state, wanted, plan):
        self.aws = aws
        self.identity = identity
        self.state = state
        self.names = state.names
        self.wanted = wanted
        self.tags = app_tags(self.names.rack, self.names.app, wanted["tags"])
        self.plan = plan
        self.repository_uri = None

    def converge(self):
        self.ensure_log_group()
        self.ensure_rack_bucket_policy()
        self.ensure_bucket()
        self.ensure_repository()

    def _sync_tags(self, kind, name, current, set_fn, unset_fn):
        """Converge one resource's tags (aws:* tags are left alone). unset_fn None: set_fn replaces the set."""
        to_set, to_unset = compare_aws_tags(current or {}, self.tags, purge_tags=True)
        if not to_set and not to_unset:
            return

        def apply():
            if unset_fn is None:
                set_fn(self.tags)
                return
            if to_unset:
                unset_fn(to_unset)
            if to_set:
                set_fn(to_set)
        self.plan.change(kind, name, "update", apply, detail={"tags": {"set": to_set, "unset": to_unset}})

    # -- the log group: the app's registration ---------------------------------------------------------------
    def ensure_log_group(self):
        name = self.names.log_group
        group = self.state.log_group
        days = self.wanted["log_retention"]

        def logs(op, **kw):
            return self.aws.call("logs", op, "log group %s" % name, **kw)
        if group is None:
            def create():
                logs("create_log_group", logGroupName=name, tags=self.tags)
                logs("put_retention_policy", logGroupName=name, retentionInDays=days)
            self.plan.change("log_group", name, "create", create)
            return
        if group.get("retentionInDays") != days:
            self.plan.change("log_group", name, "update", lambda: logs(
                "put_retention_policy", logGroupName=name, retentionInDays=days),
                detail={"retention_days": {"before": group.get("retentionInDays"), "after": days}})
        arn = group["tag_arn"]
        self._sync_tags("log_group", name, self.state.log_group_tags,
                        lambda s: logs("tag_resource", resourceArn=arn, tags=s),
                        lambda u: logs("untag_resource", resourceArn=arn, tagKeys=u))

    # -- the rack's bucket accepts the access logs ------------------------------------------------------------
    def ensure_rack_bucket_policy(self):
        """The rack's bucket policy must let S3 deliver access logs under logs/apps/. The rack module
        writes the same statement; this adds it (keeping every other statement) to a rack converged
        before it did, so that the app's logs are delivered either way."""
        name = self.names.rack_bucket
        statement = access_logs_statement(self.identity.partition, name, self.names.rack, self.identity.account)
        current = (self.aws.call("s3", "get_bucket_policy", "bucket %s" % name, ignore=("NoSuchBucketPolicy",),
                                 Bucket=name) or {}).get("Policy")
        if has_statement(current, statement):
            return
        policy = with_statement(current, statement)
        self.plan.change("rack_bucket", name, "update", lambda: self.aws.call(
            "s3", "put_bucket_policy", "bucket %s" % name, Bucket=name, Policy=json.dumps(policy)),
            detail={"policy": "allow S3 access logs under %s" % ACCESS_LOGS_PREFIX})

    # -- the bucket ---------------------------------------------------------------------------------------------
    def ensure_bucket(self):
        name = self.names.bucket
        bucket = self.state.bucket
        if bucket is None:
            self.plan.change("bucket", name, "create", self._create_bucket)
            return
        # S3 replaces a bucket's whole tag set: one write sets and unsets.
        self._sync_tags("bucket", name, bucket["tags"], self._put_bucket_tags, None)
        current = read_bucket_config(self.aws, name)
        for setting, ok, apply, detail in self._bucket_settings(name, current, exists=True):
            if not ok:
                self.plan.change("bucket", name, "update", apply, detail={setting: detail})

    def _create_bucket(self):
        """Create, tag and harden the bucket (one change in the plan)."""
        name = self.names.bucket
        kwargs = {"Bucket": name, "ObjectOwnership": "BucketOwnerEnforced"}
        if self.names.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.names.region}
        self.aws.call("s3", "create_bucket", "bucket %s" % name, **kwargs)
        self._put_bucket_tags()
        for _setting, ok, apply, _detail in self._bucket_settings(name, {}, exists=False):
            if not ok:
                apply()

    def _put_bucket_tags(self, tags=None):
        self.aws.call("s3", "put_bucket_tagging", "bucket %s" % self.names.bucket, Bucket=self.names.bucket,
                      Tagging={"TagSet": _tl(tags or self.tags)})

    def _bucket_settings(self, name, current, exists):
        """(setting, in place?, apply, detail) for each hardening setting, in the order to apply."""
        def s3(op, **kw):
            return lambda: self.aws.call("s3", op, "bucket %s" % name, Bucket=name, **kw)
        rules = app_lifecycle_rules()
        policy = D.tls_only_bucket_policy(self.identity.partition, name)
        target = logging_config(self.names)
        return [
            ("public_access_block", current.get("public_access_block") == D.PUBLIC_ACCESS_BLOCK,
             s3("put_public_access_block", PublicAccessBlockConfiguration=D.PUBLIC_ACCESS_BLOCK), D.PUBLIC_ACCESS_BLOCK),
            ("ownership", not exists or current.get("ownership") == "BucketOwnerEnforced",
             s3("put_bucket_ownership_controls", OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}),
             "BucketOwnerEnforced"),
            ("encryption", current.get("encryption") in ("AES256", "aws:kms"),
             s3("put_bucket_encryption", ServerSideEncryptionConfiguration=ENCRYPTION), "AES256"),
            ("versioning", current.get("versioning") == "Enabled",
             s3("put_bucket_versioning", VersioningConfiguration={"Status": "Enabled"}), "Enabled"),
            ("lifecycle", D.lifecycle_key(current.get("lifecycle")) == D.lifecycle_key(rules),
             s3("put_bucket_lifecycle_configuration", LifecycleConfiguration={"Rules": rules}),
             "noncurrent versions expire after %d days" % D.NONCURRENT_VERSION_DAYS),
            ("logging", current.get("logging") == target,
             s3("put_bucket_logging", BucketLoggingStatus={"LoggingEnabled": target}),
             "s3://%s/%s" % (target["TargetBucket"], target["TargetPrefix"])),
            ("policy", D.policy_equal(current.get("policy"), policy), s3("put_bucket_policy", Policy=json.dumps(policy)),
             "TLS only"),
        ]

    # -- the image repository --------------------------------------------------------------------------------------
    def ensure_repository(self):
        name = self.names.repository
        repo = self.state.repository
        mutability = "IMMUTABLE" if self.wanted["immutable_tags"] else "MUTABLE"

        def ecr(op, **kw):
            return self.aws.call("ecr", op, "ECR repository %s" % name, **kw)
        if repo is None:
            created = self.plan.change("repository", name, "create", lambda: ecr(
                "create_repository", repositoryName=name, tags=_tl(self.tags), imageTagMutability=mutability,
                imageScanningConfiguration={"scanOnPush": True}, encryptionConfiguration={"encryptionType": "AES256"}))
            self.repository_uri = (created or {}).get("repository", {}).get("repositoryUri")
            return
        self.repository_uri = repo.get("repositoryUri")
        if not (repo.get("imageScanningConfiguration") or {}).get("scanOnPush"):
            self.plan.change("repository", name, "update", lambda: ecr(
                "put_image_scanning_configuration", repositoryName=name,
                imageScanningConfiguration={"scanOnPush": True}), detail={"scan_on_push": True})
        if repo.get("imageTagMutability", "MUTABLE") != mutability:
            self.plan.change("repository", name, "update", lambda: ecr(
                "put_image_tag_mutability", repositoryName=name, imageTagMutability=mutability),
                detail={"image_tag_mutability": {"before": repo.get("imageTagMutability"), "after": mutability}})
        arn = repo["repositoryArn"]
        self._sync_tags("repository", name, self.state.repository_tags,
                        lambda s: ecr("tag_resource", resourceArn=arn, tags=_tl(s)),
                        lambda u: ecr("untag_resource", resourceArn=arn, tagKeys=u))


# -- absent --------------------------------------------------------------------------------------------------------
class AppTeardown:
    """Delete an app: repository, bucket, and last its log group (its registration).

    A bucket or repository holding data is kept and named unless purge_data: then the bucket is
    emptied (every version and delete marker, page by page) and the repository deleted with its
    images. "Not found" is done, so deleting an app twice, or one half made, is safe."""

    def __init__(self, aws, state, plan, purge_data):
        self.aws = aws
        self.state = state
        self.names = state.names
        self.plan = plan
        self.purge_data = purge_data
        self.kept_buckets = []
        self.kept_repositories = []

    def run(self):
        self.remove_repository()
        self.remove_bucket()
        self.remove_log_group()
        return {"buckets": self.kept_buckets, "repositories": self.kept_repositories}

    def _kept_if_refused(self, kept, name, codes, fn):
        """Run a delete; something written since it was read (a code in `codes`) keeps the resource."""
        try:
            fn()
        except AWSCallError as e:
            if e.code not in codes or self.purge_data:
                raise
            kept.append(name)

    def remove_repository(self):
        if self.state.repository is None:
            return
        name = self.names.repository
        images = self.aws.call("ecr", "list_images", "ECR repository %s" % name, ignore=("RepositoryNotFoundException",),
                               repositoryName=name, maxResults=1)
        if images is None:
            return
        holds_data = bool(images.get("imageIds"))
        if holds_data and not self.purge_data:
            self.kept_repositories.append(name)
            return
        self.plan.change("repository", name, "delete", lambda: self._kept_if_refused(
            self.kept_repositories, name, ("RepositoryNotEmptyException",), lambda: self.aws.call(
                "ecr", "delete_repository", "ECR repository %s" % name, ignore=("RepositoryNotFoundException",),
                repositoryName=name, force=holds_data)),
            detail={"purge_data": True} if holds_data else None)

    def remove_bucket(self):
        if self.state.bucket is None:
            return
        name = self.names.bucket
        listing = self.aws.call("s3", "list_object_versions", "bucket %s" % name, ignore=("NoSuchBucket",),
                                Bucket=name, MaxKeys=1)
        if listing is None:
            return
        holds_data = bool(listing.get("Versions") or listing.get("DeleteMarkers"))
        if holds_data and not self.purge_data:
            self.kept_buckets.append(name)
            return

        def delete():
            if holds_data:
                self._empty(name)
            self._kept_if_refused(self.kept_buckets, name, ("BucketNotEmpty",), lambda: self.aws.call(
                "s3", "delete_bucket", "bucket %s" % name, ignore=("NoSuchBucket",), Bucket=name))
        self.plan.change("bucket", name, "delete", delete, detail={"purge_data": True} if holds_data else None)

    def _empty(self, name):
        empty_bucket_over_any_endpoint(self.aws, name)

    def remove_log_group(self):
        group = self.state.log_group
        if group is None:
            return
        name = group["logGroupName"]
        self.plan.change("log_group", name, "delete", lambda: self.aws.call(
            "logs", "delete_log_group", "log group %s" % name, ignore=("ResourceNotFoundException",), logGroupName=name))


def remove_app(aws, names, plan, purge_data):
    """Delete one app of a rack (for the rack's uninstall with force); returns what was kept."""
    return AppTeardown(aws, read_app(aws, names), plan, purge_data).run()


# -- the service ------------------------------------------------------------------------------------------------------
class AppService:
    def __init__(self, aws, region, params, check_mode):
        self.aws = aws
        self.region = region
        self.params = params
        self.check_mode = check_mode
        # The app module has no wait_timeout: waits (for the rack's run lock) and retries end
        # after the rack module's default.
        self.deadline = Deadline(DEFAULT_WAIT_TIMEOUT)
        aws.deadline = self.deadline
        self.warnings = []
        self.with_run_lock = with_run_lock

    def _names(self):
        self.identity = Identity(self.aws)
        return AppNames(self.params["rack"], self.params["name"], self.region, self.identity.account)

    def _locked(self, operation, run):
        """run(first_write) under the rack's run lock: an app changes while no other run changes its rack."""
        return self.with_run_lock(self.aws, self.params["rack"], self.deadline,
                                  "%s of app %s" % (operation, self.params["name"]), self.check_mode, run, self.warnings)

    def present(self):
        validate_app_request(self.params)
        return self._locked("create or update", self._present)

    def _present(self, first_write):
        p = self.params
        names = self._names()
        rack_parameters = find_rack(self.aws, names.rack_names)
        state = read_app(self.aws, names)
        before_tags = state.user_tags()
        wanted = {
            # Unset: the rack's retention, as recorded now.
            "log_retention": p.get("log_retention") or rack_parameters.get("log_retention", DEFAULTS["log_retention"]),
            "immutable_tags": bool(p.get("immutable_tags")),
            "tags": merge_user_tags(before_tags, p.get("tags"), p.get("purge_tags", True)),
        }
        plan = Plan(self.check_mode, before_first_write=first_write)
        builder = AppBuilder(self.aws, self.identity, state, wanted, plan)
        builder.converge()
        app = self._result_app(state, wanted, plan, builder.repository_uri)
        before = {}
        if state.exists:
            repo = state.repository
            before = {"log_retention": (state.log_group or {}).get("retentionInDays"),
                      "immutable_tags": repo.get("imageTagMutability") == "IMMUTABLE" if repo else None}
        after = {k: wanted[k] for k in ("log_retention", "immutable_tags")}
        return {
            "changed": plan.changed,
            "app": app,
            "plan": plan.changes,
            "aws_calls": len(self.aws.calls),
            "diff": plan.diff(before, after, before_tags, wanted["tags"]),
        }

    def _result_app(self, state, wanted, plan, repository_uri):
        """The app as the run leaves it (in check mode: as it would)."""
        names = state.names
        app = app_dict(state, self.region)
        app.update(log_group=names.log_group, log_retention=wanted["log_retention"], bucket=names.bucket,
                   repository=names.repository, repository_uri=repository_uri, immutable_tags=wanted["immutable_tags"],
                   tags=wanted["tags"], missing=[], status="running")
        if plan.changed and self.check_mode:
            app["status"] = "updating" if state.registered else "creating"
        return app

    def absent(self):
        validate_app_request(self.params)
        return self._locked("delete", self._absent)

    def _absent(self, first_write):
        p = self.params
        names = self._names()
        state = read_app(self.aws, names)
        plan = Plan(self.check_mode, before_first_write=first_write)
        kept = AppTeardown(self.aws, state, plan, p.get("purge_data", False)).run()
        app = app_dict(state, self.region, status="deleting" if plan.changed and self.check_mode else "deleted")
        before = {"exists": state.exists, "registered": state.registered}
        return {
            "changed": plan.changed,
            "app": app,
            "kept_buckets": kept["buckets"],
            "kept_repositories": kept["repositories"],
            "plan": plan.changes,
            "aws_calls": len(self.aws.calls),
            "diff": {"before": before, "after": {"exists": bool(kept["buckets"] or kept["repositories"]),
                                                 "registered": False, "kept_buckets": kept["buckets"],
                                                 "kept_repositories": kept["repositories"],
                                                 "delete": plan.by_action("delete")}},
        }


def read_apps(aws, region, rack, name=None):
    """The app dicts of one app (by name) or of every app of a rack: those whose log group exists."""
    identity = Identity(aws)
    rack_names = RackNames(rack, region, identity.account)
    find_rack(aws, rack_names, to_change=False)
    prefix = rack_names.app_log_group_prefix() + (name or "")
    groups = aws.paginate("logs", "describe_log_groups", "log groups of rack %s" % rack,
                          logGroupNamePrefix=prefix).get("logGroups", [])
    apps = sorted({g["logGroupName"][len(rack_names.app_log_group_prefix()):] for g in groups})
    if name is not None:
        apps = [a for a in apps if a == name]
    out = []
    for app in apps:
        state = read_app(aws, AppNames.of_rack(rack_names, app), groups)
        out.append(app_dict(state, region))
    return out


# -- module glue --------------------------------------------------------------------------------------------------
def run_app_module(module):
    aws = None
    try:
        validate_app_request(module.params)
        region = region_of(module)
        aws = make_aws(module)
        service = AppService(aws, region, module.params, module.check_mode)
        result = service.absent() if module.params["state"] == "absent" else service.present()
    except RackError as e:
        fail(module, e, aws)
    if not module._diff:
        result.pop("diff", None)
    for warning in service.warnings:
        module.warn(warning)
    module.exit_json(**result)


def run_app_info_module(module):
    aws = None
    try:
        validate_name(module.params["rack"], field="rack")
        if module.params.get("name") is not None:
            validate_app_name(module.params["name"], module.params["rack"])
        region = region_of(module)
        aws = make_aws(module)
        apps = read_apps(aws, region, module.params["rack"], module.params.get("name"))
    except RackError as e:
        fail(module, e, aws)
    module.exit_json(changed=False, apps=apps, aws_calls=len(aws.calls))
