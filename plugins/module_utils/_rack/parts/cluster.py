# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cluster: the ECS cluster convox-<rack> and its capacity provider convox-<rack> (the Auto
Scaling group's instances, the cluster's default strategy). Found by name and confirmed by tags;
an INACTIVE cluster or a deleted capacity provider counts as gone."""

from __future__ import annotations

from ..errors import AWSCallError
from ..tags import confirm, sync_tags, tag_dict, tag_list

IN_PROGRESS = ("UpdateInProgressException", "ResourceInUseException")
CLUSTER_IN_USE = ("ClusterContainsContainerInstancesException", "ClusterContainsTasksException",
                  "ClusterContainsServicesException", "UpdateInProgressException")


def read(aws, state):
    names = state.names
    clusters = aws.call("ecs", "describe_clusters", "ECS cluster %s" % names.cluster,
                        clusters=[names.cluster], include=["TAGS", "SETTINGS"])["clusters"]
    clusters = [c for c in clusters if c.get("status") != "INACTIVE"]
    if clusters:
        confirm(tag_dict(clusters[0].get("tags"), "key", "value"), "ECS cluster %s" % names.cluster, names.rack)
        state.cluster = clusters[0]
    cps = aws.call("ecs", "describe_capacity_providers", "capacity provider %s" % names.capacity_provider,
                   capacityProviders=[names.capacity_provider], include=["TAGS"])["capacityProviders"]
    cps = [c for c in cps if c.get("status") != "INACTIVE" and c.get("updateStatus") != "DELETE_COMPLETE"]
    if cps:
        confirm(tag_dict(cps[0].get("tags"), "key", "value"), "capacity provider %s" % names.capacity_provider,
                names.rack)
        state.capacity_provider = cps[0]


def registered(run):
    """How many container instances are registered in the rack's cluster (ACTIVE or DRAINING)."""
    clusters = run.aws.call("ecs", "describe_clusters", "ECS cluster %s" % run.names.cluster,
                            clusters=[run.names.cluster])["clusters"]
    return sum(c.get("registeredContainerInstancesCount", 0) for c in clusters if c.get("status") == "ACTIVE")


LABELS = {"ecs_cluster": "ECS cluster", "capacity_provider": "capacity provider"}


def _sync_ecs_tags(run, kind, name, arn, current):
    def ecs(op, **kw):
        return run.aws.call("ecs", op, "%s %s" % (LABELS[kind], name), resourceArn=arn, **kw)
    sync_tags(run.plan, kind, name, tag_dict(current, "key", "value"), run.tags,
              lambda s: ecs("tag_resource", tags=tag_list(s, "key", "value")),
              lambda u: ecs("untag_resource", tagKeys=u))


def insights_setting(on):
    """The cluster setting of Container Insights (ECS API reference, ClusterSetting: containerInsights
    enabled, disabled, or enhanced, which is enabled with more metrics and is kept as the user's)."""
    return {"name": "containerInsights", "value": "enabled" if on else "disabled"}


def insights_value(cluster):
    settings = {s.get("name"): s.get("value") for s in (cluster or {}).get("settings") or []}
    return settings.get("containerInsights")


def ensure_cluster(run):
    name, cluster = run.names.cluster, run.state.cluster
    run.out["cluster_name"] = name
    on = run.wanted.get("container_insights", True)
    setting = insights_setting(on)
    if cluster is None:
        run.plan.change("ecs_cluster", name, "create", lambda: run.aws.call(
            "ecs", "create_cluster", "ECS cluster %s" % name, clusterName=name, settings=[setting],
            tags=tag_list(run.tags, "key", "value")))
        return
    current = insights_value(cluster)
    if (current in ("enabled", "enhanced")) != on:
        run.plan.change("ecs_cluster", name, "update", lambda: run.aws.call(
            "ecs", "update_cluster_settings", "ECS cluster %s" % name, retry_on=IN_PROGRESS, cluster=name,
            settings=[setting]), detail={"container_insights": {"before": current, "after": setting["value"]}})
    _sync_ecs_tags(run, "ecs_cluster", name, cluster["clusterArn"], cluster.get("tags"))


def ensure_capacity_provider(run, asg_arn):
    """The capacity provider of the group, and the cluster's default strategy on it."""
    name, cp = run.names.capacity_provider, run.state.capacity_provider
    if cp is None:
        run.plan.change("capacity_provider", name, "create", lambda: _create_capacity_provider(run, name, asg_arn))
    else:
        _sync_ecs_tags(run, "capacity_provider", name, cp["capacityProviderArn"], cp.get("tags"))
    cluster = run.state.cluster or {}
    strategy = [s.get("capacityProvider") for s in cluster.get("defaultCapacityProviderStrategy") or []]
    if name in (cluster.get("capacityProviders") or []) and strategy == [name]:
        return
    run.plan.change("ecs_cluster", run.names.cluster, "update" if run.state.cluster else "create", lambda: run.aws.call(
        "ecs", "put_cluster_capacity_providers", "ECS cluster %s" % run.names.cluster, retry_on=IN_PROGRESS,
        cluster=run.names.cluster, capacityProviders=[name],
        defaultCapacityProviderStrategy=[{"capacityProvider": name, "weight": 1, "base": 0}]),
        detail={"capacity_providers": [name]} if run.state.cluster else None)


def _create_capacity_provider(run, name, asg_arn):
    """CreateCapacityProvider, until ECS can use its service-linked role: on a fresh account ECS makes
    the role with the first cluster and answers "Unable to assume the service linked role" until IAM
    has it everywhere (ECS developer guide, "Using service-linked roles for Amazon ECS"). A repeated
    create (a rerun after a lost answer) answers ClientException "... already exists": it is ours."""
    def attempt():
        try:
            run.aws.call("ecs", "create_capacity_provider", "capacity provider %s" % name, name=name,
                         autoScalingGroupProvider={"autoScalingGroupArn": asg_arn,
                                                   "managedScaling": {"status": "DISABLED"},
                                                   "managedTerminationProtection": "DISABLED"},
                         tags=tag_list(run.tags, "key", "value"))
        except AWSCallError as e:
            text = e.msg.lower()
            if e.code == "ClientException" and "already exists" in text:
                return True
            if "service linked role" in text and run.deadline.remaining() > 0:
                return False
            raise
        return True
    run.deadline.wait_for("ECS to use its service-linked role for capacity provider %s" % name, attempt, interval=2)


# -- delete ----------------------------------------------------------------------------------------------------------
def release(run):
    """Before the group goes: drain the container instances, detach the capacity provider."""
    cluster, name = run.state.cluster, run.names.cluster
    if cluster is None:
        return
    if cluster.get("registeredContainerInstancesCount"):
        run.plan.change("ecs_cluster", name, "update", lambda: _drain(run), detail={"drain": "container instances"})
    if cluster.get("capacityProviders"):
        run.plan.change("ecs_cluster", name, "update", lambda: run.aws.call(
            "ecs", "put_cluster_capacity_providers", "ECS cluster %s" % name, cluster=name, retry_on=IN_PROGRESS,
            capacityProviders=[], defaultCapacityProviderStrategy=[]), detail={"capacity_providers": []})


def _drain(run):
    cluster = run.names.cluster
    arns = run.aws.paginate("ecs", "list_container_instances", "ECS cluster %s" % cluster,
                            cluster=cluster).get("containerInstanceArns", [])
    for i in range(0, len(arns), 10):
        run.aws.call("ecs", "update_container_instances_state", "ECS cluster %s" % cluster, cluster=cluster,
                     containerInstances=arns[i:i + 10], status="DRAINING")


def remove(run):
    """The capacity provider, then the cluster (once its container instances are gone)."""
    cp, cluster, name = run.state.capacity_provider, run.state.cluster, run.names.cluster
    if cp is not None:
        run.plan.change("capacity_provider", cp["name"], "delete", lambda: run.aws.call(
            "ecs", "delete_capacity_provider", "capacity provider %s" % cp["name"], capacityProvider=cp["name"]))
    if cluster is not None:
        run.plan.change("ecs_cluster", name, "delete", lambda: run.deadline.until_accepted(
            "ECS cluster %s to release its container instances" % name,
            lambda: run.aws.call("ecs", "delete_cluster", "ECS cluster %s" % name,
                                 ignore=("ClusterNotFoundException",), cluster=name),
            # right after its capacity provider is detached a cluster answers UpdateInProgressException
            codes=CLUSTER_IN_USE))
