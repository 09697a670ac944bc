# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instance refresh: the replacement of the Auto Scaling group's instances by AWS itself
(StartInstanceRefresh), launching each new instance before an old one is terminated.

Amazon EC2 Auto Scaling User Guide, "How an instance refresh works": with MinHealthyPercentage 100
and MaxHealthyPercentage 200 the group launches the replacements first and terminates an old
instance only once a new one is InService and its warm-up has passed, so capacity never drops
below the desired count. SkipMatching leaves instances already launched from the desired launch
template version; AutoRollback (which needs a DesiredConfiguration with a version number) puts the
old configuration back when the refresh fails ("Undo changes with a rollback"). The desired
configuration becomes the group's only when the refresh succeeds.

A refresh goes on in AWS whatever happens to the run: a run that was killed leaves it running, and
the next run follows it (DescribeInstanceRefreshes) instead of starting another, which AWS would
refuse anyway (InstanceRefreshInProgress)."""

from __future__ import annotations

from ..aws import Deadline
from ..errors import RackError

ACTIVE = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")
FAILED = ("Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed")
# The seconds after a new instance is InService before it counts as replaced and an old one may go:
# time for the ECS agent to start and register the instance in the cluster. Without it AWS would
# take the group's DefaultInstanceWarmup, else its health check grace period (300 s here:
# RefreshPreferences.InstanceWarmup in the API reference).
INSTANCE_WARMUP = 60
# The refresh's own timeout (not the run's wait_timeout): REFRESH_BASE + REFRESH_PER_INSTANCE for
# each instance to replace. An instance takes 1-3 minutes to be InService, then INSTANCE_WARMUP;
# with MaxHealthyPercentage 200 a batch is the whole group, so this leaves room for relaunches.
REFRESH_BASE = 600
REFRESH_PER_INSTANCE = 300


def timeout(instances):
    """Seconds the run follows a refresh of `instances` instances before it gives up on it."""
    return REFRESH_BASE + REFRESH_PER_INSTANCE * max(1, instances)


def preferences(skip_matching=True):
    return {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200, "SkipMatching": skip_matching,
            "AutoRollback": True, "InstanceWarmup": INSTANCE_WARMUP}


def latest(aws, group):
    """The group's newest instance refresh, or None."""
    found = aws.call("autoscaling", "describe_instance_refreshes", "auto scaling group %s" % group,
                     AutoScalingGroupName=group, MaxRecords=1).get("InstanceRefreshes") or []
    return found[0] if found else None


def active(aws, group):
    """The group's refresh in progress (started by a run, or by anyone), or None."""
    newest = latest(aws, group)
    return newest if newest and newest.get("Status") in ACTIVE else None


def is_for(refresh, spec):
    """Whether a refresh moves the group to the launch template version `spec`."""
    desired = ((refresh or {}).get("DesiredConfiguration") or {}).get("LaunchTemplate") or {}
    return (desired.get("LaunchTemplateId"), str(desired.get("Version"))) == (spec["LaunchTemplateId"],
                                                                              str(spec["Version"]))


def start(aws, group, spec, skip_matching=True):
    """StartInstanceRefresh to the launch template version `spec`; returns its id."""
    return aws.call("autoscaling", "start_instance_refresh", "auto scaling group %s" % group,
                    AutoScalingGroupName=group, Strategy="Rolling",
                    DesiredConfiguration={"LaunchTemplate": dict(spec)},
                    Preferences=preferences(skip_matching))["InstanceRefreshId"]


def progress_words(refresh):
    """'replacing instances: 50% (1/2 replaced)' from PercentageComplete and InstancesToUpdate."""
    pct, left = refresh.get("PercentageComplete") or 0, refresh.get("InstancesToUpdate") or 0
    if refresh.get("Status") == "Successful":
        pct, left = 100, 0
    total = left if pct <= 0 else (round(left * 100.0 / (100 - pct)) if pct < 100 else None)
    if total is None:
        return "replacing instances: 100%"
    return "replacing instances: %d%% (%d/%d replaced)" % (pct, total - left, total)


def summary(refresh):
    """What rack_info says of a refresh in progress: its id, status, PercentageComplete,
    InstancesToUpdate and progress_words."""
    return {"id": refresh.get("InstanceRefreshId"), "status": refresh.get("Status"),
            "percentage_complete": refresh.get("PercentageComplete") or 0,
            "instances_to_update": refresh.get("InstancesToUpdate") or 0, "progress": progress_words(refresh)}


def follow(run, group, refresh_id, instances, ours=True):
    """Poll the refresh until it ends, with its own timeout; the progress lines say how far it is.
    A refresh of this rack's wanted configuration that fails, is cancelled or rolls back fails the
    run with AWS's StatusReason; another's (started outside the collection) is only waited out.
    Returns the refresh's last description."""
    seconds = timeout(instances)
    progress = run.deadline.progress
    deadline = Deadline(seconds, progress=progress)
    seen = {}

    def ended():
        found = run.aws.call("autoscaling", "describe_instance_refreshes", "auto scaling group %s" % group,
                             AutoScalingGroupName=group, InstanceRefreshIds=[refresh_id]).get("InstanceRefreshes")
        seen["refresh"] = refresh = (found or [{}])[0]
        status = refresh.get("Status", "Failed")
        note = "%s, instance refresh %s %s" % (progress_words(refresh), refresh_id, status)
        if not ours:
            note += " (started outside this run)"
        progress.note(note)
        return status not in ACTIVE

    # the run's calls meanwhile retry within the refresh's timeout, not the run's wait_timeout
    saved, run.aws.deadline = run.aws.deadline, deadline
    try:
        deadline.wait_for("instance refresh %s of %s (timeout %ds: %d s + %d s an instance)" % (
            refresh_id, group, seconds, REFRESH_BASE, REFRESH_PER_INSTANCE), ended)
    finally:
        run.aws.deadline = saved
    refresh = seen["refresh"]
    if ours and refresh.get("Status") in FAILED:
        raise RackError("instance refresh %s of auto scaling group %s ended %s: %s" % (
            refresh_id, group, refresh.get("Status"), refresh.get("StatusReason") or "no reason given"),
            resource="auto scaling group %s" % group, error_code="InstanceRefresh%s" % refresh.get("Status"),
            instance_refresh=refresh_id)
    return refresh
