# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps of an app of a rack, over the same parts as the rack's.

An app of rack R in a region is three resources, named after both (naming.AppNames) and tagged
System=convox, Rack=R, Type=app, App=<app> (plus the user's tags):

- its CloudWatch log group /convox/R/apps/<app> (parts/logs.py), which is also its registration:
  the rack, rack_info and app_info list an app when its log group exists. It is created first and
  deleted last, so a half-made app is always listed (and can be deleted or finished);
- an S3 bucket for release artifacts and templates (parts/storage.py), hardened like the rack's
  and logging its accesses into the rack's log bucket under logs/apps/<app>/ (on a rack installed
  by 0.1.0, which has no log bucket, into the rack's bucket until the rack's update moves them);
- an ECR repository convox/R/<app> for its images (parts/registry.py)."""

from __future__ import annotations

from . import desired as D
from .context import Run
from .errors import RackError
from .naming import ACCESS_LOGS_PREFIX, AppNames, system_tags
from .parts import kms, logs, registry, storage
from .record import parameters_from_tags, recorded_status, status_current
from .state import AppState
from .tags import confirm, is_ours


def app_tags(rack, app, user=None):
    tags = system_tags(rack, "app", app)
    tags.update(user or {})
    return tags


def app_run(aws, region, identity, rack_names, app, plan, tags=None):
    """The run context of one app of the rack named by rack_names."""
    return Run(aws, region, identity, AppNames.of_rack(rack_names, app), plan, tags=tags)


def read(aws, names, listed_log_groups=None):
    """Everything that exists of the app, registered or not (a kept bucket or repository counts)."""
    state = AppState(names)
    if listed_log_groups is None:
        listed_log_groups = logs.list_groups(aws, names.log_group, "log group %s" % names.log_group)
    state.log_group, state.log_group_tags = logs.read_group(aws, names.log_group, listed_log_groups,
                                                            (names.rack, "app", names.app))
    bucket = storage.read_tags(aws, names.bucket)
    if bucket is not None and bucket["tags"]:
        # A bucket of the derived name with no tags at all is one of ours whose tagging failed.
        confirm(bucket["tags"], "bucket %s" % names.bucket, names.rack, "app", names.app)
    state.bucket = bucket
    registry.read(aws, state)
    return state


def find_rack(aws, rack_names, to_change=True):
    """The rack's parameters, as its record says; RackError naming `rack` when there is no such
    rack, or (to_change) when a run is uninstalling it."""
    rack, region = rack_names.rack, rack_names.region
    tagging = aws.call("s3", "get_bucket_tagging", "bucket %s" % rack_names.bucket,
                       ignore=("NoSuchBucket", "NoSuchTagSet"), Bucket=rack_names.bucket)
    tags = {t["Key"]: t.get("Value", "") for t in (tagging or {}).get("TagSet", [])}
    status = recorded_status(tags)
    if tagging is None or not is_ours(tags, rack) or status == "uninstalled":
        raise RackError("rack: no rack named %s in %s (install it first: playbooks/install_rack.yml -e rack=%s)"
                        % (rack, region, rack), field="rack")
    if to_change and status == "uninstalling" and status_current(tags):
        raise RackError("rack: rack %s in %s is being uninstalled" % (rack, region), field="rack")
    return parameters_from_tags(tags)


def bucket_spec(run, log_target=None):
    names = run.names
    return storage.BucketSpec(
        names.bucket, run.region, run.tags, D.app_lifecycle_rules(),
        "noncurrent versions expire after %d days" % D.NONCURRENT_VERSION_DAYS,
        D.tls_only_bucket_policy(run.identity.partition, names.bucket), "TLS only",
        logging=D.logging_config(names, log_target), sync_tags=True, kms_key=run.out.get("kms_key"))


def log_target(aws, names):
    """The bucket the app's access logs go to: the rack's log bucket (its tags confirmed); on a rack
    installed by 0.1.0, which has none until its next update, the rack's own bucket, as then."""
    if storage.read_log_bucket(aws, names.rack_names) is None:
        return names.rack_bucket
    return names.log_bucket


def move_access_logs(run, rack_policy):
    """The rack's converge: each app's bucket that logs into the rack's own bucket (an app of a rack
    installed by 0.1.0) logs into the log bucket from now on, before the rack bucket's policy stops
    taking its logs. An app bucket that logs elsewhere or not at all is its app's converge's to fix.
    Only while the rack bucket's policy (`rack_policy`) still takes the apps' logs: once it no longer
    does, no app logs there and a run reads nothing of its apps' buckets."""
    names = run.names
    if not D.has_sid(rack_policy, D.ACCESS_LOGS_SID):
        return
    for app in run.state.apps:
        app_names = AppNames.of_rack(names, app)
        bucket = app_names.bucket
        enabled = (run.aws.call("s3", "get_bucket_logging", "bucket %s" % bucket, ignore=storage.NOT_FOUND,
                                Bucket=bucket) or {}).get("LoggingEnabled") or {}
        if enabled.get("TargetBucket") != names.bucket:
            continue
        wanted = D.logging_config(app_names)
        run.plan.change("bucket", bucket, "update", lambda bucket=bucket, wanted=wanted: run.aws.call(
            "s3", "put_bucket_logging", "bucket %s" % bucket, Bucket=bucket,
            BucketLoggingStatus={"LoggingEnabled": wanted}), detail={"logging": {
                "before": "s3://%s/%s" % (enabled["TargetBucket"], enabled.get("TargetPrefix", "")),
                "after": "s3://%s/%s" % (wanted["TargetBucket"], wanted["TargetPrefix"])}})


def converge(run, wanted):
    """Log group (the registration) first, the log bucket's consent to its logs, the bucket, the
    repository; returns the repository's URI."""
    names, state, ident = run.names, run.state, run.identity
    # The rack's key: the user's (recorded kms_key), else the rack's own (found by its alias); a rack
    # converged before it had one leaves its apps as they were until the rack is converged again.
    key = wanted.get("kms_key") or kms.find_arn(run.aws, names.rack_names)
    run.out["kms_key"] = key
    logs.ensure(run.aws, run.plan, names.log_group, state.log_group, state.log_group_tags, wanted["log_retention"],
                run.tags, kms_key=key)
    # The rack module writes the same statement; this adds it (keeping every other statement) to a
    # rack converged before it did, so that the app's logs are delivered either way.
    target = log_target(run.aws, names)
    storage.ensure_policy_statement(
        run.aws, run.plan, target, D.access_logs_statement(ident.partition, target, names.rack, ident.account),
        {"policy": "allow S3 access logs under %s" % ACCESS_LOGS_PREFIX},
        kind="log_bucket" if target == names.log_bucket else "rack_bucket")
    storage.ensure(run.aws, run.plan, bucket_spec(run, target), state.bucket)
    return registry.ensure(run, wanted["immutable_tags"])


def delete(run, purge_data, kept):
    """Repository, bucket, and last the log group (its registration). A bucket or repository
    holding data is kept and named (in `kept`) unless purge_data."""
    if run.state is None:
        run.state = read(run.aws, run.names)
    registry.remove(run, purge_data, kept.repositories)
    if run.state.bucket is not None:
        storage.remove(run.aws, run.plan, run.names.bucket, purge_data, kept.buckets)
    logs.remove(run.aws, run.plan, run.state.log_group)
