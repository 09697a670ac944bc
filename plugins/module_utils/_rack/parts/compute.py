# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compute: the launch template (ECS-optimised image, instance type, instance profile, the
instances' security group, IMDSv2, encrypted gp3) and the Auto Scaling group of identical
instances launched from it; which instances are of an older type or image (parts/refresh.py replaces
them). Both are
named convox-<rack>, found by name and confirmed by tags. The ECS cluster and capacity provider
are in cluster.py."""

from __future__ import annotations

import datetime

from .. import desired as D
from ..errors import AWSCallError, RackError
from ..params import LATEST_IMAGE
from ..plan import CHECK_MODE_ID
from ..tags import confirm, ec2_filters, ec2_tag_spec, ours_only, sync_ec2_tags, sync_tags, tag_dict
from ..version import COLLECTION_VERSION

LT_NOT_FOUND = ("InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound")
LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


def read(aws, state):
    names = state.names
    lts = aws.call("ec2", "describe_launch_templates", "launch template %s" % names.launch_template,
                   ignore=LT_NOT_FOUND, LaunchTemplateNames=[names.launch_template])
    lt = next((x for x in (lts or {}).get("LaunchTemplates", []) if x.get("LaunchTemplateName") == names.launch_template),
              None)
    if lt is not None:
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
    return next((g for g in groups if g.get("AutoScalingGroupName") == name), None)


# -- the launch template ------------------------------------------------------------------------------------------
def image_id(run):
    """The image asked for, else the one the template has (while the instance type keeps its
    architecture), else the ECS-optimised one of today for the instance type's architecture."""
    wanted_type = run.wanted["instance_type"]
    if run.wanted.get("image_id"):
        return run.wanted["image_id"]
    data = (run.state.launch_template or {}).get("data") or {}
    if data.get("ImageId") and (data.get("InstanceType") == wanted_type or
                                architectures(run.aws, [data.get("InstanceType"), wanted_type]) == 1):
        return data["ImageId"]
    return recommended_image(run.aws, wanted_type)


def resolve_latest(run):
    """image_id `latest`: today's ECS-optimised AMI of the instance type's architecture, resolved before
    the first write, so that the AMI id (not `latest`) is what the rack records and later runs keep."""
    if run.wanted.get("image_id") == LATEST_IMAGE:
        run.wanted["image_id"] = recommended_image(run.aws, run.wanted["instance_type"])


def recommended_image(aws, instance_type):
    """Today's ECS-optimised Amazon Linux 2023 AMI for the instance type's architecture (the public
    SSM parameter AWS updates with each release of the image)."""
    arch = "arm64" if architecture(aws, instance_type) == "arm64" else "x86_64"
    parameter = D.ECS_AMI_PARAMETERS[arch]
    return aws.call("ssm", "get_parameter", "SSM parameter %s" % parameter, Name=parameter)["Parameter"]["Value"]


def image_status(aws, state):
    """{"id", "recommended", "newer_available"}: the rack's image against today's ECS-optimised AMI of
    its architecture; None without a launch template."""
    data = (state.launch_template or {}).get("data") or {}
    if not data.get("ImageId") or not data.get("InstanceType"):
        return None
    newest = recommended_image(aws, data["InstanceType"])
    return {"id": data["ImageId"], "recommended": newest, "newer_available": newest != data["ImageId"]}


def _architectures_of(aws, types):
    """{instance type: its first supported architecture} (DescribeInstanceTypes' ProcessorInfo)."""
    found = aws.call("ec2", "describe_instance_types", "instance types %s" % ", ".join(types), InstanceTypes=types)
    return {t["InstanceType"]: (t.get("ProcessorInfo", {}).get("SupportedArchitectures") or ["x86_64"])[0]
            for t in found.get("InstanceTypes", [])}


def architecture(aws, instance_type):
    """arm64 for Graviton types (m6g, t4g, c7g...), else x86_64 (i386 types run x86_64 images)."""
    arch = _architectures_of(aws, [instance_type]).get(instance_type, "x86_64")
    return "arm64" if arch == "arm64" else "x86_64"


def architectures(aws, types):
    """How many architectures the instance types span (1: one image fits them all)."""
    types = sorted(set(t for t in types if t))
    return len({"arm64" if a == "arm64" else "x86_64" for a in _architectures_of(aws, types).values()}) or 1


def ensure_launch_template(run, profile_arn, instances_sg):
    """(template id, version the group should launch from)."""
    name, lt, aws = run.names.launch_template, run.state.launch_template, run.aws
    data = D.launch_template_data(image_id(run), run.wanted["instance_type"], profile_arn, instances_sg,
                                  run.names.cluster, dict(run.tags), kms_key=run.out.get("kms_key"))
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
# ECS adds this tag to an Auto Scaling group when a capacity provider takes it (AWS: "Amazon ECS
# capacity providers for EC2 workloads"; terraform-provider-aws's aws_ecs_capacity_provider docs ask
# for it in the group's own tags): the group carries it from its creation, with whatever value AWS
# gave it kept, so that no run removes it (a change on every run, and ECS's own scaling hurt).
ECS_MANAGED_TAG = "AmazonECSManaged"


def wanted_group_tags(run, name, current=None):
    tags = run.res_tags(name)
    tags[ECS_MANAGED_TAG] = (current or {}).get(ECS_MANAGED_TAG, "true")
    return tags


def _group_tags(run, name, current=None):
    return [dict(Key=k, Value=v, PropagateAtLaunch=True, ResourceId=name, ResourceType="auto-scaling-group")
            for k, v in sorted(wanted_group_tags(run, name, current).items())]


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
    run.out["launch_template_spec"] = spec
    if cur_lt.get("LaunchTemplateId") != spec["LaunchTemplateId"] or str(cur_lt.get("Version")) != spec["Version"]:
        if [i for i in asg.get("Instances", []) if i["LifecycleState"] in ("InService", "Pending")]:
            # Instances run: an instance refresh replaces them and moves the group to the new version
            # once it succeeds (parts/refresh.py); a rollback leaves the group as it was.
            run.out["refresh_to"] = spec
        else:
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
    name, current = asg["AutoScalingGroupName"], tag_dict(asg.get("Tags"))
    wanted = _group_tags(run, name, current)

    def call(op, tags):
        return run.aws.call("autoscaling", op, "auto scaling group %s" % name, Tags=tags)
    sync_tags(run.plan, "autoscaling_group", name, current, wanted_group_tags(run, name, current),
              lambda s: call("create_or_update_tags", [t for t in wanted if t["Key"] in s]),
              lambda u: call("delete_tags", [dict(Key=k, ResourceId=name, ResourceType="auto-scaling-group")
                                             for k in u]))


def profile_not_yet_usable(error):
    """Whether AWS refused an instance profile it does not see yet. IAM is eventually consistent: a
    new profile reaches EC2 and Auto Scaling seconds later, and until then they answer
    ValidationError "... Value (...) for parameter iamInstanceProfile.arn is invalid. Invalid IAM
    Instance Profile ARN" (or .name / "Invalid IAM Instance Profile name"); terraform-provider-aws
    retries aws_autoscaling_group's create on the same text (internal/service/autoscaling)."""
    text = error.msg.lower()
    return error.code == "ValidationError" and ("invalid iam instance profile" in text or "iaminstanceprofile" in text)


def _create_group(run, kwargs):
    """A new instance profile takes seconds to reach EC2: retry while AWS says it is invalid."""
    def attempt():
        try:
            run.aws.call("autoscaling", "create_auto_scaling_group",
                         "auto scaling group %s" % kwargs["AutoScalingGroupName"], **kwargs)
            return True
        except AWSCallError as e:
            if profile_not_yet_usable(e) and run.deadline.remaining() > 0:
                return False
            if e.code == "AlreadyExists":
                return True
            raise
    run.deadline.wait_for("instance profile %s to reach EC2" % run.names.instance_role, attempt, interval=2)


# -- instances ------------------------------------------------------------------------------------------------------
def in_service(asg):
    return [i for i in asg.get("Instances", []) if i["LifecycleState"] == "InService"]


# Scaling activities that started up to this long before the run (clocks differ) are this run's.
CLOCK_MARGIN = datetime.timedelta(seconds=60)


def launch_failure(run, name):
    """RackError when the group failed to launch an instance since the run began: a launch that AWS
    refuses (an image of another architecture, an instance type a zone does not offer, a volume key
    it may not use) shows only as a scaling activity with StatusCode Failed and AWS's StatusMessage
    (Auto Scaling user guide, "Troubleshoot Amazon EC2 Auto Scaling: EC2 instance launch failures"),
    never as an instance: without this a run would wait until wait_timeout."""
    activities = run.aws.call("autoscaling", "describe_scaling_activities", "auto scaling group %s" % name,
                              AutoScalingGroupName=name, MaxRecords=10).get("Activities", [])
    for act in activities:
        started = act.get("StartTime")
        if act.get("StatusCode") == "Failed" and started and started >= run.started - CLOCK_MARGIN:
            raise RackError("auto scaling group %s cannot launch instances: %s" % (
                name, act.get("StatusMessage") or act.get("Description")),
                resource="auto scaling group %s" % name, error_code="LaunchFailed",
                activity=act.get("ActivityId"))


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


# -- delete ----------------------------------------------------------------------------------------------------------
def delete_group(run, name, waits):
    """Scale to zero, delete (with its instances); adds to `waits` the wait until it is gone."""
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
        found = (asg("describe_auto_scaling_groups", AutoScalingGroupNames=[name]) or {}).get("AutoScalingGroups") or []
        return not any(g.get("AutoScalingGroupName") == name for g in found)
    waits.append(("auto scaling group %s to terminate its instances and go" % name, gone))


def live_instances(run):
    live = [{"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}]
    res = run.aws.paginate("ec2", "describe_instances", "instances of rack %s" % run.names.rack,
                           Filters=ec2_filters(run.names.rack, live))
    # what the filters asked for, confirmed on what came back: these may be terminated (terminate_strays)
    found = ours_only([i for r in res.get("Reservations", []) for i in r["Instances"]], run.names.rack)
    return [i["InstanceId"] for i in found if (i.get("State") or {}).get("Name") in LIVE_INSTANCE_STATES]


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
