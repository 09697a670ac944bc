# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logs: the CloudWatch log groups of a rack (/convox/<rack>) and of its apps
(/convox/<rack>/apps/<app>, which is also an app's registration). Found by name, confirmed by
tags; retention from the rack's (or app's) log_retention."""

from __future__ import annotations

from ..tags import confirm, sync_tags

NOT_FOUND = ("ResourceNotFoundException",)


def tag_arn(group):
    """The log group's ARN as the tagging calls take it (without the trailing ":*")."""
    arn = group["arn"]
    return arn[:-2] if arn.endswith(":*") else arn


def list_groups(aws, prefix, what):
    return aws.paginate("logs", "describe_log_groups", what, logGroupNamePrefix=prefix).get("logGroups", [])


def read_group(aws, name, listed, owner):
    """(the group named `name` among `listed`, with "tag_arn", and its tags), or (None, {}).
    owner: (rack, kind, app) whose tags it must carry."""
    exact = [g for g in listed if g["logGroupName"] == name]
    if not exact:
        return None, {}
    group = dict(exact[0], tag_arn=tag_arn(exact[0]))
    what = "log group %s" % name
    tags = (aws.call("logs", "list_tags_for_resource", what, resourceArn=group["tag_arn"]) or {}).get("tags", {})
    confirm(tags, what, *owner)
    return group, tags


def read_rack(aws, state):
    """The rack's log group, and its apps (the log groups under its apps' prefix)."""
    names = state.names
    listed = list_groups(aws, names.log_group, "log group %s" % names.log_group)
    prefix = names.app_log_group_prefix()
    state.apps = sorted(g["logGroupName"][len(prefix):] for g in listed if g["logGroupName"].startswith(prefix))
    state.log_group, state.log_group_tags = read_group(aws, names.log_group, listed, (names.rack, "rack", None))


# A KMS key made moments before: CloudWatch Logs may not see it yet (AWS KMS developer guide, "AWS KMS eventual
# consistency": "typically ... less than a few seconds ..., but in some cases it can take several minutes") and
# answers as for a key it may not use. Retried for this long, only for a key the run has just created.
NEW_KEY_SECONDS = 120


def key_not_seen_yet(error):
    err = error.response.get("Error", {})
    return (err.get("Code") == "AccessDeniedException"
            and "specified KMS key does not exist or is not allowed" in (err.get("Message") or ""))


def ensure(aws, plan, name, group, current_tags, days, tags, kms_key=None, new_key=False):
    """Create the group (with its retention, encrypted with kms_key when given), or converge its
    retention, key and tags. An existing group takes the key with AssociateKmsKey (CloudWatch Logs
    user guide, "Encrypt log data in CloudWatch Logs using AWS KMS": new events are encrypted with
    it from then on). new_key: kms_key was created by this run (key_not_seen_yet is retried)."""
    def logs(op, **kw):
        return aws.call("logs", op, "log group %s" % name, **kw)
    keyed = {"retry_when": key_not_seen_yet, "retry_for": NEW_KEY_SECONDS} if new_key else {}
    if group is None:
        def create():
            extra = dict(keyed, kmsKeyId=kms_key) if kms_key else {}
            logs("create_log_group", logGroupName=name, tags=tags, **extra)
            logs("put_retention_policy", logGroupName=name, retentionInDays=days)
        plan.change("log_group", name, "create", create)
        return
    if group.get("retentionInDays") != days:
        plan.change("log_group", name, "update", lambda: logs(
            "put_retention_policy", logGroupName=name, retentionInDays=days),
            detail={"retention_days": {"before": group.get("retentionInDays"), "after": days}})
    if kms_key and group.get("kmsKeyId") != kms_key:
        plan.change("log_group", name, "update", lambda: logs("associate_kms_key", logGroupName=name, kmsKeyId=kms_key, **keyed),
                    detail={"kms_key": {"before": group.get("kmsKeyId"), "after": kms_key}})
    arn = group["tag_arn"]
    sync_tags(plan, "log_group", name, current_tags, tags,
              lambda s: logs("tag_resource", resourceArn=arn, tags=s),
              lambda u: logs("untag_resource", resourceArn=arn, tagKeys=u))


def remove(aws, plan, group):
    if group is None:
        return
    name = group["logGroupName"]
    plan.change("log_group", name, "delete", lambda: aws.call(
        "logs", "delete_log_group", "log group %s" % name, ignore=NOT_FOUND, logGroupName=name))
