"""The rack's KMS key (parts/kms.py) against botocore's Stubber: what is asked of AWS, in order.

AWS behaviour modelled, each from AWS's documentation:
- DescribeKey takes an alias name (AWS KMS API reference, DescribeKey) and answers NotFoundException
  for an alias that does not exist.
- CreateKey refuses a key policy naming a principal that does not exist yet
  (MalformedPolicyDocumentException; CreateKey API reference), hence Auto Scaling's service-linked
  role first; IAM answers InvalidInput "... has been taken in this account" when it exists.
- ScheduleKeyDeletion's PendingWindowInDays is 7 to 30 (ScheduleKeyDeletion API reference).
"""

from __future__ import annotations

import json
import types

from ansible_collections.convox.rack.plugins.module_utils._rack import desired as D
from ansible_collections.convox.rack.plugins.module_utils._rack.context import Run
from ansible_collections.convox.rack.plugins.module_utils._rack.naming import RackNames, system_tags
from ansible_collections.convox.rack.plugins.module_utils._rack.parts import kms
from ansible_collections.convox.rack.plugins.module_utils._rack.plan import Plan
from ansible_collections.convox.rack.plugins.module_utils._rack.state import RackState

ACCOUNT = "123456789012"
REGION = "us-east-1"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
ARN = "arn:aws:kms:%s:%s:key/%s" % (REGION, ACCOUNT, KEY_ID)
TAGS = system_tags("prod")


def run_of(stubbed, key=None, wanted=None, check_mode=False):
    state = RackState(RackNames("prod", REGION, ACCOUNT))
    state.kms_key = key
    identity = types.SimpleNamespace(account=ACCOUNT, partition="aws")
    return Run(stubbed.aws, REGION, identity, state.names, Plan(check_mode), state, wanted or {}, dict(TAGS))


def existing(state="Enabled", rotation=True, policy=None):
    return {"KeyId": KEY_ID, "Arn": ARN, "KeyState": state, "tags": dict(TAGS), "rotation": rotation,
            "policy": json.dumps(policy or D.kms_key_policy("aws", REGION, ACCOUNT, "/convox/prod"))}


def test_a_new_key_is_made_after_the_role_its_policy_names_then_rotated_and_aliased(stubbed):
    stubbed.error("iam", "create_service_linked_role", "InvalidInput",
                  message="Service role name AWSServiceRoleForAutoScaling has been taken in this account",
                  params={"AWSServiceName": "autoscaling.amazonaws.com"})
    stubbed.ok("kms", "create_key", {"KeyMetadata": {"KeyId": KEY_ID, "Arn": ARN}})
    stubbed.ok("kms", "enable_key_rotation", {}, {"KeyId": KEY_ID})
    stubbed.ok("kms", "create_alias", {}, {"AliasName": "alias/convox/prod", "TargetKeyId": KEY_ID})
    run = run_of(stubbed)
    assert kms.ensure(run) == ARN
    stubbed.assert_all_used()
    created = [p for op, p in stubbed.log if op == "kms:create_key"][0]
    assert json.loads(created["Policy"]) == D.kms_key_policy("aws", REGION, ACCOUNT, "/convox/prod")
    assert {"TagKey": "Rack", "TagValue": "prod"} in created["Tags"]
    assert run.plan.changes == [{"resource": "kms_key", "name": "alias/convox/prod", "action": "create",
                                 "changes": {"rotation": True}}]


def test_a_key_in_place_changes_nothing(stubbed):
    run = run_of(stubbed, existing())
    assert kms.ensure(run) == ARN and run.plan.changes == []
    stubbed.assert_all_used()


def test_rotation_and_policy_undone_by_hand_are_put_back(stubbed):
    stubbed.ok("kms", "enable_key_rotation", {}, {"KeyId": KEY_ID})
    stubbed.error("iam", "create_service_linked_role", "InvalidInput",
                  message="Service role name AWSServiceRoleForAutoScaling has been taken in this account")
    stubbed.ok("kms", "put_key_policy", {})
    run = run_of(stubbed, existing(rotation=False, policy={"Version": "2012-10-17", "Statement": []}))
    kms.ensure(run)
    stubbed.assert_all_used()
    assert [c["changes"] for c in run.plan.changes][0] == {"rotation": True}


def test_a_key_of_the_users_is_used_and_nothing_is_asked_of_kms(stubbed):
    given = "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"
    run = run_of(stubbed, None, wanted={"kms_key": given})
    assert kms.ensure(run) == given and run.plan.changes == []
    stubbed.assert_all_used()


def test_uninstall_without_purge_keeps_the_key_and_names_it(stubbed):
    kept = []
    run = run_of(stubbed, existing())
    kms.remove(run, purge_data=False, kept=kept)
    assert kept == [ARN] and run.plan.changes == []
    stubbed.assert_all_used()


def test_purge_deletes_the_alias_and_schedules_deletion_with_the_longest_wait(stubbed):
    stubbed.ok("kms", "delete_alias", {}, {"AliasName": "alias/convox/prod"})
    stubbed.ok("kms", "schedule_key_deletion", {"KeyId": ARN, "DeletionDate": "2027-01-01T00:00:00Z"},
               {"KeyId": KEY_ID, "PendingWindowInDays": 30})
    kept = []
    run = run_of(stubbed, existing())
    kms.remove(run, purge_data=True, kept=kept)
    stubbed.assert_all_used()
    assert kept == []
    assert run.plan.changes[0]["action"] == "delete" and run.plan.changes[0]["changes"]["pending_window_days"] == 30


def test_check_mode_plans_the_key_and_asks_nothing(stubbed):
    run = run_of(stubbed, check_mode=True)
    assert kms.ensure(run) == "(known after apply)"
    stubbed.assert_all_used()
    assert run.plan.changes[0]["action"] == "create"
