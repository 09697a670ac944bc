# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KMS: the rack's customer managed key, alias/convox/<rack>, with which the apps' buckets
(SSE-KMS with a Bucket Key), the rack's and apps' log groups and the instances' EBS volumes are
encrypted. Found by its alias, confirmed by its tags; rotation on; its policy desired.kms_key_policy.

With the rack's option kms_key (a key of the user's) no key is created: that ARN is used as is.

A key is never deleted at once: an uninstall with purge_data schedules its deletion with KMS's
longest waiting period (30 days, during which CancelKeyDeletion brings it back: AWS KMS developer
guide, "Deleting AWS KMS keys") and deletes the alias; without purge_data the key is kept (data
encrypted with it may remain: a kept bucket, exported logs) and named in kept_keys."""

from __future__ import annotations

import json

from .. import desired as D
from ..errors import AWSCallError
from ..plan import CHECK_MODE_ID
from ..tags import confirm, sync_tags, tag_dict, tag_list

NOT_FOUND = ("NotFoundException",)
DELETION_WINDOW_DAYS = 30   # the longest KMS allows (ScheduleKeyDeletion PendingWindowInDays: 7 to 30)
# A principal created moments before (Auto Scaling's service-linked role) may not be usable in a key
# policy yet: CreateKey/PutKeyPolicy answer MalformedPolicyDocumentException until IAM propagates it
# (AWS KMS API reference, CreateKey: "the principal ... might not be visible to AWS KMS").
NEW_PRINCIPAL = ("MalformedPolicyDocumentException",)


def _tags(aws, key_id, what):
    listed = aws.paginate("kms", "list_resource_tags", what, KeyId=key_id)
    return tag_dict(listed.get("Tags"), key="TagKey", value="TagValue")


def read(aws, state):
    """The key the rack's alias points to: describe_key + "tags", "rotation", "policy"; or None."""
    alias = D.kms_alias(state.names.rack)
    what = "KMS key %s" % alias
    found = aws.call("kms", "describe_key", what, ignore=NOT_FOUND, KeyId=alias)
    if found is None:
        state.kms_key = None
        return
    meta = found["KeyMetadata"]
    key = dict(meta, tags=_tags(aws, meta["KeyId"], what))
    confirm(key["tags"], what, state.names.rack)
    if meta.get("KeyState") != "PendingDeletion":
        key["rotation"] = aws.call("kms", "get_key_rotation_status", what, KeyId=meta["KeyId"]).get(
            "KeyRotationEnabled")
        key["policy"] = aws.call("kms", "get_key_policy", what, KeyId=meta["KeyId"], PolicyName="default").get("Policy")
    state.kms_key = key


def find_arn(aws, names):
    """The ARN of the rack's own key (for an app of the rack), tags confirmed; None without one."""
    alias = D.kms_alias(names.rack)
    what = "KMS key %s" % alias
    found = aws.call("kms", "describe_key", what, ignore=NOT_FOUND, KeyId=alias)
    if found is None or found["KeyMetadata"].get("KeyState") != "Enabled":
        return None
    confirm(_tags(aws, found["KeyMetadata"]["KeyId"], what), what, names.rack)
    return found["KeyMetadata"]["Arn"]


def _service_linked_role(aws):
    """Auto Scaling's service-linked role, named in the key policy, must exist before the policy
    names it (KMS refuses a policy naming an unknown principal). AWS creates it with an account's
    first Auto Scaling group; a new account's first rack creates it here, once."""
    try:
        aws.call("iam", "create_service_linked_role", "service-linked role AWSServiceRoleForAutoScaling",
                 AWSServiceName="autoscaling.amazonaws.com")
    except AWSCallError as e:
        # IAM: InvalidInput "Service role name AWSServiceRoleForAutoScaling has been taken in this account".
        if not (e.code == "EntityAlreadyExists" or (e.code == "InvalidInput" and "taken" in str(e))):
            raise


def ensure(run):
    """The ARN of the key the rack encrypts with (CHECK_MODE_ID when check mode would create it)."""
    given = run.wanted.get("kms_key")
    if given:
        run.out["kms_key"] = given
        return given
    aws, plan, rack, key = run.aws, run.plan, run.names.rack, run.state.kms_key
    alias = D.kms_alias(rack)
    ident = run.identity
    policy = D.kms_key_policy(ident.partition, run.region, ident.account, run.names.log_group)
    what = "KMS key %s" % alias

    def kms(op, retry_on=(), **kw):
        return aws.call("kms", op, what, retry_on=retry_on, **kw)
    if key is None:
        def create():
            _service_linked_role(aws)
            meta = kms("create_key", retry_on=NEW_PRINCIPAL, Policy=json.dumps(policy),
                       Description="convox rack %s: logs, buckets and volumes" % rack,
                       KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT",
                       Tags=tag_list(run.tags, key="TagKey", value="TagValue"))["KeyMetadata"]
            # KMS is eventually consistent: a key just made may answer NotFoundException for a moment (AWS KMS
            # developer guide, "AWS KMS eventual consistency"); the calls that name it retry that.
            kms("enable_key_rotation", retry_on=NOT_FOUND, KeyId=meta["KeyId"])
            kms("create_alias", retry_on=NOT_FOUND, AliasName=alias, TargetKeyId=meta["KeyId"])
            run.new_kms_key = meta["Arn"]
            return meta["Arn"]
        arn = plan.change("kms_key", alias, "create", create, detail={"rotation": True}) or CHECK_MODE_ID
        run.out["kms_key"] = arn
        return arn
    key_id, arn = key["KeyId"], key["Arn"]
    if key.get("KeyState") == "PendingDeletion":
        # A purge scheduled its deletion, and a later install found it by its alias: bring it back.
        def bring_back():
            kms("cancel_key_deletion", KeyId=key_id)
            kms("enable_key", KeyId=key_id)
        plan.change("kms_key", alias, "update", bring_back, detail={"deletion": "cancelled"})
        key = dict(key, rotation=None, policy=None)
    elif key.get("KeyState") == "Disabled":
        plan.change("kms_key", alias, "update", lambda: kms("enable_key", KeyId=key_id), detail={"enabled": True})
    if not key.get("rotation"):
        plan.change("kms_key", alias, "update", lambda: kms("enable_key_rotation", KeyId=key_id),
                    detail={"rotation": True})
    if not D.policy_equal(key.get("policy"), policy):
        plan.change("kms_key", alias, "update", lambda: (_service_linked_role(aws), kms(
            "put_key_policy", retry_on=NEW_PRINCIPAL, KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))),
            detail={"policy": "the account, CloudWatch Logs for the rack's log groups, Auto Scaling's volumes"})
    sync_tags(plan, "kms_key", alias, key["tags"], run.tags,
              lambda s: kms("tag_resource", KeyId=key_id, Tags=tag_list(s, key="TagKey", value="TagValue")),
              lambda u: kms("untag_resource", KeyId=key_id, TagKeys=u))
    run.out["kms_key"] = arn
    return arn


def remove(run, purge_data, kept):
    """With purge_data: the alias deleted and the key's deletion scheduled (30 days); otherwise the
    key is kept and named in `kept`. A key of the user's (not found by the alias) is never touched."""
    key = run.state.kms_key
    if key is None:
        return
    alias = D.kms_alias(run.names.rack)
    if not purge_data:
        if key.get("KeyState") != "PendingDeletion":
            kept.append(key["Arn"])
        return
    what = "KMS key %s" % alias

    def delete():
        run.aws.call("kms", "delete_alias", what, ignore=NOT_FOUND, AliasName=alias)
        if key.get("KeyState") != "PendingDeletion":
            run.aws.call("kms", "schedule_key_deletion", what, ignore=NOT_FOUND, KeyId=key["KeyId"],
                         PendingWindowInDays=DELETION_WINDOW_DAYS)
    run.plan.change("kms_key", alias, "delete", delete,
                    detail={"purge_data": True, "pending_window_days": DELETION_WINDOW_DAYS})
