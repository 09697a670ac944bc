# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install and update: the parts of a rack converged in dependency order, each step a part's
`ensure` (parts/), which compares what exists (run.state) with what is wanted and records each
difference in the plan; the plan applies it at once unless in check mode, so the ids later steps
need exist. In check mode a resource still to be created is CHECK_MODE_ID to its dependants."""

from __future__ import annotations

from . import apps
from . import delivery as L
from . import desired as D
from . import record
from .context import Run
from .naming import BUCKET_LOGS_PREFIX, system_tags
from .params import effective_parameters
from .parts import (cluster, compute, duplicates, entry, firewall, flowlogs, identity, kms, logs, nat, network, quotas,
                    refresh, storage)
from .plan import CHECK_MODE_ID, Plan
from .record import record_tags


def plan_all(run, previous_version=None):
    """The whole plan of an install or update (applied as it goes, unless in check mode): the parts,
    the replacement of outdated instances (performed after the wait: True when there is one), the
    record (on a rack recorded by another release, `previous_version`, the upgrade's entry). The
    rack module's run and the drift reading (checked) are this same code."""
    converge(run)
    rolled = plan_replacement(run)
    record.finish(run, run.wanted, run.tags, previous_version)
    return rolled


def checked_update(aws, region, identity, state):
    """The check-mode plan of an update of an existing rack with its recorded parameters and tags:
    what differs between the rack in AWS and what an update would converge it to (its drift).
    Reads only: no lock, no write."""
    wanted = effective_parameters({}, state.recorded_parameters)
    plan = Plan(True)
    run = Run(aws, region, identity, state.names, plan, state, wanted,
              dict(system_tags(state.names.rack), **state.user_tags), wait=False)
    plan_all(run)
    return run


def converge(run):
    """Every part of the rack, in the order AWS needs them; returns run.out (ids for the result)."""
    w = run.wanted
    compute.resolve_latest(run)
    quotas.check(run)
    key = kms.ensure(run)
    # the log bucket first: every log delivery below (and the apps') points at it
    storage.ensure(run.aws, run.plan, log_bucket(run), run.state.log_bucket)
    # the rack bucket's configuration, read once: its policy says whether apps still log into it
    current = storage.read_config(run.aws, run.names.bucket, logging=True) if run.state.bucket else None
    apps.move_access_logs(run, (current or {}).get("policy"))  # before the rack bucket's policy stops taking them
    storage.ensure(run.aws, run.plan, rack_bucket(run, key), run.state.bucket, current=current)
    logs.ensure(run.aws, run.plan, run.names.log_group, run.state.log_group, run.state.log_group_tags,
                w["log_retention"], run.tags, kms_key=key, new_key=key == run.new_kms_key)
    profile_arn = identity.ensure(run)
    vpc_id = network.ensure_vpc(run)
    flowlogs.ensure(run, vpc_id)
    igw_id = network.ensure_internet_gateway(run, vpc_id)
    public, private = network.ensure_subnets(run, vpc_id)
    network.ensure_public_routes(run, vpc_id, igw_id, public)
    nats, nats_pending = nat.ensure(run, public) if w["private"] else ([], [])
    router_sg, instances_sg = firewall.ensure(run, vpc_id)
    firewall.close_defaults(run, vpc_id)
    # the load balancer, the slowest part (minutes to become active), as soon as its subnets and group exist
    entry.ensure(run, private if w["internal_only"] and w["private"] else public, router_sg)
    lt_id, lt_version = compute.ensure_launch_template(run, profile_arn, instances_sg)
    cluster.ensure_cluster(run)
    asg_arn = compute.ensure_group(run, lt_id, lt_version, private if w["private"] else public)
    cluster.ensure_capacity_provider(run, asg_arn)
    if w["private"]:
        nat.available(run, nats_pending)  # made meanwhile: the NAT gateways' minutes overlap the rest
        network.ensure_private_routes(run, vpc_id, nats, private)
    for call in run.later:   # the load balancer's access logs (entry._create)
        call()
    duplicates.remove_extras(run)
    run.out.update(vpc_id=vpc_id, public_subnet_ids=public, private_subnet_ids=private, bucket=run.names.bucket,
                   log_group=run.names.log_group, kms_key=key, log_bucket=run.names.log_bucket)
    return run.out


def first_status(run):
    return "updating" if run.state.recorded_parameters else "installing"


def rack_bucket(run, key):
    """The rack's bucket: settings; its tags are the rack's record (record.py). SSE-KMS with the rack's
    key (`key`: the user's kms_key, or the rack's own) and a Bucket Key, as the apps' buckets; TLS only.
    It receives no log delivery: its own access logs, as every other log of the rack, go to the log bucket."""
    names, days = run.names, run.wanted["log_retention"]
    return storage.BucketSpec(
        names.bucket, run.region, record_tags(run.tags, run.wanted, first_status(run), run.deadline.seconds),
        D.lifecycle_rules(days), "logs expire after %d days" % days,
        D.tls_only_bucket_policy(run.identity.partition, names.bucket), "TLS only",
        logging={"TargetBucket": names.log_bucket, "TargetPrefix": BUCKET_LOGS_PREFIX}, kms_key=key)


def log_bucket(run):
    """The rack's log bucket: every log AWS delivers for the rack, each service under its prefix and
    allowed by its statement of the bucket policy: the rack bucket's server access logs (logs/bucket/:
    a bucket should not log into itself), its apps' buckets' (logs/apps/), the VPC flow logs
    (logs/flow/), the load balancer's access logs (logs/router/). SSE-S3: the only default encryption
    the load balancer's access logs and S3's server access logs are delivered to; no access logs of
    its own (docs/security.md)."""
    names, ident, days = run.names, run.identity, run.wanted["log_retention"]
    bucket, partition, account = names.log_bucket, ident.partition, ident.account
    policy = D.tls_only_bucket_policy(partition, bucket)
    policy["Statement"] += [
        L.bucket_logs_statement(partition, bucket, names.bucket, account),
        D.access_logs_statement(partition, bucket, names.rack, account),
        L.router_logs_statement(partition, run.region, bucket, account),
    ] + L.flow_logs_statements(partition, run.region, bucket, account)
    return storage.BucketSpec(
        bucket, run.region, run.tags, D.lifecycle_rules(days), "logs expire after %d days" % days, policy,
        "TLS only; log deliveries: the rack bucket's S3 access logs (logs/bucket/), the apps' (logs/apps/), flow"
        " logs (logs/flow/), the load balancer's access logs (logs/router/)", sync_tags=True)


# -- after the parts: replacing instances, waiting until usable ------------------------------------------------
REFRESH_REASON = "instance refresh: each new instance in service before an old one is terminated"


def plan_replacement(run):
    """Start (as a change of the plan) the instance refresh that replaces instances of an older launch
    template version, type or image, or outside the group's subnets; or adopt the refresh a killed run
    left in progress. Returns what `replace` follows after the wait, or None."""
    asg = run.state.asg
    if asg is None:
        return None
    name = asg["AutoScalingGroupName"]
    moving = run.out.get("refresh_to")  # the group's new launch template version, taken by the refresh
    moves_subnets = any(c["resource"] == "autoscaling_group" and "VPCZoneIdentifier" in c.get("changes", {})
                        for c in run.plan.changes if c["action"] == "update")
    if run.check_mode:
        if moving or moves_subnets:
            run.plan.changes.append({"resource": "instances", "name": name, "action": "replace",
                                     "changes": {"reason": REFRESH_REASON}})
        return None
    subnets = set(run.out.get("private_subnet_ids") or run.out.get("public_subnet_ids") or []) - {CHECK_MODE_ID}
    old = compute.outdated(run, asg, run.out.get("image_id"), subnets or None)
    if not (moving or old):
        return None
    spec = moving or run.out["launch_template_spec"]
    count = len(old) or asg["DesiredCapacity"]
    running = refresh.active(run.aws, name)
    detail = {"reason": REFRESH_REASON, "instances": old or "all"}
    if running and refresh.is_for(running, spec):
        # a refresh to this very configuration, left by a run that was killed: follow it, start none
        refresh_id = running["InstanceRefreshId"]
        detail["reason"] = "following instance refresh %s, in progress" % refresh_id
        run.plan.change("instances", name, "replace", lambda: refresh_id, detail=detail)
        return {"group": name, "id": refresh_id, "instances": count}
    if running:
        if run.wait:
            run.plan.writing()
        else:
            run.warnings.append("instance refresh %s of %s (started outside this run) is in progress; rerun when "
                                "it ends to replace the instances of an older type or image" % (
                                    running["InstanceRefreshId"], name))
        run.plan.changes.append({"resource": "instances", "name": name, "action": "replace", "changes": dict(
            detail, reason="once instance refresh %s (started outside this run) ends" % running["InstanceRefreshId"])})
        return {"group": name, "after": running["InstanceRefreshId"], "spec": spec, "instances": count,
                "skip_matching": bool(moving)}
    refresh_id = run.plan.change("instances", name, "replace",
                                 lambda: refresh.start(run.aws, name, spec, skip_matching=bool(moving)), detail=detail)
    if not run.wait:
        run.warnings.append("instance refresh %s replaces %d instance(s) of %s in AWS; this run did not wait for it "
                            "(wait: false)" % (refresh_id, count, name))
    return {"group": name, "id": refresh_id, "instances": count}


def replace(run, planned):
    """Follow the refresh `plan_replacement` started or adopted (after waiting out another's first)."""
    name = planned["group"]
    if planned.get("after"):
        refresh.follow(run, name, planned["after"], planned["instances"], ours=False)
        asg = compute.describe_group(run.aws, name)
        on_spec = str((asg.get("LaunchTemplate") or {}).get("Version")) == str(planned["spec"]["Version"])
        if on_spec and not compute.outdated(run, asg, run.out.get("image_id")):
            return  # the other refresh did it
        planned["id"] = refresh.start(run.aws, name, planned["spec"], skip_matching=planned["skip_matching"])
    refresh.follow(run, name, planned["id"], planned["instances"])
    asg = compute.describe_group(run.aws, name)
    run.out["instances"] = {"desired": asg["DesiredCapacity"], "in_service": len(compute.in_service(asg)),
                            "registered": None}


def wait_usable(run):
    """Until the group's instances are in service and registered in the cluster (their ECS agents
    register them a little after the group counts them in service: only then can the rack run a
    task) and the load balancer is active, or wait_timeout."""
    name, lb_arn = run.out["autoscaling_group_name"], run.out["load_balancer"]["arn"]

    seen = {}

    def what():
        """The step, with the counts of the last look: `instances 2/3 in service`, then
        `load balancer provisioning` once they all are, then `instances 2/3 registered`."""
        if "registered" in seen:
            return "instances %d/%d registered in the cluster" % (seen["registered"], seen["desired"])
        if "lb" in seen:
            return "the load balancer to be active (%s; instances %d/%d in service)" % (
                seen["lb"], seen["in_service"], seen["desired"])
        if "desired" in seen:
            return "instances %d/%d in service" % (seen["in_service"], seen["desired"])
        return "the instances in service and registered in the cluster and the load balancer active"

    def usable():
        asg = compute.describe_group(run.aws, name)
        ready = compute.in_service(asg)
        run.out["instances"] = {"desired": asg["DesiredCapacity"], "in_service": len(ready), "registered": None}
        seen.update(desired=asg["DesiredCapacity"], in_service=len(ready))
        seen.pop("lb", None)
        seen.pop("registered", None)
        if len(ready) < asg["DesiredCapacity"]:
            compute.launch_failure(run, name)
            return False
        seen["lb"] = entry.state(run, lb_arn)
        if seen["lb"] != "active":
            return False
        seen["registered"] = run.out["instances"]["registered"] = cluster.registered(run)
        return seen["registered"] >= asg["DesiredCapacity"]
    run.deadline.wait_for(what, usable)
