"""Plan: check mode records and never writes; the first write is preceded by the hook; the diff
lists what would be created, updated and deleted."""

from __future__ import annotations

import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack.plan import Plan


class Recorder:
    def __init__(self):
        self.events = []

    def apply(self, name, result=None):
        def run():
            self.events.append(name)
            return result
        return run

    def hook(self):
        self.events.append("hook")


def test_check_mode_records_and_never_applies():
    rec = Recorder()
    plan = Plan(True, before_first_write=rec.hook)
    assert plan.change("bucket", "b", "create", rec.apply("create bucket", "arn")) is None
    assert plan.change("vpc", "10.0.0.0/16", "create", rec.apply("create vpc")) is None
    assert plan.change("subnet", "s1", "update", rec.apply("tag subnet"), detail={"tags": {"set": {"a": "b"}}}) is None
    assert rec.events == [], "no apply and no hook in check mode"
    assert plan.changed
    assert plan.changes == [
        {"resource": "bucket", "name": "b", "action": "create"},
        {"resource": "vpc", "name": "10.0.0.0/16", "action": "create"},
        {"resource": "subnet", "name": "s1", "action": "update", "changes": {"tags": {"set": {"a": "b"}}}},
    ]


def test_hook_runs_once_before_the_first_apply():
    rec = Recorder()
    plan = Plan(False, before_first_write=rec.hook)
    assert plan.change("bucket", "b", "create", rec.apply("create bucket", "arn:aws:s3:::b")) == "arn:aws:s3:::b"
    plan.change("vpc", "v", "create", rec.apply("create vpc"))
    plan.change("vpc", "v", "update", rec.apply("tag vpc"))
    assert rec.events == ["hook", "create bucket", "create vpc", "tag vpc"]


def test_no_change_no_hook_and_not_changed():
    rec = Recorder()
    plan = Plan(False, before_first_write=rec.hook)
    assert not plan.changed
    assert rec.events == []
    assert plan.diff({}, {}, {}, {})["after"] == {"parameters": {}, "tags": {}, "create": [], "update": [], "delete": []}


def test_hook_may_be_set_after_the_plan_is_made():
    """RackService makes the Plan first and sets the hook once the builder exists."""
    rec = Recorder()
    plan = Plan(False)
    plan.before_first_write = rec.hook
    plan.change("log_group", "/convox/prod", "delete", rec.apply("delete log group"))
    assert rec.events == ["hook", "delete log group"]


def test_hook_failure_stops_before_the_write():
    rec = Recorder()

    def failing_hook():
        raise RuntimeError("bucket tagging refused")
    plan = Plan(False, before_first_write=failing_hook)
    with pytest.raises(RuntimeError):
        plan.change("vpc", "v", "delete", rec.apply("delete vpc"))
    assert rec.events == []


def test_diff_lists_create_update_delete_without_duplicates():
    plan = Plan(True)
    plan.change("bucket", "b", "create", None)
    plan.change("bucket", "b", "create", None, detail=None)  # encryption, versioning... of the new bucket
    plan.change("bucket", "b", "create", None)
    plan.change("launch_template", "lt", "update", None, detail={"InstanceType": {}})
    plan.change("launch_template", "lt", "update", None, detail={"ImageId": {}})
    plan.change("load_balancer", "convox-prod", "replace", None)
    plan.change("autoscaling_group", "convox-prod", "update", None)
    plan.change("instances", "convox-prod", "replace", None)
    plan.change("instances", "convox-prod", "replace", None)
    plan.change("subnet", "subnet-1", "delete", None)
    plan.change("subnet", "subnet-1", "delete", None)
    plan.change("subnet", "subnet-2", "delete", None)
    diff = plan.diff({"instance_type": "t3.small"}, {"instance_type": "t3.large"}, {"Team": "a"}, {"Team": "b"})
    assert diff["before"] == {"parameters": {"instance_type": "t3.small"}, "tags": {"Team": "a"}}
    after = diff["after"]
    assert after["parameters"] == {"instance_type": "t3.large"}
    assert after["tags"] == {"Team": "b"}
    assert after["create"] == ["bucket b"]
    assert after["update"] == ["launch_template lt", "autoscaling_group convox-prod", "load_balancer convox-prod",
                               "instances convox-prod"]
    assert after["delete"] == ["subnet subnet-1", "subnet subnet-2"]


def test_diff_of_a_fresh_rack_has_empty_before():
    plan = Plan(True)
    plan.change("vpc", "10.0.0.0/16", "create", None)
    diff = plan.diff(None, {"vpc_cidr": "10.0.0.0/16"}, None, {})
    assert diff["before"] == {"parameters": {}, "tags": {}}
    assert diff["after"]["create"] == ["vpc 10.0.0.0/16"]
