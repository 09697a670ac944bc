"""Instance refresh in the local AWS (scripts/instance_refresh.py), checked directly with boto3 as AWS
documents it: Amazon EC2 Auto Scaling API Reference (StartInstanceRefresh, DescribeInstanceRefreshes,
CancelInstanceRefresh, RollbackInstanceRefresh, RefreshPreferences) and User Guide ("How an instance
refresh works", "Undo changes with a rollback", "Use skip matching"). What the collection does with
it is in test_instance_refresh.py."""

from __future__ import annotations

import time

import pytest

from test_realism_harness import ARM_IMAGE, X86_IMAGE, describe_group, error_of, network, on, until

LAUNCH_FIRST = {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200, "SkipMatching": True,
                "AutoRollback": True, "InstanceWarmup": 50}  # warm-up 0.5 s at the harness's scale


@pytest.fixture()
def aws(realistic_aws):
    """The module's own local AWS, emptied, realism off; switched off again afterwards."""
    realistic_aws.realism(enabled=False)
    realistic_aws.reset()
    yield realistic_aws
    realistic_aws.realism(enabled=False)


def template(aws, instance_type="t3.small", image_parameter=X86_IMAGE):
    """A launch template `lt` (version 1), or a new version of it: (id, version number)."""
    ec2 = aws.client("ec2")
    image = aws.client("ssm").get_parameter(Name=image_parameter)["Parameter"]["Value"]
    data = {"ImageId": image, "InstanceType": instance_type}
    found = ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": ["lt"]}])
    if found["LaunchTemplates"]:
        lt_id = found["LaunchTemplates"][0]["LaunchTemplateId"]
        version = ec2.create_launch_template_version(LaunchTemplateId=lt_id, LaunchTemplateData=data)
        return lt_id, version["LaunchTemplateVersion"]["VersionNumber"]
    return ec2.create_launch_template(LaunchTemplateName="lt", LaunchTemplateData=data)["LaunchTemplate"][
        "LaunchTemplateId"], 1


def running_group(aws, count=2, **timings):
    """A group `asg` of `count` t3.small instances from version 1, all InService (made before realism
    is switched on with `timings`)."""
    _vpc, subnets, _sg = network(aws)
    lt_id, _v = template(aws)
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="asg", MinSize=count, MaxSize=count, DesiredCapacity=count,
        LaunchTemplate={"LaunchTemplateId": lt_id, "Version": "1"}, VPCZoneIdentifier=",".join(subnets))
    assert [i["LifecycleState"] for i in describe_group(aws)["Instances"]] == ["InService"] * count
    on(aws, **timings)
    return lt_id


def start(aws, lt_id, version, **preferences):
    return aws.client("autoscaling").start_instance_refresh(
        AutoScalingGroupName="asg", Preferences=dict(LAUNCH_FIRST, **preferences),
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": lt_id, "Version": str(version)}}
    )["InstanceRefreshId"]


def refresh(aws, refresh_id):
    return aws.client("autoscaling").describe_instance_refreshes(
        AutoScalingGroupName="asg", InstanceRefreshIds=[refresh_id])["InstanceRefreshes"][0]


def follow(aws, refresh_id, seconds=10.0):
    """Poll the refresh and the group every 0.05 s until the refresh ends: (last answer, samples)."""
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        asg = describe_group(aws)
        answer = refresh(aws, refresh_id)
        samples.append((answer["Status"], answer.get("PercentageComplete"), asg["Instances"]))
        if answer["Status"] not in ("Pending", "InProgress", "Cancelling", "RollbackInProgress"):
            return answer, samples
        time.sleep(0.05)
    raise AssertionError("the refresh did not end within %ss: %s" % (seconds, samples[-1][:2]))


def test_launch_before_terminate_keeps_every_old_instance_until_its_replacement_is_in_service(aws):
    lt_id = running_group(aws, instance_pending=100)  # new instances Pending 1 s
    old = {i["InstanceId"] for i in describe_group(aws)["Instances"]}
    _id, version = template(aws, "t3.medium")
    refresh_id = start(aws, lt_id, version)
    assert refresh(aws, refresh_id)["Status"] in ("Pending", "InProgress")
    answer, samples = follow(aws, refresh_id)
    assert answer["Status"] == "Successful" and answer["PercentageComplete"] == 100
    assert answer["InstancesToUpdate"] == 0 and answer["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "2"
    for _status, _pct, instances in samples:
        assert len([i for i in instances if i["LifecycleState"] == "InService"]) >= 2, instances
        # old instances stay until the new ones are in service: never more than 200% (4)
        assert len(instances) <= 4
    assert any(len(instances) == 4 for _s, _p, instances in samples), "the new instances were never launched first"
    percentages = [pct for _s, pct, _i in samples]
    assert percentages == sorted(percentages)
    asg = describe_group(aws)
    assert asg["LaunchTemplate"]["Version"] == "2", "the group did not take the desired configuration"
    assert not old & {i["InstanceId"] for i in asg["Instances"]}
    assert {(i["InstanceType"], i["LaunchTemplate"]["Version"]) for i in asg["Instances"]} == {("t3.medium", "2")}


def test_a_second_refresh_while_one_runs_is_refused_with_aws_error(aws):
    lt_id = running_group(aws, instance_pending=500)
    _id, version = template(aws, "t3.medium")
    start(aws, lt_id, version)
    err = error_of(aws.client("autoscaling").start_instance_refresh, AutoScalingGroupName="asg")
    assert err["Code"] == "InstanceRefreshInProgress"
    assert err["Message"] == "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh."


def test_skip_matching_skips_instances_already_on_the_desired_version(aws):
    lt_id = running_group(aws, instance_pending=50)
    before = {i["InstanceId"] for i in describe_group(aws)["Instances"]}
    answer, _samples = follow(aws, start(aws, lt_id, 1))
    assert answer["Status"] == "Successful" and answer["InstancesToUpdate"] == 0
    assert {i["InstanceId"] for i in describe_group(aws)["Instances"]} == before
    answer, _samples = follow(aws, start(aws, lt_id, 1, SkipMatching=False))
    assert answer["Status"] == "Successful"
    assert not before & {i["InstanceId"] for i in describe_group(aws)["Instances"]}


def test_instances_report_the_version_they_were_launched_from(aws):
    """AWS's Instance.LaunchTemplate is the version an instance was launched from; moto said the default."""
    lt_id = running_group(aws)
    _id, version = template(aws, "t3.medium")
    aws.client("ec2").modify_launch_template(LaunchTemplateId=lt_id, DefaultVersion=str(version))
    assert {i["LaunchTemplate"]["Version"] for i in describe_group(aws)["Instances"]} == {"1"}


def test_a_failed_launch_fails_the_refresh_and_rolls_back(aws):
    lt_id = running_group(aws, instance_pending=50)
    before = {i["InstanceId"] for i in describe_group(aws)["Instances"]}
    _id, version = template(aws, "t3.small", image_parameter=ARM_IMAGE)  # t3.small cannot run arm64
    answer, samples = follow(aws, start(aws, lt_id, version))
    assert answer["Status"] == "RollbackSuccessful", answer
    assert "does not match the architecture 'arm64' of the specified AMI" in answer["StatusReason"]
    assert "RollbackInProgress" in {s for s, _p, _i in samples} or answer["RollbackDetails"]
    asg = describe_group(aws)
    assert asg["LaunchTemplate"]["Version"] == "1"
    assert {i["InstanceId"] for i in asg["Instances"]} == before
    # without AutoRollback: Failed
    answer, _samples = follow(aws, start(aws, lt_id, version, AutoRollback=False))
    assert answer["Status"] == "Failed" and "does not match the architecture" in answer["StatusReason"]
    assert {i["InstanceId"] for i in describe_group(aws)["Instances"]} == before


def test_rollback_replaces_what_the_refresh_launched_with_the_previous_configuration(aws):
    lt_id = running_group(aws, instance_pending=200)  # 2 s: time to roll back mid-way
    _id, version = template(aws, "t3.medium")
    refresh_id = start(aws, lt_id, version)
    until(lambda: len(describe_group(aws)["Instances"]) == 4, 5)
    aws.client("autoscaling").rollback_instance_refresh(AutoScalingGroupName="asg")
    answer, samples = follow(aws, refresh_id)
    assert answer["Status"] == "RollbackSuccessful"
    assert answer["RollbackDetails"]["RollbackReason"]
    asg = describe_group(aws)
    assert asg["LaunchTemplate"]["Version"] == "1"
    assert {i["InstanceType"] for i in asg["Instances"]} == {"t3.small"} and len(asg["Instances"]) == 2
    for _status, _pct, instances in samples:
        assert len([i for i in instances if i["LifecycleState"] == "InService"]) >= 2


def test_cancel_ends_the_refresh_and_a_second_cancel_finds_none(aws):
    lt_id = running_group(aws, instance_pending=500)
    _id, version = template(aws, "t3.medium")
    refresh_id = start(aws, lt_id, version)
    autoscaling = aws.client("autoscaling")
    autoscaling.cancel_instance_refresh(AutoScalingGroupName="asg")
    answer, _samples = follow(aws, refresh_id)
    assert answer["Status"] == "Cancelled"
    err = error_of(autoscaling.cancel_instance_refresh, AutoScalingGroupName="asg")
    assert err["Code"] == "ActiveInstanceRefreshNotFound"
    assert len(describe_group(aws)["Instances"]) == 2
