# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Uninstall: every part of a rack removed, found by its tags, in the order AWS's documented
dependencies allow (the local AWS lets most ordering mistakes through, so
tests/unit/test_teardown_order.py checks the order with botocore's Stubber):

0. with force, the rack's apps, as convox.rack.app deletes them;
1. container instances drained, capacity provider detached; then the slow deletes asked for at
   once and waited for together: the Auto Scaling group (with its instances), the load balancer
   (its listener goes with it) and the NAT gateways;
2. instances of the rack left outside the group; capacity provider, cluster;
3. the NAT gateways' elastic IPs;
4. the VPC's flow logs; security groups (instances' first: it references the router's), route tables, subnets,
   internet gateway (detached first), VPC, and their duplicates;
5. launch template, instance profile and role, log group;
6. the bucket, then its log bucket (which holds every log AWS delivered for the rack): each deleted
   when empty, emptied first with purge_data, kept (and named) otherwise (the log bucket also while
   the rack's bucket is kept: it logs into it);
7. the rack's KMS key: with purge_data its alias deleted and its deletion scheduled (30 days),
   kept (and named) otherwise: what it encrypted may be kept too.

Every delete treats "not found" as done, so a second uninstall, or one after a half-built
install, is safe. Deletes AWS refuses while a dependency drains are retried until wait_timeout."""

from __future__ import annotations

from . import apps, record
from .errors import RackError
from .parts import cluster, compute, entry, firewall, flowlogs, identity, kms, logs, nat, network, storage


class Kept:
    """Buckets, repositories and keys kept because they hold data (purge_data deletes them)."""

    def __init__(self):
        self.buckets = []
        self.repositories = []
        self.keys = []


def teardown(run, force, purge_data):
    """Remove the rack; returns what was kept."""
    state, kept = run.state, Kept()
    if state.apps and not force:
        raise RackError("rack %s has apps (%s): delete them first, or set force: true"
                        % (run.names.rack, ", ".join(state.apps)), apps=state.apps)
    for app in state.apps:
        apps.delete(apps.app_run(run.aws, run.region, run.identity, run.names, app, run.plan), purge_data, kept)
    cluster.release(run)
    waits = []
    if state.asg is not None:
        name = state.asg["AutoScalingGroupName"]
        run.plan.change("autoscaling_group", name, "delete", lambda: compute.delete_group(run, name, waits))
    entry.remove(run, waits)
    nat.remove(run, waits)
    run.deadline.wait_all(waits)
    compute.terminate_strays(run)
    cluster.remove(run)
    nat.release_addresses(run)
    flowlogs.remove(run)
    firewall.remove(run)
    network.remove(run)
    compute.remove_launch_template(run)
    identity.remove(run)
    logs.remove(run.aws, run.plan, state.log_group)
    _remove_bucket(run, purge_data, kept)
    _remove_log_bucket(run, purge_data, kept)
    kms.remove(run, purge_data, kept.keys)
    return kept


def _remove_bucket(run, purge_data, kept):
    """The rack's bucket; one kept for its data is marked uninstalled (no longer listed as a rack)."""
    bucket = run.state.bucket
    if bucket is None:
        return

    def keep():
        tags = record.with_status(bucket["tags"], "uninstalled")
        if tags != bucket["tags"]:
            run.plan.change("bucket", bucket["name"], "update", lambda: record.put_tags(run.aws, bucket["name"], tags),
                            detail={"kept": "holds objects; purge_data: true deletes them"})
    storage.remove(run.aws, run.plan, bucket["name"], purge_data, kept.buckets, keep)


def _remove_log_bucket(run, purge_data, kept):
    """The rack's log bucket, as the rack's: kept while it holds logs (every delivery of the rack's:
    flow logs, the router's, the apps' and the rack bucket's access logs) unless purge_data, and while
    the rack's bucket, which logs into it, is kept."""
    bucket = run.state.log_bucket
    if bucket is None:
        return
    if run.state.bucket is not None and run.state.bucket["name"] in kept.buckets:
        kept.buckets.append(bucket["name"])
        return
    storage.remove(run.aws, run.plan, bucket["name"], purge_data, kept.buckets)
