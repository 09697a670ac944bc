# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of a run: every change, recorded as it is decided, applied unless in check mode.

Check mode and diff come from the same code path as the real run: each step decides a
change, records it, and only then (outside check mode) makes the AWS call. In check mode a
resource that would be created has no id yet; its dependants see CHECK_MODE_ID and plan
their own creation.
"""

from __future__ import annotations

CHECK_MODE_ID = "(known after apply)"
DOING = {"create": "creating", "update": "updating", "delete": "deleting", "replace": "replacing",
         "upgrade": "upgrading", "downgrade": "downgrading"}
# A change's kind in words, for the progress lines (roles/rack/tasks/main.yml words the summary alike).
KIND_WORDS = {"nat_gateway": "NAT gateway", "elastic_ip": "elastic IP", "iam_role": "IAM role",
              "ecs_cluster": "ECS cluster", "autoscaling_group": "Auto Scaling group", "vpc": "VPC",
              "network_acl": "network ACL"}


class Plan:
    def __init__(self, check_mode, before_first_write=None, progress=None):
        self.check_mode = check_mode
        self.progress = progress  # aws.Progress: the step, for the live progress lines
        self.changes = []
        self.before_first_write = before_first_write
        self.take_lock = None  # the run lock's first_write (lock.with_run_lock), when the run does not hold it yet
        self._writing = False

    def change(self, kind, name, action, apply, detail=None):
        """Record a change; run apply() unless in check mode. Returns apply's result or None."""
        entry = {"resource": kind, "name": name, "action": action}
        if detail:
            entry["changes"] = detail
        self.changes.append(entry)
        if self.check_mode:
            return None
        if self.progress is not None:
            # Noted before the first write takes the run lock: the lock names the step (lock.py).
            self.progress.note("%s %s %s" % (DOING.get(action, action), KIND_WORDS.get(kind, kind.replace("_", " ")), name))
        self.writing()
        return apply()

    def writing(self):
        """Say that a write follows: the first time, run before_first_write (mark the run, take the lock)."""
        if not self._writing and not self.check_mode:
            self._writing = True
            if self.before_first_write:
                self.before_first_write()

    def lock_before_refusing(self):
        """Before refusing on what the run read without the lock (a quota): take the lock, so that the
        refusal is decided on what exists while no other run changes the rack. A run that another held
        the lock for, or that finds the rack changed since it began, starts again under the lock
        (lock._LockTaken): two installs of one rack at once, the second no longer counts the elastic IPs
        of the first as others'. Not in check mode, which never locks."""
        if not self.check_mode and not self._writing and self.take_lock:
            self.take_lock()

    @property
    def wrote(self):
        """Whether this run began writing (its first write marked the rack)."""
        return self._writing

    @property
    def changed(self):
        return bool(self.changes)

    def by_action(self, action):
        seen = []
        for c in self.changes:
            item = "%s %s" % (c["resource"], c["name"])
            if c["action"] == action and item not in seen:
                seen.append(item)
        return seen

    def diff(self, before_params, after_params, before_tags, after_tags):
        """before/after of what the user controls, and the resources to create, change or delete."""
        def shown(params):
            return {k: v for k, v in (params or {}).items() if v != ""}
        before = {"parameters": shown(before_params), "tags": before_tags or {}}
        after = {
            "parameters": shown(after_params),
            "tags": after_tags or {},
            "create": self.by_action("create"),
            "update": (self.by_action("update") + self.by_action("replace") + self.by_action("upgrade")
                       + self.by_action("downgrade")),
            "delete": self.by_action("delete"),
        }
        return {"before": before, "after": after}
