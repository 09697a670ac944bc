# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage: the hardened S3 bucket, one code path for the rack's bucket and every app's.

A bucket is found by its derived name (naming.py) and confirmed by its tags. Hardening: all four
public-access-block flags, owner-enforced object ownership, default encryption, versioning, a
lifecycle, a TLS-only policy and, for an app's bucket, access logging into the rack's bucket.
Created, it is one change of the plan (create, tag, harden); existing, each setting that differs
is one change. Data is deleted only with purge_data: a bucket holding objects is kept and named.
"""

from __future__ import annotations

import json

from .. import desired as D
from .. import record
from ..errors import AWSCallError, RackError
from ..tags import confirm, sync_tags, tag_dict

NOT_FOUND = ("NoSuchBucket",)
# S3 acknowledges CreateBucket before every reader sees the bucket: the calls that configure a new
# bucket may answer NoSuchBucket, or OperationAborted ("A conflicting conditional operation is
# currently in progress"), for a moment (S3 API reference, CreateBucket and error codes); retried.
NEW_BUCKET = ("NoSuchBucket", "OperationAborted")
# The settings whose change is shown as {"before", "after"} (the lifecycle and policy documents: the wanted one only).
COMPARED = ("public_access_block", "ownership", "encryption", "versioning", "logging")


class BucketSpec:
    """What a bucket should be: its tags at creation, and its settings."""

    def __init__(self, name, region, tags, lifecycle, lifecycle_detail, policy, policy_detail, logging=None,
                 sync_tags=False, kms_key=None):
        self.name = name
        self.region = region
        self.tags = tags
        self.lifecycle = lifecycle
        self.lifecycle_detail = lifecycle_detail
        self.policy = policy
        self.policy_detail = policy_detail
        self.logging = logging      # {"TargetBucket", "TargetPrefix"} or None: no access logging managed
        self.sync_tags = sync_tags  # converge an existing bucket's tags here (the rack's are its record's)
        self.kms_key = kms_key      # SSE-KMS with this key and a Bucket Key; None: SSE-S3 (or any SSE-KMS kept)


# -- read ------------------------------------------------------------------------------------------------------
def read_tags(aws, name):
    """{"name", "tags"} of the bucket, or None; a bucket with no tags (ours, half made) has {}."""
    try:
        tagging = aws.call("s3", "get_bucket_tagging", "bucket %s" % name, ignore=NOT_FOUND, Bucket=name)
    except RackError as e:
        code = e.details.get("error_code")
        if code == "NoSuchTagSet":
            return {"name": name, "tags": {}}
        if code in ("AccessDenied", "AllAccessDisabled", "403"):
            raise RackError(
                "bucket %s: the name is taken by a bucket this account cannot read (%s); "
                "it is derived from the account, region and rack name, so this should not happen" % (name, code),
                **e.details)
        raise
    if tagging is None:
        return None
    return {"name": name, "tags": tag_dict(tagging.get("TagSet"))}


def read_log_bucket(aws, names):
    """The rack's log bucket ({"name", "tags"}) or None; one tagged as another's is refused (one
    without tags is ours, half made: its name is derived from the account, region and rack)."""
    bucket = read_tags(aws, names.log_bucket)
    if bucket is not None and bucket["tags"]:
        confirm(bucket["tags"], "bucket %s" % names.log_bucket, names.rack)
    return bucket


def read_config(aws, name, logging=False):
    """What we manage of a bucket's configuration, normalised for comparison."""
    def s3(op, ignore=()):
        return aws.call("s3", op, "bucket %s" % name, ignore=ignore, Bucket=name) or {}
    pab = s3("get_public_access_block", ignore=("NoSuchPublicAccessBlockConfiguration",))
    own = s3("get_bucket_ownership_controls", ignore=("OwnershipControlsNotFoundError",))
    enc = s3("get_bucket_encryption", ignore=("ServerSideEncryptionConfigurationNotFoundError",))
    enc_rules = (enc.get("ServerSideEncryptionConfiguration") or {}).get("Rules") or [{}]
    config = {
        "public_access_block": pab.get("PublicAccessBlockConfiguration"),
        "ownership": ((own.get("OwnershipControls") or {}).get("Rules") or [{}])[0].get("ObjectOwnership"),
        "encryption": (enc_rules[0].get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm"),
        "encryption_key": (enc_rules[0].get("ApplyServerSideEncryptionByDefault") or {}).get("KMSMasterKeyID"),
        "bucket_key": bool(enc_rules[0].get("BucketKeyEnabled")),
        "lifecycle": s3("get_bucket_lifecycle_configuration", ignore=("NoSuchLifecycleConfiguration",)).get("Rules"),
    }
    if logging:
        enabled = s3("get_bucket_logging").get("LoggingEnabled") or {}
        config["logging"] = {k: enabled.get(k) for k in ("TargetBucket", "TargetPrefix")} if enabled else None
    config["versioning"] = s3("get_bucket_versioning").get("Status")
    config["policy"] = s3("get_bucket_policy", ignore=("NoSuchBucketPolicy",)).get("Policy")
    return config


# -- ensure ----------------------------------------------------------------------------------------------------
def settings(aws, spec, current, exists, retry_on=()):
    """(setting, in place?, apply, detail) for each hardening setting, in the order to apply."""
    name = spec.name

    def s3(op, **kw):
        return lambda: aws.call("s3", op, "bucket %s" % name, Bucket=name, retry_on=retry_on, **kw)
    out = [
        ("public_access_block", current.get("public_access_block") == D.PUBLIC_ACCESS_BLOCK,
         s3("put_public_access_block", PublicAccessBlockConfiguration=D.PUBLIC_ACCESS_BLOCK), D.PUBLIC_ACCESS_BLOCK),
        ("ownership", not exists or current.get("ownership") == "BucketOwnerEnforced",
         s3("put_bucket_ownership_controls", OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}),
         "BucketOwnerEnforced"),
        encryption(spec, current, s3),
        ("versioning", current.get("versioning") == "Enabled",
         s3("put_bucket_versioning", VersioningConfiguration={"Status": "Enabled"}), "Enabled"),
        ("lifecycle", D.lifecycle_key(current.get("lifecycle")) == D.lifecycle_key(spec.lifecycle),
         s3("put_bucket_lifecycle_configuration", LifecycleConfiguration={"Rules": spec.lifecycle}),
         spec.lifecycle_detail),
    ]
    if spec.logging is not None:
        out.append(("logging", current.get("logging") == spec.logging,
                    s3("put_bucket_logging", BucketLoggingStatus={"LoggingEnabled": spec.logging}),
                    "s3://%s/%s" % (spec.logging["TargetBucket"], spec.logging["TargetPrefix"])))
    out.append(("policy", D.policy_equal(current.get("policy"), spec.policy),
                s3("put_bucket_policy", Policy=json.dumps(spec.policy)), spec.policy_detail))
    return out


def encryption(spec, current, s3):
    """SSE-KMS with the spec's key and a Bucket Key; without a key, SSE-S3 (a bucket already SSE-KMS
    is left so)."""
    if spec.kms_key:
        ok = (current.get("encryption") == "aws:kms" and current.get("encryption_key") == spec.kms_key
              and current.get("bucket_key"))
        return ("encryption", ok, s3("put_bucket_encryption", ServerSideEncryptionConfiguration=D.kms_encryption(
            spec.kms_key)), {"sse": "aws:kms", "kms_key": spec.kms_key, "bucket_key": True})
    return ("encryption", current.get("encryption") in ("AES256", "aws:kms"),
            s3("put_bucket_encryption", ServerSideEncryptionConfiguration=D.ENCRYPTION), "AES256")


def create(aws, spec):
    """Create, tag and harden the bucket."""
    kwargs = {"Bucket": spec.name, "ObjectOwnership": "BucketOwnerEnforced"}
    if spec.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": spec.region}
    # A repeated CreateBucket (a rerun after a lost answer) answers BucketAlreadyOwnedByYou outside
    # us-east-1 (S3 API reference, CreateBucket): the bucket is ours, and is configured below.
    aws.call("s3", "create_bucket", "bucket %s" % spec.name, ignore=("BucketAlreadyOwnedByYou",),
             retry_on=("OperationAborted",), **kwargs)
    record.put_tags(aws, spec.name, spec.tags, retry_on=NEW_BUCKET)
    for _setting, ok, apply, _detail in settings(aws, spec, {}, exists=False, retry_on=NEW_BUCKET):
        if not ok:
            apply()


def ensure(aws, plan, spec, bucket, current=None):
    """Converge the bucket (`bucket`: what read_tags found): one change to create it, or one per
    setting (and for its tags) that differs. `current`: its read_config, when the caller read it."""
    if bucket is None:
        plan.change("bucket", spec.name, "create", lambda: create(aws, spec))
        return
    if spec.sync_tags:
        # S3 replaces a bucket's whole tag set: one write sets and unsets.
        sync_tags(plan, "bucket", spec.name, bucket["tags"], spec.tags, lambda tags: record.put_tags(aws, spec.name, tags))
    if current is None:
        current = read_config(aws, spec.name, logging=spec.logging is not None)
    for setting, ok, apply, detail in settings(aws, spec, current, exists=True):
        if not ok:
            if setting in COMPARED:  # small enough to show what it was (drift words it: "versioning Suspended")
                detail = {"before": current.get(setting), "after": detail}
            plan.change("bucket", spec.name, "update", apply, detail={setting: detail})


def ensure_policy_statement(aws, plan, name, statement, detail, kind="rack_bucket"):
    """Add `statement` to a bucket's policy, keeping every other statement (one change, if missing)."""
    current = (aws.call("s3", "get_bucket_policy", "bucket %s" % name, ignore=("NoSuchBucketPolicy",),
                        Bucket=name) or {}).get("Policy")
    if D.has_statement(current, statement):
        return
    policy = D.with_statement(current, statement)
    plan.change(kind, name, "update", lambda: aws.call(
        "s3", "put_bucket_policy", "bucket %s" % name, Bucket=name, Policy=json.dumps(policy)), detail=detail)


# -- delete ----------------------------------------------------------------------------------------------------
def holds_data(aws, name):
    """Whether the bucket holds any object version or delete marker; None when it is gone."""
    listing = aws.call("s3", "list_object_versions", "bucket %s" % name, ignore=NOT_FOUND, Bucket=name, MaxKeys=1)
    if listing is None:
        return None
    return bool(listing.get("Versions") or listing.get("DeleteMarkers"))


def empty(aws, name):
    """Delete every object version and delete marker, 1,000 at a time, until none is left.

    Each round lists the bucket afresh from its start (deleted entries drop out of the
    listing), so a retried or failed listing can never end the emptying early."""
    deleted = 0
    while True:
        page = aws.call("s3", "list_object_versions", "bucket %s" % name, Bucket=name, MaxKeys=1000)
        objects = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                   for v in (page or {}).get("Versions", []) + (page or {}).get("DeleteMarkers", [])]
        if not objects:
            return deleted
        res = aws.call("s3", "delete_objects", "bucket %s" % name, Bucket=name,
                       Delete={"Objects": objects[:1000], "Quiet": True})
        errors = (res or {}).get("Errors") or []
        if errors:
            e = errors[0]
            raise RackError("bucket %s: could not delete %s (version %s): %s %s" % (
                name, e.get("Key"), e.get("VersionId"), e.get("Code"), e.get("Message")),
                resource="bucket %s" % name, error_code=e.get("Code"))
        deleted += len(objects[:1000])


def empty_over_any_endpoint(aws, name):
    """Empty a bucket. Its TLS-only policy refuses every request made without TLS, so on such an
    endpoint (the local AWS) it is lifted while emptying and put back if that fails; over HTTPS
    (AWS) it stays in place throughout."""
    lifted = None
    if aws.endpoint_scheme("s3") == "http":
        lifted = aws.call("s3", "get_bucket_policy", "bucket %s" % name, ignore=("NoSuchBucketPolicy",), Bucket=name)
        if lifted:
            aws.call("s3", "delete_bucket_policy", "bucket %s" % name, Bucket=name)
    try:
        return empty(aws, name)
    except RackError:
        if lifted:
            aws.call("s3", "put_bucket_policy", "bucket %s" % name, Bucket=name, Policy=lifted["Policy"])
        raise


def remove(aws, plan, name, purge_data, kept, keep=None):
    """Delete the bucket. Holding data without purge_data, it is kept: named in `kept`, and keep()
    says so in the plan; with purge_data it is emptied first. Objects written between the reading
    and the delete (BucketNotEmpty) keep it too, unless purge_data."""
    data = holds_data(aws, name)
    if data is None:
        return
    if data and not purge_data:
        kept.append(name)
        if keep is not None:
            keep()
        return

    def delete():
        if data:
            empty_over_any_endpoint(aws, name)
        try:
            aws.call("s3", "delete_bucket", "bucket %s" % name, ignore=NOT_FOUND, Bucket=name)
        except AWSCallError as e:
            if e.code != "BucketNotEmpty":
                raise
            if not purge_data:
                kept.append(name)
                return
            # Objects that arrived after the emptying (S3 delivers server access logs late, "best
            # effort", hours after the request: S3 user guide, "Logging requests with server access
            # logging"): empty again until the delete is accepted.
            aws.deadline.until_accepted("bucket %s to stay empty until it is deleted" % name, lambda: (
                empty_over_any_endpoint(aws, name),
                aws.call("s3", "delete_bucket", "bucket %s" % name, ignore=NOT_FOUND, Bucket=name)),
                codes=("BucketNotEmpty",))
    plan.change("bucket", name, "delete", delete, detail={"purge_data": True} if data else None)
