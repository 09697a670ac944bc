"""Instance refresh in the local AWS: moto 5.2.5 has no StartInstanceRefresh, DescribeInstanceRefreshes,
CancelInstanceRefresh or RollbackInstanceRefresh (it answers that the action is not implemented).
This models them as AWS documents them:

  Amazon EC2 Auto Scaling API Reference: StartInstanceRefresh, DescribeInstanceRefreshes,
    CancelInstanceRefresh, RollbackInstanceRefresh, InstanceRefresh, RefreshPreferences
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_StartInstanceRefresh.html, ...),
    and the botocore model (botocore/data/autoscaling/2011-01-01/service-2.json), whose shapes
    moto's serializer writes;
  Amazon EC2 Auto Scaling User Guide: "How an instance refresh works"
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/instance-refresh-overview.html),
    "Undo changes with a rollback" (instance-refresh-rollback.html), "Use skip matching"
    (asg-instance-refresh-skip-matching.html), "Instance maintenance policies"
    (ec2-auto-scaling-instance-maintenance-policy.html).

What is modelled:
- Status Pending (until the next Auto Scaling request) -> InProgress -> Successful, or Failed, or
  Cancelling -> Cancelled, or (AutoRollback, or RollbackInstanceRefresh) RollbackInProgress ->
  RollbackSuccessful. One active refresh a group: a second StartInstanceRefresh answers
  InstanceRefreshInProgress, "An Instance Refresh is already in progress and blocks the execution
  of this Instance Refresh." (AWS's words).
- Replacement in batches bounded by MinHealthyPercentage (default 90) and MaxHealthyPercentage
  (default 100) of the desired capacity: with 100/200 every replacement is launched first and an
  old instance is terminated only once a new one is InService and its InstanceWarmup has passed
  (the group never has fewer healthy instances than desired); with a minimum below 100 old
  instances are terminated first, as far as the minimum allows.
- PercentageComplete and InstancesToUpdate: a new instance counts once InService and warmed up.
- SkipMatching: instances already launched from the desired launch template version (and of its
  instance type) are not replaced.
- DesiredConfiguration: new instances are launched from it, and the group takes it when the refresh
  succeeds (not before: a rollback leaves the group as it was).
- A launch that fails (realism's failed_launches: an image the instance type cannot run) fails the
  refresh: StatusReason names the failed scaling activity's StatusMessage (the wording around it is
  this model's). With AutoRollback the refresh then rolls back: the instances it launched are
  replaced by instances of the previous configuration, RollbackSuccessful.
- Timing: new instances are Pending then InService in realism's `instance_pending` (scripts/realism.py);
  InstanceWarmup is scaled by realism's `scale` (0 with realism off: moto's "at once").

moto also reports every instance of a group as launched from the template's *default* version;
AWS reports the version it was launched from (DescribeAutoScalingGroups, Instance.LaunchTemplate).
The fix records it at launch: skip matching depends on it.
"""

from __future__ import annotations

import datetime
import math
import threading
import time
import uuid

ACTIVE = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")
IN_PROGRESS_MESSAGE = "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh."
LOCK = threading.RLock()


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _scale():
    import realism  # scripts/realism.py, beside this file
    return realism.REALISM.scale if realism.REALISM.on() else 0.0


def _shown_state(state):
    return state.lifecycle_state  # realism's property: Pending until its time


class Refresh:
    def __init__(self, group, preferences, desired, strategy):
        self.id = str(uuid.uuid4())
        self.group_name = group.name
        self.status = "Pending"
        self.reason = None
        self.start = _utcnow()
        self.end = None
        self.strategy = strategy or "Rolling"
        prefs = dict(preferences or {})
        self.preferences = prefs
        self.min_healthy = int(prefs.get("MinHealthyPercentage", 90))
        self.max_healthy = int(prefs.get("MaxHealthyPercentage", 100))
        warmup = prefs.get("InstanceWarmup")
        if warmup is None:
            warmup = group.health_check_grace_period or 0
        self.warmup = float(warmup)
        self.auto_rollback = _true(prefs.get("AutoRollback"))
        self.desired = desired or None          # {"LaunchTemplate": {...}} or None
        self.previous = _group_spec(group)       # the group's launch template before the refresh
        target = _resolve(group, (desired or {}).get("LaunchTemplate")) or _resolve(group, self.previous)
        skip = _true(prefs.get("SkipMatching"))
        self.doomed = [s.instance.id for s in group.instance_states
                       if not (skip and _matches(s, target))]
        self.total = len(self.doomed)
        self.fresh = []           # instances this phase launched
        self.ready_at = {}        # new instance id -> when it counts as replaced (InService + warmup)
        self.credited = 0
        self.terminated = 0       # instances this phase terminated
        self.rollback = None      # RollbackDetails

    # -- answers ---------------------------------------------------------------------------------------
    def answer(self):
        out = {"InstanceRefreshId": self.id, "AutoScalingGroupName": self.group_name, "Status": self.status,
               "StartTime": self.start, "Strategy": self.strategy,
               "PercentageComplete": self.percentage(), "InstancesToUpdate": self.to_update(),
               "ProgressDetails": {"LivePoolProgress": {"PercentageComplete": self.percentage(),
                                                        "InstancesToUpdate": self.to_update()}},
               "Preferences": self._preferences()}
        if self.reason:
            out["StatusReason"] = self.reason
        if self.end:
            out["EndTime"] = self.end
        if self.desired:
            out["DesiredConfiguration"] = self.desired
        if self.rollback:
            out["RollbackDetails"] = self.rollback
        return out

    def _preferences(self):
        prefs = {"MinHealthyPercentage": self.min_healthy, "MaxHealthyPercentage": self.max_healthy,
                 "InstanceWarmup": int(self.warmup), "SkipMatching": _true(self.preferences.get("SkipMatching")),
                 "AutoRollback": self.auto_rollback,
                 "ScaleInProtectedInstances": self.preferences.get("ScaleInProtectedInstances", "Ignore"),
                 "StandbyInstances": self.preferences.get("StandbyInstances", "Ignore")}
        return prefs

    def percentage(self):
        """PercentageComplete: replacements InService and warmed up; back down to 0 during a rollback."""
        if self.status == "Successful":
            return 100
        if self.status.startswith("Rollback"):
            return 0 if self.status == "RollbackSuccessful" else max(
                0, (self.rollback or {}).get("PercentageCompleteOnRollback", 0) - self._credited_pct())
        return self._credited_pct()

    def _credited_pct(self):
        return int(100 * self.credited / self.total) if self.total else 100

    def to_update(self):
        if self.status == "Successful":
            return 0
        if self.status.startswith("Rollback"):
            return (self.rollback or {}).get("InstancesToUpdateOnRollback", 0)
        return max(0, self.total - self.credited)

    # -- state changes ---------------------------------------------------------------------------------
    def finish(self, status, reason=None):
        self.status = status
        if reason:
            self.reason = reason
        self.end = _utcnow()

    def fail(self, group, reason):
        if self.auto_rollback and self.desired:
            self.start_rollback(group, "Automatic rollback: the instance refresh failed. %s" % reason, reason)
        else:
            self.finish("Failed", reason)

    def start_rollback(self, group, why, reason=None):
        self.rollback = {"RollbackReason": why, "RollbackStartTime": _utcnow(),
                         "PercentageCompleteOnRollback": self._credited_pct(),
                         "InstancesToUpdateOnRollback": max(0, self.total - self.credited)}
        self.status = "RollbackInProgress"
        self.reason = reason or why
        live = {s.instance.id for s in group.instance_states}
        # the rollback terminates the instances this refresh launched and replaces, with the previous
        # configuration, the old instances it had terminated
        self.doomed = [i for i in self.fresh if i in live]
        self.total = self.terminated
        self.fresh, self.ready_at, self.credited, self.terminated = [], {}, 0, 0

    def advance(self, group):
        if self.status == "Pending":
            self.status = "InProgress"
            return
        if self.status == "Cancelling":
            self._trim(group)
            self.finish("Cancelled", "The instance refresh was cancelled.")
            return
        if self.status == "InProgress":
            if self._roll(group, self.desired and self.desired.get("LaunchTemplate")):
                if self.desired:
                    group._set_launch_configuration(None, dict(self.desired["LaunchTemplate"]), None)
                self.finish("Successful", None)
                self.reason = None
        elif self.status == "RollbackInProgress":
            if self._roll(group, self.previous):
                self.finish("RollbackSuccessful")

    def _roll(self, group, spec):
        """One step of launch-before-terminate (or terminate-first) replacement; True once done."""
        now = time.monotonic()
        states = {s.instance.id: s for s in group.instance_states}
        self.doomed = [i for i in self.doomed if i in states]
        self.fresh = [i for i in self.fresh if i in states]
        for i in self.fresh:
            if i not in self.ready_at and _shown_state(states[i]) == "InService":
                self.ready_at[i] = now + self.warmup * _scale()
        ready = [i for i in self.fresh if self.ready_at.get(i, math.inf) <= now]
        self.credited = min(len(ready), self.total)
        desired = group.desired_capacity or 0
        min_healthy = math.ceil(desired * self.min_healthy / 100.0)
        max_total = max(desired, math.floor(desired * self.max_healthy / 100.0))
        healthy = [i for i, s in states.items() if _shown_state(s) == "InService"
                   and (i not in self.fresh or i in ready)]
        # terminate as many old instances as the minimum healthy allows
        allowed = len(healthy) - min_healthy
        outstanding = len([i for i in self.fresh if i not in ready])
        if allowed <= 0 and outstanding == 0 and len(states) >= max_total and self.doomed:
            allowed = 1  # min = max: one at a time, terminate first
        # an instance that is not healthy anyway goes at once; healthy ones as far as the minimum allows
        victims = [i for i in self.doomed if i not in healthy]
        victims += [i for i in self.doomed if i in healthy][:max(0, allowed)]
        if victims:
            _terminate(group, victims)
            self.doomed = [i for i in self.doomed if i not in victims]
            self.terminated += len(victims)
            states = {s.instance.id: s for s in group.instance_states}
        # launch replacements within the maximum
        owed = self.total - len(self.fresh)
        room = max_total - len(states)
        count = min(max(0, owed), max(0, room))
        if count:
            launched, failure = _launch(group, spec, count)
            self.fresh += launched
            if not launched and failure:
                self.fail(group, failure)
                return False
        return not self.doomed and all(self.ready_at.get(i, math.inf) <= now for i in self.fresh) \
            and len(self.fresh) >= self.total

    def _trim(self, group):
        """A cancelled refresh leaves what it replaced; the group returns to its desired capacity,
        terminating by its default termination policy (instances of the oldest configuration first)."""
        extra = len(group.instance_states) - (group.desired_capacity or 0)
        victims = self.doomed[:max(0, extra)]
        if victims:
            _terminate(group, victims)


def _true(value):
    return str(value).lower() == "true" if not isinstance(value, bool) else value


def _group_spec(group):
    lt = getattr(group, "ec2_launch_template", None)
    if lt is None:
        return None
    return {"LaunchTemplateId": lt.id, "Version": str(group.launch_template_version)}


def _resolve(group, spec):
    """(template id, version number, instance type) of a launch template spec."""
    if not spec:
        return None
    backend = group.ec2_backend
    if spec.get("LaunchTemplateId"):
        template = backend.get_launch_template(spec["LaunchTemplateId"])
    else:
        template = backend.get_launch_template_by_name(spec["LaunchTemplateName"])
    version = template.get_version(spec.get("Version") or "$Default")
    return template.id, int(version.number), version.instance_type


def _matches(state, target):
    launched = getattr(state, "launched_from", None)
    if not target or not launched:
        return False
    return (launched["LaunchTemplateId"], int(launched["Version"])) == target[:2] and \
        state.instance.instance_type == target[2]


def _terminate(group, ids):
    group.instance_states = [s for s in group.instance_states if s.instance.id not in ids]
    group.ec2_backend.terminate_instances(list(ids))


def _launch(group, spec, count):
    """Launch `count` instances of the group from `spec` (the group's own settings kept):
    ([new ids], failure message or None)."""
    import realism
    before = {s.instance.id for s in group.instance_states}
    saved = (group.ec2_launch_template, group.launch_template_version,
             getattr(group, "provided_launch_template_version", None))
    key = (group.account_id, group.region, group.name)  # realism's key of the group's scaling activities
    with realism.REALISM.lock:
        activities_before = len(realism.REALISM.activities.get(key, []))
    try:
        if spec:
            group._set_launch_configuration(None, dict(spec), None)
        group.replace_autoscaling_group_instances(count, group.get_propagated_tags())
    finally:
        group.ec2_launch_template, group.launch_template_version, group.provided_launch_template_version = saved
    launched = [s.instance.id for s in group.instance_states if s.instance.id not in before]
    failure = None
    if not launched:
        with realism.REALISM.lock:
            acts = realism.REALISM.activities.get(key, [])
            new = acts[:len(acts) - activities_before]
        if new:
            failure = "%d instance(s) failed to launch: %s" % (count, new[0]["StatusMessage"])
    return launched, failure


def _refreshes(group):
    """The group's refreshes, newest first (kept on moto's group: a reset or a deleted group forgets them)."""
    if not hasattr(group, "instance_refreshes"):
        group.instance_refreshes = []
    return group.instance_refreshes


def advance_all(backend):
    """Move every active refresh of the backend's groups on (before each Auto Scaling request)."""
    with LOCK:
        for group in list(backend.autoscaling_groups.values()):
            refreshes = _refreshes(group)
            if not refreshes or refreshes[0].status not in ACTIVE:
                continue
            active = refreshes[0]
            try:
                active.advance(group)
            except Exception as e:  # noqa: BLE001 - a model error must not fail the request that ran it
                active.finish("Failed", "local AWS model error: %r" % e)


def install():
    from moto.autoscaling import models as asm
    from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    class InstanceRefreshInProgress(AutoscalingClientError):
        code = "InstanceRefreshInProgress"
        message = IN_PROGRESS_MESSAGE

    class ActiveInstanceRefreshNotFound(AutoscalingClientError):
        code = "ActiveInstanceRefreshNotFound"

    class IrreversibleInstanceRefresh(AutoscalingClientError):
        code = "IrreversibleInstanceRefresh"

    # The launch template version each instance was launched from (AWS's Instance.LaunchTemplate).
    original_init = asm.InstanceState.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        group = self.auto_scaling_group
        lt = getattr(group, "ec2_launch_template", None) if group is not None else None
        self.launched_from = None
        if lt is not None:
            self.launched_from = {"LaunchTemplateId": lt.id, "LaunchTemplateName": lt.name,
                                  "Version": str(lt.get_version(group.launch_template_version).number)}

    def launch_template(self):
        return getattr(self, "launched_from", None)

    asm.InstanceState.__init__ = init
    asm.InstanceState.launch_template = property(launch_template)

    def group_of(response, name):
        group = response.autoscaling_backend.autoscaling_groups.get(name)
        if group is None:
            raise ValidationError("AutoScalingGroup name not found - AutoScalingGroup %s not found" % name)
        return group

    def start_instance_refresh(self):
        name = self._get_param("AutoScalingGroupName")
        group = group_of(self, name)
        with LOCK:
            refreshes = _refreshes(group)
            if refreshes and refreshes[0].status in ACTIVE:
                raise InstanceRefreshInProgress()
            prefs = self._get_param("Preferences") or {}
            desired = self._get_param("DesiredConfiguration") or None
            low, high = int(prefs.get("MinHealthyPercentage", 90)), int(prefs.get("MaxHealthyPercentage", 100))
            if "MaxHealthyPercentage" in prefs and "MinHealthyPercentage" not in prefs:
                raise ValidationError("You must specify MinHealthyPercentage when you specify MaxHealthyPercentage.")
            if not (0 <= low <= 100 and 100 <= high <= 200 and high - low <= 100):
                raise ValidationError("The difference between MaxHealthyPercentage and MinHealthyPercentage cannot "
                                      "be greater than 100.")
            if _true(prefs.get("AutoRollback")):
                spec = (desired or {}).get("LaunchTemplate") or {}
                if not spec or str(spec.get("Version", "$Default")).startswith("$"):
                    raise ValidationError("AutoRollback requires a desired configuration whose launch template "
                                          "version is a number (not $Latest or $Default).")
            refresh = Refresh(group, prefs, desired, self._get_param("Strategy"))
            refreshes.insert(0, refresh)
        return ActionResult({"InstanceRefreshId": refresh.id})

    def describe_instance_refreshes(self):
        name = self._get_param("AutoScalingGroupName")
        ids = self._get_param("InstanceRefreshIds") or []
        with LOCK:
            group = self.autoscaling_backend.autoscaling_groups.get(name)
            found = [r.answer() for r in (_refreshes(group) if group is not None else []) if not ids or r.id in ids]
        return ActionResult({"InstanceRefreshes": found})

    def active_of(self, name):
        refreshes = _refreshes(group_of(self, name))
        if not refreshes or refreshes[0].status not in ACTIVE:
            raise ActiveInstanceRefreshNotFound("No in progress or pending Instance Refresh found for Auto Scaling "
                                                "group %s" % name)
        return refreshes[0]

    def cancel_instance_refresh(self):
        name = self._get_param("AutoScalingGroupName")
        with LOCK:
            refresh = active_of(self, name)
            refresh.status = "Cancelling"
        return ActionResult({"InstanceRefreshId": refresh.id})

    def rollback_instance_refresh(self):
        name = self._get_param("AutoScalingGroupName")
        group = group_of(self, name)
        with LOCK:
            refresh = active_of(self, name)
            if not refresh.desired or refresh.status == "RollbackInProgress":
                raise IrreversibleInstanceRefresh("The instance refresh cannot be rolled back: it has no desired "
                                                  "configuration.")
            refresh.start_rollback(group, "Rollback initiated by RollbackInstanceRefresh.")
        return ActionResult({"InstanceRefreshId": refresh.id})

    AutoScalingResponse.start_instance_refresh = start_instance_refresh
    AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes
    AutoScalingResponse.cancel_instance_refresh = cancel_instance_refresh
    AutoScalingResponse.rollback_instance_refresh = rollback_instance_refresh

    original_call = AutoScalingResponse.call_action

    def call_action(self):
        advance_all(self.autoscaling_backend)
        return original_call(self)

    AutoScalingResponse.call_action = call_action
