# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compute: the launch template (ECS-optimised image, instance type, instance profile, the
instances' security group, IMDSv2, encrypted gp3) and the Auto Scaling group of identical
instances launched from it; the replacement of instances of an older type or image. Both are
named convox-<rack>, found by name and confirmed by tags. The ECS cluster and capacity provider
are in cluster.py."""

from __future__ import annotations

from .. import desired as D
from ..errors import AWSCallError
from ..plan import CHECK_MODE_ID
from ..tags import confirm, ec2_filters, ec2_tag_spec, sync_ec2_tags, sync_tags, tag_dict
from ..version import COLLECTION_VERSION

LT_NOT_FOUND = ("InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound")
LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


def read(aws, state):
    names = state.names
    lts = aws.call("ec2", "describe_launch_templates", "launch template %s" % names.launch_template,
                   ignore=LT_NOT_FOUND, LaunchTemplateNames=[names.launch_template])
    if lts and lts.get("LaunchTemplates"):
        lt = lts["LaunchTemplates"][0]
        confirm(tag_dict(lt.get("Tags")), "launch template %s" % names.launch_template, names.rack)
        versions = aws.call("ec2", "describe_launch_template_versions", "launch template %s" % names.launch_template,
                            LaunchTemplateId=lt["LaunchTemplateId"], Versions=["$Default"])["LaunchTemplateVersions"]
        lt["data"] = versions[0]["LaunchTemplateData"] if versions else {}
        state.launch_template = lt
    asg = describe_group(aws, names.autoscaling_group)
    if asg:
        confirm(tag_dict(asg.get("Tags")), "auto scaling group %s" % names.autoscaling_group, names.rack)
        state.asg = asg


def describe_group(aws, name):
    groups = aws.call("autoscaling", "describe_auto_scaling_groups", "auto scaling group %s" % name,
                      AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return groups[0] if groups else None


# -- the launch template ------------------------------------------------------------------------------------------
def image_id(run):
    """The image asked for, else the one the template has, else the ECS-optimised one of today."""
    if run.wanted.get("image_id"):
        return run.wanted["image_id"]
    lt = run.state.launch_template
    if lt and lt["data"].get("ImageId"):
        return lt["data"]["ImageId"]
    return run.aws.call("ssm", "get_parameter", "SSM parameter %s" % D.ECS_AMI_PARAMETER,
                        Name=D.ECS_AMI_PARAMETER)["Parameter"]["Value"]


def ensure_launch_template(run, profile_arn, instances_sg):
    """(template id, version the group should launch from)."""
    name, lt, aws = run.names.launch_template, run.state.launch_template, run.aws
    data = D.launch_template_data(image_id(run), run.wanted["instance_type"], profile_arn, instances_sg,
                                  run.names.cluster, dict(run.tags))
    run.out["image_id"] = data["ImageId"]
    description = "convox.rack %s" % COLLECTION_VERSION
    if lt is None:
        def create():
            created = aws.call("ec2", "create_launch_template", "launch template %s" % name, LaunchTemplateName=name,
                               LaunchTemplateData=data, VersionDescription=description,
                               TagSpecifications=ec2_tag_spec("launch-template", run.tags))["LaunchTemplate"]
            return created["LaunchTemplateId"], created["DefaultVersionNumber"]
        return run.plan.change("launch_template", name, "create", create) or (CHECK_MODE_ID, CHECK_MODE_ID)
    lt_id = lt["LaunchTemplateId"]
    sync_ec2_tags(aws, run.plan, "launch_template", lt_id, tag_dict(lt.get("Tags")), run.tags)
    current, wanted = D.launch_template_key(lt["data"]), D.launch_template_key(data)
    if current == wanted:
        return lt_id, lt["DefaultVersionNumber"]
    changed = {k: {"before": current[k], "after": wanted[k]} for k in wanted
               if current[k] != wanted[k] and k != "UserData"}

    def new_version():
        version = aws.call("ec2", "create_launch_template_version", "launch template %s" % name, LaunchTemplateId=lt_id,
                           LaunchTemplateData=data, VersionDescription=description
                           )["LaunchTemplateVersion"]["VersionNumber"]
        aws.call("ec2", "modify_launch_template", "launch template %s" % name, LaunchTemplateId=lt_id,
                 DefaultVersion=str(version))
        return version
    return lt_id, run.plan.change("launch_template", name, "update", new_version, detail=changed) or CHECK_MODE_ID


# -- the Auto Scaling group ---------------------------------------------------------------------------------------
def _group_tags(run, name):
    return [dict(Key=k, Value=v, PropagateAtLaunch=True, ResourceId=name, ResourceType="auto-scaling-group")
            for k, v in sorted(run.res_tags(name).items())]


def ensure_group(run, lt_id, lt_version, subnets):
    """The group, `instance_count` instances across `subnets`; returns its ARN."""
    name, count, asg = run.names.autoscaling_group, run.wanted["instance_count"], run.state.asg
    run.out["autoscaling_group_name"] = name
    spec = {"LaunchTemplateId": lt_id, "Version": str(lt_version)}
    if asg is None:
        def create():
            _create_group(run, dict(AutoScalingGroupName=name, LaunchTemplate=spec, MinSize=count, MaxSize=count,
                                    DesiredCapacity=count, VPCZoneIdentifier=",".join(subnets),
                                    HealthCheckType="EC2", HealthCheckGracePeriod=300, Tags=_group_tags(run, name)))
            return describe_group(run.aws, name)["AutoScalingGroupARN"]
        return run.plan.change("autoscaling_group", name, "create", create) or CHECK_MODE_ID
    _update_group(run, asg, spec, count, subnets)
    _sync_group_tags(run, asg)
    return asg["AutoScalingGroupARN"]


def _update_group(run, asg, spec, count, subnets):
    name = asg["AutoScalingGroupName"]
    changes = {}
    cur_lt = asg.get("LaunchTemplate") or {}
    if cur_lt.get("LaunchTemplateId") != spec["LaunchTemplateId"] or str(cur_lt.get("Version")) != spec["Version"]:
        changes["LaunchTemplate"] = spec
    for key in ("MinSize", "MaxSize", "DesiredCapacity"):
        if asg.get(key) != count:
            changes[key] = count
    if set(filter(None, asg.get("VPCZoneIdentifier", "").split(","))) != set(subnets):
        changes["VPCZoneIdentifier"] = ",".join(subnets)
    if not changes:
        return
    detail = {k: {"before": cur_lt if k == "LaunchTemplate" else asg.get(k), "after": v} for k, v in changes.items()}
    run.plan.change("autoscaling_group", name, "update", lambda: run.aws.call(
        "autoscaling", "update_auto_scaling_group", "auto scaling group %s" % name,
        AutoScalingGroupName=name, **changes), detail=detail)


def _sync_group_tags(run, asg):
    name = asg["AutoScalingGroupName"]
    wanted = _group_tags(run, name)

    def call(op, tags):
        return run.aws.call("autoscaling", op, "auto scaling group %s" % name, Tags=tags)
    sync_tags(run.plan, "autoscaling_group", name, tag_dict(asg.get("Tags")), run.res_tags(name),
              lambda s: call("create_or_update_tags", [t for t in wanted if t["Key"] in s]),
              lambda u: call("delete_tags", [dict(Key=k, ResourceId=name, ResourceType="auto-scaling-group")
                                             for k in u]))


def _create_group(run, kwargs):
    """A new instance profile takes seconds to reach EC2: retry while AWS says it is invalid."""
    def attempt():
        try:
            run.aws.call("autoscaling", "create_auto_scaling_group",
                         "auto scaling group %s" % kwargs["AutoScalingGroupName"], **kwargs)
            return True
        except AWSCallError as e:
            if e.code == "ValidationError" and "IamInstanceProfile" in e.msg and run.deadline.remaining() > 0:
                return False
            if e.code == "AlreadyExists":
                return True
            raise
    run.deadline.wait_for("instance profile %s to reach EC2" % run.names.instance_role, attempt, interval=2)


# -- instances ------------------------------------------------------------------------------------------------------
def in_service(asg):
    return [i for i in asg.get("Instances", []) if i["LifecycleState"] == "InService"]


def outdated(run, asg, image, subnets=None):
    """Instances of another type or image than wanted, or outside the group's subnets
    (after private: true they must move to the private subnets)."""
    instances = [i for i in asg.get("Instances", []) if i["LifecycleState"] in ("InService", "Pending")]
    if not instances:
        return []
    if subnets is None:
        subnets = set(filter(None, asg.get("VPCZoneIdentifier", "").split(",")))
    old = {i["InstanceId"] for i in instances if i.get("InstanceType") != run.wanted["instance_type"]}
    described = run.aws.paginate("ec2", "describe_instances", "instances of %s" % asg["AutoScalingGroupName"],
                                 InstanceIds=[i["InstanceId"] for i in instances])
    for r in described.get("Reservations", []):
        for inst in r["Instances"]:
            if image and inst.get("ImageId") != image:
                old.add(inst["InstanceId"])
            if subnets and inst.get("SubnetId") and inst["SubnetId"] not in subnets:
                old.add(inst["InstanceId"])
    return sorted(old)


def replace_outdated(run):
    """One instance at a time: terminate it in the group (which launches a replacement), wait."""
    name = run.out["autoscaling_group_name"]
    while True:
        asg = describe_group(run.aws, name)
        old = outdated(run, asg, run.out.get("image_id"))
        if not old:
            return
        victim = old[0]
        run.aws.call("autoscaling", "terminate_instance_in_auto_scaling_group", "instance %s" % victim,
                     InstanceId=victim, ShouldDecrementDesiredCapacity=False)

        def replaced():
            group = describe_group(run.aws, name)
            ready = [i for i in in_service(group) if i["InstanceId"] != victim]
            return len(ready) >= group["DesiredCapacity"]
        run.deadline.wait_for("instance %s of %s to be replaced" % (victim, name), replaced)


# -- delete ----------------------------------------------------------------------------------------------------------
def delete_group(run, name):
    """Scale to zero, delete (with its instances), wait until it is gone."""
    def asg(op, **kw):
        try:
            return run.aws.call("autoscaling", op, "auto scaling group %s" % name, **kw)
        except AWSCallError as e:
            # A group that finished deleting since it was read: done.
            if e.code == "ValidationError" and "not found" in e.msg.lower():
                return None
            raise
    asg("update_auto_scaling_group", AutoScalingGroupName=name, MinSize=0, MaxSize=0, DesiredCapacity=0)
    asg("delete_auto_scaling_group", AutoScalingGroupName=name, ForceDelete=True)

    def gone():
        return not (asg("describe_auto_scaling_groups", AutoScalingGroupNames=[name]) or {}).get("AutoScalingGroups")
    run.deadline.wait_for("auto scaling group %s to terminate its instances and go" % name, gone)


def live_instances(run):
    live = [{"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}]
    res = run.aws.paginate("ec2", "describe_instances", "instances of rack %s" % run.names.rack,
                           Filters=ec2_filters(run.names.rack, live))
    return [i["InstanceId"] for r in res.get("Reservations", []) for i in r["Instances"]]


def terminate_strays(run):
    """Instances of the rack outside its group (left by a group deleted by hand)."""
    if run.check_mode:
        return
    strays = live_instances(run)
    if not strays:
        return

    def terminate():
        run.aws.call("ec2", "terminate_instances", "instances %s" % ", ".join(strays), InstanceIds=strays)
        run.deadline.wait_for("instances %s to terminate" % ", ".join(strays), lambda: not live_instances(run))
    run.plan.change("instances", ", ".join(strays), "delete", terminate)


def remove_launch_template(run):
    lt = run.state.launch_template
    if lt is None:
        return
    run.plan.change("launch_template", lt["LaunchTemplateName"], "delete", lambda: run.aws.call(
        "ec2", "delete_launch_template", "launch template %s" % lt["LaunchTemplateName"], ignore=LT_NOT_FOUND,
        LaunchTemplateId=lt["LaunchTemplateId"]))
