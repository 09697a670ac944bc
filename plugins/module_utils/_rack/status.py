# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Status: the one place where a rack's (or an app's) status word is decided, and the `rack` and
`app` dictionaries that rack, rack_info, the inventory, app and app_info return.

Convox's words: running, converging (instances not all in service or not all registered in the
ECS cluster, or the load balancer not yet active), installing, updating, uninstalling (a run works on the rack: recorded on its bucket and
believed while a run holds the rack's run lock, holder.py, or, where the lock was not read, until the
record's expiry, record.py), failed (a part is missing, named in `missing`; a run failed or was
killed, with the step it had reached),
unknown (parts could not be read), and for what a run just did, uninstalled."""

from __future__ import annotations

from .holder import interrupted
from .record import ERROR_TAG, RUN_STATUSES, VERSION_TAG, status_current
from .state import NOT_READ, found


class Outcome:
    """What a run just did to the rack, for the status it returns."""

    def __init__(self, operation, changed, check_mode, waited=False):
        self.operation = operation  # "install" (install or update) or "uninstall"
        self.changed = changed
        self.check_mode = check_mode
        self.waited = waited        # the run waited until the rack was usable


def required_parts(state):
    """The parts a rack must have, by name, and whether each exists."""
    parts = {
        "bucket": state.bucket is not None,
        "vpc": state.vpc is not None,
        "internet_gateway": state.igw is not None,
        "public_subnets": len(state.subnets_of("public")) >= 2,
        "security_groups": set(state.security_groups) >= {"router", "instances"},
        "instance_role": state.role is not None and state.instance_profile is not None,
        "launch_template": state.launch_template is not None,
        "autoscaling_group": state.asg is not None,
        "ecs_cluster": state.cluster is not None,
        "capacity_provider": state.capacity_provider is not None,
        "load_balancer": state.load_balancer is not None,
        "listener": bool(state.listeners),
        "log_group": state.log_group is not None,
        # the rack's own key (alias/convox/<rack>), unless it records a key of the user's (kms_key)
        "kms_key": state.kms_key is not None or bool(state.recorded_parameters.get("kms_key")),
    }
    if state.recorded_parameters.get("private"):
        parts["private_subnets"] = len(state.subnets_of("private")) >= 2
        parts["nat_gateways"] = bool(state.nat_gateways)
    return parts


def instance_counts(state):
    asg = found(state.asg)
    in_service = [i for i in asg.get("Instances", [])
                  if i.get("LifecycleState") == "InService" and i.get("HealthStatus", "Healthy") == "Healthy"]
    return {
        "desired": asg.get("DesiredCapacity", 0),
        "in_service": len(in_service),
        "registered": found(state.cluster).get("registeredContainerInstancesCount", 0),
    }


def decide(state, outcome=None, unread=False, unresolved=None):
    """(status, missing parts) of the rack; `outcome`: what a run just did to it (None for a
    reading); `unread`: parts could not be read; `unresolved`: why its parts cannot be told apart."""
    if unread:
        return "unknown", []
    if unresolved:
        return "failed", [unresolved]
    if outcome is not None and outcome.operation == "uninstall":
        return ("uninstalling" if outcome.changed and outcome.check_mode else "uninstalled"), []
    if outcome is not None and outcome.changed and outcome.check_mode:
        return ("updating" if state.bucket else "installing"), []
    if outcome is not None and outcome.waited:
        return "running", []
    if outcome is not None and outcome.changed:
        return "converging", []
    return _from_what_exists(state)


def _from_what_exists(state):
    recorded = state.recorded_status
    if recorded in RUN_STATUSES:
        if state.lock is NOT_READ:
            # The lock was not read: the record is believed until its expiry.
            if status_current(state.tags):
                return recorded, []
        else:
            # A run works on the rack only while it holds the rack's run lock; a killed one left it stale.
            why = interrupted(state.lock, recorded)
            if why is None:
                return recorded, []
            return "failed", [why]
    if recorded == "failed":
        return "failed", ["last run failed: %s" % (state.tags or {}).get(ERROR_TAG, "")]
    missing = sorted(k for k, ok in required_parts(state).items() if not ok)
    if missing:
        return "failed", missing
    counts = instance_counts(state)
    lb_state = (found(state.load_balancer).get("State") or {}).get("Code", "active")
    if lb_state == "failed":
        return "failed", ["load_balancer (state failed)"]
    if counts["in_service"] < counts["desired"] or counts["registered"] < counts["desired"] or lb_state != "active":
        return "converging", []
    return "running", []


def lb_dict(lb, listeners):
    """The router as read: its ARN and DNS name, where its access logs go, whether deletion protection
    is on, its listeners (None for what a reading did not read)."""
    attrs = lb.get("attributes")
    read = [x for x in listeners or [] if isinstance(x, dict)]
    unread = not lb or len(read) != len(listeners or [])
    return {
        "arn": lb.get("LoadBalancerArn"), "dns_name": lb.get("DNSName"),
        "access_logs": ("s3://%s/%s" % (attrs.get("access_logs.s3.bucket"), attrs.get("access_logs.s3.prefix"))
                        if attrs.get("access_logs.s3.enabled") == "true" else "") if attrs is not None else None,
        "deletion_protection": attrs.get("deletion_protection.enabled") == "true" if attrs is not None else None,
        "listeners": [{"port": x.get("Port"), "protocol": x.get("Protocol"),
                       "action": (x.get("DefaultActions") or [{}])[0].get("Type")} for x in
                      sorted(read, key=lambda x: x.get("Port") or 0)] if not unread else None,
    }


def rack_dict(state, region, status=None, missing=None, parameters=None):
    """The `rack` return value shared by rack, rack_info and the inventory."""
    if status is None:
        status, missing = decide(state)
    lb = found(state.load_balancer)
    return {
        "name": state.names.rack,
        "region": region,
        "status": status,
        "parameters": parameters if parameters is not None else state.recorded_parameters,
        "version": state.tags.get(VERSION_TAG),
        "vpc_id": found(state.vpc).get("VpcId"),
        "public_subnet_ids": [s["SubnetId"] for s in state.subnets_of("public")],
        "private_subnet_ids": [s["SubnetId"] for s in state.subnets_of("private")],
        "cluster_name": found(state.cluster).get("clusterName"),
        "autoscaling_group_name": found(state.asg).get("AutoScalingGroupName"),
        "load_balancer": lb_dict(lb, state.listeners),
        "bucket": (state.bucket or {}).get("name"),
        "log_bucket": (state.log_bucket or {}).get("name"),
        "flow_log_id": ([f.get("FlowLogId") for f in state.flow_logs if isinstance(f, dict)] or [None])[0],
        "log_group": found(state.log_group).get("logGroupName"),
        "kms_key": state.recorded_parameters.get("kms_key") or found(state.kms_key).get("Arn"),
        "tags": state.user_tags,
        "instances": instance_counts(state),
        "apps": list(state.apps),
        "missing": missing or [],
    }


# -- apps --------------------------------------------------------------------------------------------------------
def app_status(state):
    """running when every part of the app is there, failed (naming what is missing) otherwise."""
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
