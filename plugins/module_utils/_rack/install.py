# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install and update: the parts of a rack converged in dependency order, each step a part's
`ensure` (parts/), which compares what exists (run.state) with what is wanted and records each
difference in the plan; the plan applies it at once unless in check mode, so the ids later steps
need exist. In check mode a resource still to be created is CHECK_MODE_ID to its dependants."""

from __future__ import annotations

from . import delivery as L
from . import desired as D
from .naming import BUCKET_LOGS_PREFIX
from .parts import (cluster, compute, duplicates, entry, firewall, flowlogs, identity, kms, logs, nat, network, quotas,
                    storage)
from .plan import CHECK_MODE_ID
from .record import record_tags


def converge(run):
    """Every part of the rack, in the order AWS needs them; returns run.out (ids for the result)."""
    w = run.wanted
    quotas.check(run)
    key = kms.ensure(run)
    storage.ensure(run.aws, run.plan, log_bucket(run), run.state.log_bucket)  # the rack bucket logs into it
    storage.ensure(run.aws, run.plan, rack_bucket(run), run.state.bucket)
    logs.ensure(run.aws, run.plan, run.names.log_group, run.state.log_group, run.state.log_group_tags,
                w["log_retention"], run.tags, kms_key=key)
    profile_arn = identity.ensure(run)
    vpc_id = network.ensure_vpc(run)
    flowlogs.ensure(run, vpc_id)
    igw_id = network.ensure_internet_gateway(run, vpc_id)
    public, private = network.ensure_subnets(run, vpc_id)
    network.ensure_public_routes(run, vpc_id, igw_id, public)
    nats, nats_pending = nat.ensure(run, public) if w["private"] else ([], [])
    router_sg, instances_sg = firewall.ensure(run, vpc_id)
    # the load balancer, the slowest part (minutes to become active), as soon as its subnets and group exist
    entry.ensure(run, private if w["internal_only"] and w["private"] else public, router_sg)
    lt_id, lt_version = compute.ensure_launch_template(run, profile_arn, instances_sg)
    cluster.ensure_cluster(run)
    asg_arn = compute.ensure_group(run, lt_id, lt_version, private if w["private"] else public)
    cluster.ensure_capacity_provider(run, asg_arn)
    if w["private"]:
        nat.available(run, nats_pending)  # made meanwhile: the NAT gateways' minutes overlap the rest
        network.ensure_private_routes(run, vpc_id, nats, private)
    duplicates.remove_extras(run)
    run.out.update(vpc_id=vpc_id, public_subnet_ids=public, private_subnet_ids=private, bucket=run.names.bucket,
                   log_group=run.names.log_group, kms_key=key, log_bucket=run.names.log_bucket)
    return run.out


def first_status(run):
    return "updating" if run.state.recorded_parameters else "installing"


def rack_bucket(run):
    """The rack's bucket: logs and settings; its tags are the rack's record (record.py). AWS's log
    deliveries write into it (apps' buckets' access logs, flow logs, the load balancer's access logs);
    its own access logs go to the log bucket."""
    names, ident, days = run.names, run.identity, run.wanted["log_retention"]
    policy = D.rack_bucket_policy(ident.partition, names.bucket, names.rack, ident.account)
    policy["Statement"] += [L.router_logs_statement(ident.partition, run.region, names.bucket, ident.account)] + \
        L.flow_logs_statements(ident.partition, run.region, names.bucket, ident.account)
    return storage.BucketSpec(
        names.bucket, run.region, record_tags(run.tags, run.wanted, first_status(run), run.deadline.seconds),
        D.lifecycle_rules(days), "logs expire after %d days" % days, policy,
        "TLS only; log deliveries: apps' S3 access logs (logs/apps/), flow logs (logs/flow/), the load balancer's"
        " access logs (logs/router/)", logging={"TargetBucket": names.log_bucket, "TargetPrefix": BUCKET_LOGS_PREFIX})


def log_bucket(run):
    """The rack's log bucket: the rack bucket's server access logs (a bucket should not log into
    itself). SSE-S3, the only default encryption S3 delivers server access logs to; no access logs of
    its own (docs/security.md)."""
    names, ident, days = run.names, run.identity, run.wanted["log_retention"]
    policy = D.tls_only_bucket_policy(ident.partition, names.log_bucket)
    policy["Statement"].append(L.bucket_logs_statement(ident.partition, names.log_bucket, names.bucket, ident.account))
    return storage.BucketSpec(
        names.log_bucket, run.region, run.tags, D.lifecycle_rules(days), "logs expire after %d days" % days, policy,
        "TLS only; S3 access logs of the rack's bucket under logs/bucket/", sync_tags=True)


# -- after the parts: replacing instances, waiting until usable ------------------------------------------------
def plan_replacement(run):
    """Record (to perform after the wait) the replacement of instances of an older type or
    image, or outside the group's subnets; True when there is one."""
    asg = run.state.asg
    if asg is None:
        return False
    will_change = any(
        (c["resource"] == "launch_template" and set(c.get("changes", {})) & {"InstanceType", "ImageId"})
        or (c["resource"] == "autoscaling_group" and "VPCZoneIdentifier" in c.get("changes", {}))
        for c in run.plan.changes if c["action"] == "update")
    name = asg["AutoScalingGroupName"]
    if run.check_mode:
        if will_change:
            run.plan.changes.append({"resource": "instances", "name": name, "action": "replace",
                                     "changes": {"reason": "new instance type or image"}})
        return will_change
    subnets = set(run.out.get("private_subnet_ids") or run.out.get("public_subnet_ids") or []) - {CHECK_MODE_ID}
    old = compute.outdated(run, asg, run.out.get("image_id"), subnets or None)
    if not (will_change or old):
        return False
    if run.wait:
        run.plan.writing()
    else:
        run.warnings.append("instances of an older type or image are replaced only with wait: true; "
                            "rerun with wait: true to replace them")
    run.plan.changes.append({"resource": "instances", "name": name, "action": "replace",
                             "changes": {"instances": old or "all"}})
    return True


def wait_usable(run):
    """Until the group's instances are in service and the load balancer active (or wait_timeout)."""
    name, lb_arn = run.out["autoscaling_group_name"], run.out["load_balancer"]["arn"]

    def usable():
        asg = compute.describe_group(run.aws, name)
        ready = compute.in_service(asg)
        run.out["instances"] = {"desired": asg["DesiredCapacity"], "in_service": len(ready), "registered": None}
        if len(ready) < asg["DesiredCapacity"]:
            compute.launch_failure(run, name)
            return False
        return entry.active(run, lb_arn)
    run.deadline.wait_for("the instances in service and the load balancer active", usable)
