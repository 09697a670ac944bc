"""state: absent deletes in an order AWS accepts.

botocore's Stubber stands in for AWS throughout this file because the local emulator (moto)
accepts what AWS refuses (FIELD-NOTES section 2): it deletes a subnet or VPC still in use, releases
an elastic IP still held by a NAT gateway, deletes a security group another group references or a
load balancer still holds; its NAT gateways turn `deleted` and its load balancers vanish at once,
where AWS takes minutes; and it never answers DependencyViolation or
ClusterContainsContainerInstancesException while AWS releases network interfaces and instances
(moto 5.2.5: ec2/models/nat_gateways.py, elbv2/models.py, ecs/models.py delete_cluster).
An ordering bug in teardown therefore passes on moto; here each client is answered in the order
AWS accepts, and the order of calls across services is checked against AWS's documented
dependencies. The bucket tests use the same stubbed clients to check the exact listings and
delete_objects batches, to answer what moto never returns (S3's SlowDown, per-object errors in a
delete_objects response), and to stand for the local AWS's plain-http endpoint, where the bucket's
TLS-only policy is lifted for the emptying.
"""

from __future__ import annotations

import datetime
import json
import time
import types

import pytest

from ansible_collections.amazon.aws.plugins.module_utils import cloud

from ansible_collections.convox.rack.plugins.module_utils._rack import desired as D
from ansible_collections.convox.rack.plugins.module_utils._rack import record, uninstall
from ansible_collections.convox.rack.plugins.module_utils._rack.context import Run
from ansible_collections.convox.rack.plugins.module_utils._rack.errors import RackError
from ansible_collections.convox.rack.plugins.module_utils._rack.naming import RackNames, subnet_cidrs, system_tags
from ansible_collections.convox.rack.plugins.module_utils._rack.params import DEFAULTS
from ansible_collections.convox.rack.plugins.module_utils._rack.plan import Plan
from ansible_collections.convox.rack.plugins.module_utils._rack.record import parameters_to_tags
from ansible_collections.convox.rack.plugins.module_utils._rack.state import RackState

REGION = "us-east-1"
ACCOUNT = "123456789012"
RACK = "prod"
NAMES = RackNames(RACK, REGION, ACCOUNT)
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
VPC_ID = "vpc-0a1b2c3d"
FLOW_LOG = "fl-0a1b2c3d4e5f"
IGW_ID = "igw-0a1b2c3d"
ROUTER_SG, INSTANCES_SG = "sg-0router", "sg-0instances"
LT_ID = "lt-0a1b2c3d"
LB_ARN = "arn:aws:elasticloadbalancing:us-east-1:%s:loadbalancer/app/%s/50dc6c495c0c9188" % (
    ACCOUNT, NAMES.load_balancer)
NATS = ["nat-00", "nat-01", "nat-02"]
EIPS = ["eipalloc-00", "eipalloc-01", "eipalloc-02"]
CONTAINER_INSTANCES = ["arn:aws:ecs:us-east-1:%s:container-instance/%s/%032x" % (ACCOUNT, NAMES.cluster, i)
                       for i in range(3)]


def ec2_tags(**extra):
    tags = dict(system_tags(RACK), **extra)
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def subnet_id(tier, i):
    return "subnet-%s%d" % (tier, i)


def bucket_state():
    params = dict(DEFAULTS, private=True, instance_count=3)
    tags = dict(system_tags(RACK), **parameters_to_tags(params))
    tags.update({"convox:status": "running", "convox:version": "0.1.0", "Team": "ops"})
    return {"name": NAMES.bucket, "tags": tags}


def full_state():
    """A private, highly available rack with every resource present, as reading.read_rack builds it."""
    state = RackState(NAMES)
    state.apps = []
    state.bucket = bucket_state()
    state.vpc = {"VpcId": VPC_ID, "CidrBlock": "10.0.0.0/16", "Tags": ec2_tags(Name=NAMES.base)}
    public, private = subnet_cidrs("10.0.0.0/16", 3)
    for tier, cidrs in (("public", public), ("private", private)):
        for i, cidr in enumerate(cidrs):
            state.subnets.append({"SubnetId": subnet_id(tier, i), "VpcId": VPC_ID, "CidrBlock": cidr,
                                  "AvailabilityZone": ZONES[i],
                                  "Tags": ec2_tags(**{"convox:tier": tier, "convox:index": str(i)})})
    state.igw = {"InternetGatewayId": IGW_ID, "Attachments": [{"VpcId": VPC_ID, "State": "available"}],
                 "Tags": ec2_tags()}
    state.route_tables = [{
        "RouteTableId": "rtb-public", "VpcId": VPC_ID, "Tags": ec2_tags(**{"convox:tier": "public"}),
        "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": IGW_ID}],
        "Associations": [{"RouteTableAssociationId": "rtbassoc-public%d" % i, "RouteTableId": "rtb-public",
                          "SubnetId": subnet_id("public", i), "Main": False} for i in range(3)],
    }] + [{
        "RouteTableId": "rtb-private%d" % i, "VpcId": VPC_ID,
        "Tags": ec2_tags(**{"convox:tier": "private", "convox:index": str(i)}),
        "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": NATS[i]}],
        "Associations": [{"RouteTableAssociationId": "rtbassoc-private%d" % i, "RouteTableId": "rtb-private%d" % i,
                          "SubnetId": subnet_id("private", i), "Main": False}],
    } for i in range(3)]
    state.nat_gateways = [{"NatGatewayId": NATS[i], "State": "available", "SubnetId": subnet_id("public", i),
                           "Tags": ec2_tags(**{"convox:index": str(i)})} for i in range(3)]
    state.deleting_nat_gateways = []
    state.addresses = [{"AllocationId": EIPS[i], "PublicIp": "198.51.100.%d" % (10 + i), "Domain": "vpc",
                        "AssociationId": "eipassoc-0%d" % i, "Tags": ec2_tags(**{"convox:index": str(i)})}
                       for i in range(3)]
    state.security_groups = {
        "router": {"GroupId": ROUTER_SG, "GroupName": NAMES.router_security_group, "VpcId": VPC_ID,
                   "IpPermissions": D.router_ingress(), "Tags": ec2_tags(**{"convox:role": "router"})},
        "instances": {"GroupId": INSTANCES_SG, "GroupName": NAMES.instance_security_group, "VpcId": VPC_ID,
                      "IpPermissions": D.instance_ingress(ROUTER_SG, INSTANCES_SG),
                      "Tags": ec2_tags(**{"convox:role": "instances"})},
    }
    role_arn = "arn:aws:iam::%s:role/convox/%s" % (ACCOUNT, NAMES.instance_role)
    state.role = {"RoleName": NAMES.instance_role, "Arn": role_arn, "Tags": ec2_tags()}
    state.role_policy = D.instance_role_policy("aws", REGION, ACCOUNT, NAMES.cluster, NAMES.log_group)
    state.instance_profile = {
        "InstanceProfileName": NAMES.instance_role,
        "Arn": "arn:aws:iam::%s:instance-profile/convox/%s" % (ACCOUNT, NAMES.instance_role),
        "Roles": [{"RoleName": NAMES.instance_role, "Arn": role_arn}], "Tags": ec2_tags()}
    state.launch_template = {"LaunchTemplateId": LT_ID, "LaunchTemplateName": NAMES.launch_template,
                             "DefaultVersionNumber": 1, "Tags": ec2_tags(), "data": {}}
    state.asg = {"AutoScalingGroupName": NAMES.autoscaling_group, "MinSize": 3, "MaxSize": 3, "DesiredCapacity": 3,
                 "AutoScalingGroupARN": "arn:aws:autoscaling:us-east-1:%s:autoScalingGroup:1:autoScalingGroupName/%s"
                 % (ACCOUNT, NAMES.autoscaling_group), "Tags": ec2_tags()}
    state.cluster = {"clusterName": NAMES.cluster, "status": "ACTIVE",
                     "clusterArn": "arn:aws:ecs:us-east-1:%s:cluster/%s" % (ACCOUNT, NAMES.cluster),
                     "capacityProviders": [NAMES.capacity_provider], "registeredContainerInstancesCount": 3,
                     "defaultCapacityProviderStrategy": [{"capacityProvider": NAMES.capacity_provider, "weight": 1}]}
    state.capacity_provider = {"name": NAMES.capacity_provider, "status": "ACTIVE",
                               "capacityProviderArn": "arn:aws:ecs:us-east-1:%s:capacity-provider/%s"
                               % (ACCOUNT, NAMES.capacity_provider)}
    state.load_balancer = {"LoadBalancerName": NAMES.load_balancer, "LoadBalancerArn": LB_ARN,
                           "Scheme": "internet-facing", "State": {"Code": "active"}}
    state.listeners = [{"ListenerArn": LB_ARN.replace(":loadbalancer/", ":listener/") + "/1", "Port": 80}]
    state.log_group = {"logGroupName": NAMES.log_group, "arn": "arn:aws:logs:us-east-1:%s:log-group:%s:*"
                       % (ACCOUNT, NAMES.log_group)}
    state.flow_logs = [{"FlowLogId": FLOW_LOG, "ResourceId": VPC_ID, "LogDestinationType": "s3", "TrafficType": "ALL",
                        "Tags": ec2_tags()}]
    return state


# What a full teardown deletes, as its plan names it.
ALL_DELETES = sorted(
    ["autoscaling_group " + NAMES.autoscaling_group, "capacity_provider " + NAMES.capacity_provider,
     "ecs_cluster " + NAMES.cluster, "load_balancer " + NAMES.load_balancer, "vpc " + VPC_ID,
     "internet_gateway " + IGW_ID, "launch_template " + NAMES.launch_template,
     "instance_profile " + NAMES.instance_role, "iam_role " + NAMES.instance_role,
     "log_group " + NAMES.log_group, "bucket " + NAMES.bucket, "flow_log " + FLOW_LOG,
     "security_group " + ROUTER_SG, "security_group " + INSTANCES_SG]
    + ["nat_gateway " + n for n in NATS] + ["elastic_ip " + a for a in EIPS]
    + ["subnet " + subnet_id(t, i) for t in ("public", "private") for i in range(3)]
    + ["route_table rtb-public"] + ["route_table rtb-private%d" % i for i in range(3)])


def empty_state():
    state = RackState(NAMES)
    state.apps = []
    return state


class RackTeardown:
    """uninstall.teardown over `state`, as RackService.absent runs it; run() returns the kept buckets."""

    def __init__(self, aws, state, plan, deadline, force, purge_data):
        aws.deadline = deadline
        identity = types.SimpleNamespace(account=ACCOUNT, partition="aws")
        self.run_ctx = Run(aws, REGION, identity, state.names, plan, state)
        self.force, self.purge_data = force, purge_data
        self.kept_buckets, self.kept_repositories = [], []

    def run(self):
        kept = uninstall.teardown(self.run_ctx, self.force, self.purge_data)
        self.kept_buckets, self.kept_repositories = kept.buckets, kept.repositories
        return kept.buckets

    def mark_uninstalling(self):
        record.mark(self.run_ctx, "uninstalling")


def teardown_for(stubbed, state, deadline, check_mode=False, force=False, purge_data=False):
    """RackTeardown wired as RackService.absent wires it: the rack is marked before the first write."""
    plan = Plan(check_mode)
    teardown = RackTeardown(stubbed.aws, state, plan, deadline, force, purge_data)
    plan.before_first_write = teardown.mark_uninstalling
    return teardown, plan


def asg_still_deleting():
    return {"AutoScalingGroups": [{
        "AutoScalingGroupName": NAMES.autoscaling_group, "MinSize": 0, "MaxSize": 0, "DesiredCapacity": 0,
        "DefaultCooldown": 300, "AvailabilityZones": ZONES, "HealthCheckType": "EC2",
        "CreatedTime": datetime.datetime(2026, 1, 1), "Status": "Delete in progress"}]}


def queue_full_teardown(stubbed):
    """Every call of a full teardown, each client answered in the order AWS accepts.

    Where AWS is slow to let go, it answers as AWS does: the group and the load balancer are still
    listed once after their delete, NAT gateways pass through `deleting`, the cluster refuses once
    while ECS deregisters terminated instances, and the instances' group refuses once while the load
    balancer's network interfaces are released.
    """
    ok, err = stubbed.ok, stubbed.error
    cluster, asg, cp = NAMES.cluster, NAMES.autoscaling_group, NAMES.capacity_provider
    # s3: the rack is marked `uninstalling` before any delete
    ok("s3", "put_bucket_tagging")
    # 1. runtime
    ok("ecs", "list_container_instances", {"containerInstanceArns": CONTAINER_INSTANCES}, {"cluster": cluster})
    ok("ecs", "update_container_instances_state", {}, {"cluster": cluster, "containerInstances": CONTAINER_INSTANCES,
                                                       "status": "DRAINING"})
    ok("ecs", "put_cluster_capacity_providers", {}, {"cluster": cluster, "capacityProviders": [],
                                                     "defaultCapacityProviderStrategy": []})
    ok("autoscaling", "update_auto_scaling_group", {}, {"AutoScalingGroupName": asg, "MinSize": 0, "MaxSize": 0,
                                                        "DesiredCapacity": 0})
    ok("autoscaling", "delete_auto_scaling_group", {}, {"AutoScalingGroupName": asg, "ForceDelete": True})
    ok("autoscaling", "describe_auto_scaling_groups", asg_still_deleting(), {"AutoScalingGroupNames": [asg]})
    ok("autoscaling", "describe_auto_scaling_groups", {"AutoScalingGroups": []}, {"AutoScalingGroupNames": [asg]})
    ok("ecs", "delete_capacity_provider", {}, {"capacityProvider": cp})
    err("ecs", "delete_cluster", "ClusterContainsContainerInstancesException",
        message="The Cluster cannot be deleted while Container Instances are active or draining.",
        params={"cluster": cluster})
    ok("ecs", "delete_cluster", {}, {"cluster": cluster})
    # 2. load balancer (asked for with the group and the NAT gateways, all three waited for together)
    ok("elbv2", "modify_load_balancer_attributes", {}, {
        "LoadBalancerArn": LB_ARN, "Attributes": [{"Key": "deletion_protection.enabled", "Value": "false"}]})
    ok("elbv2", "delete_load_balancer", {}, {"LoadBalancerArn": LB_ARN})
    ok("elbv2", "describe_load_balancers",
       {"LoadBalancers": [{"LoadBalancerArn": LB_ARN, "LoadBalancerName": NAMES.load_balancer,
                           "State": {"Code": "active"}}]}, {"LoadBalancerArns": [LB_ARN]})
    err("elbv2", "describe_load_balancers", "LoadBalancerNotFound", status=400, params={"LoadBalancerArns": [LB_ARN]})
    # 3. NAT gateways, then their addresses
    for nat in NATS:
        ok("ec2", "delete_nat_gateway", {"NatGatewayId": nat}, {"NatGatewayId": nat})
    for nat_state in ("deleting", "deleted"):
        ok("ec2", "describe_nat_gateways", {"NatGateways": [{"NatGatewayId": n, "State": nat_state} for n in NATS]},
           {"NatGatewayIds": NATS})
    # instances of the rack left outside its group, once the group is gone
    ok("ec2", "describe_instances", {"Reservations": []})
    for alloc in EIPS:
        ok("ec2", "release_address", {}, {"AllocationId": alloc})
    # 4. network: the VPC's flow log, then the rest
    ok("ec2", "delete_flow_logs", {"Unsuccessful": []}, {"FlowLogIds": [FLOW_LOG]})
    err("ec2", "delete_security_group", "DependencyViolation",
        message="resource %s has a dependent object" % INSTANCES_SG, params={"GroupId": INSTANCES_SG})
    ok("ec2", "delete_security_group", {}, {"GroupId": INSTANCES_SG})
    ok("ec2", "delete_security_group", {}, {"GroupId": ROUTER_SG})
    for i in range(3):
        ok("ec2", "disassociate_route_table", {}, {"AssociationId": "rtbassoc-public%d" % i})
    ok("ec2", "delete_route_table", {}, {"RouteTableId": "rtb-public"})
    for i in range(3):
        ok("ec2", "disassociate_route_table", {}, {"AssociationId": "rtbassoc-private%d" % i})
        ok("ec2", "delete_route_table", {}, {"RouteTableId": "rtb-private%d" % i})
    for tier in ("public", "private"):
        for i in range(3):
            ok("ec2", "delete_subnet", {}, {"SubnetId": subnet_id(tier, i)})
    ok("ec2", "detach_internet_gateway", {}, {"InternetGatewayId": IGW_ID, "VpcId": VPC_ID})
    ok("ec2", "delete_internet_gateway", {}, {"InternetGatewayId": IGW_ID})
    ok("ec2", "delete_vpc", {}, {"VpcId": VPC_ID})
    # 5. template, profile and role, logs
    ok("ec2", "delete_launch_template", {}, {"LaunchTemplateId": LT_ID})
    role = NAMES.instance_role
    ok("iam", "remove_role_from_instance_profile", {}, {"InstanceProfileName": role, "RoleName": role})
    ok("iam", "delete_instance_profile", {}, {"InstanceProfileName": role})
    ok("iam", "list_role_policies", {"PolicyNames": ["ecs-container-instance"], "IsTruncated": False},
       {"RoleName": role})
    ok("iam", "delete_role_policy", {}, {"RoleName": role, "PolicyName": "ecs-container-instance"})
    ok("iam", "list_attached_role_policies", {"AttachedPolicies": [], "IsTruncated": False}, {"RoleName": role})
    ok("iam", "delete_role", {}, {"RoleName": role})
    ok("logs", "delete_log_group", {}, {"logGroupName": NAMES.log_group})
    # 6. the bucket, empty
    ok("s3", "list_object_versions", {"IsTruncated": False}, {"Bucket": NAMES.bucket, "MaxKeys": 1})
    ok("s3", "delete_bucket", {}, {"Bucket": NAMES.bucket})


class Calls:
    """The recorded calls, with questions about their order."""

    def __init__(self, log):
        self.log = log

    def at(self, op, **params):
        found = [i for i, (o, p) in enumerate(self.log) if o == op and all(p.get(k) == v for k, v in params.items())]
        assert found, "no call %s %s" % (op, params or "")
        return found

    def first(self, op, **params):
        return self.at(op, **params)[0]

    def last(self, op, **params):
        return self.at(op, **params)[-1]


@pytest.fixture(scope="module")
def full_run(stubbed_factory, clock_factory):
    """One full teardown, shared by the tests that each check one of AWS's rules on it."""
    stubbed, clock = stubbed_factory(), clock_factory()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(cloud, "time", types.SimpleNamespace(sleep=clock.sleep))
            queue_full_teardown(stubbed)
            teardown, plan = teardown_for(stubbed, full_state(), clock.deadline(900))
            kept = teardown.run()
            stubbed.assert_all_used()
    finally:
        stubbed.close()
    return types.SimpleNamespace(calls=Calls(stubbed.log), kept=kept, plan=plan, stubbed=stubbed)


def test_full_teardown_makes_every_call_aws_needs(full_run):
    kept, plan, stubbed = full_run.kept, full_run.plan, full_run.stubbed
    assert kept == []
    assert stubbed.aws.calls == stubbed.ops(), "Aws.calls records each call in order"
    assert sorted(plan.by_action("delete")) == ALL_DELETES
    assert plan.by_action("update") == ["ecs_cluster " + NAMES.cluster], "drained and detached from its provider"


def test_rack_is_marked_uninstalling_before_anything_is_deleted(full_run):
    calls = full_run.calls
    op, params = calls.log[0]
    assert op == "s3:put_bucket_tagging"
    tags = {t["Key"]: t["Value"] for t in params["Tagging"]["TagSet"]}
    assert tags["convox:status"] == "uninstalling"
    assert int(tags["convox:lease"]) >= time.time() + 900, "the run holds the rack for at least wait_timeout"
    assert tags["System"] == "convox" and tags["Rack"] == RACK and tags["Team"] == "ops"


def test_auto_scaling_group_is_gone_before_capacity_provider_and_cluster_are_deleted(full_run):
    calls = full_run.calls
    gone = calls.last("autoscaling:describe_auto_scaling_groups")  # the one that found no group
    assert len(calls.at("autoscaling:describe_auto_scaling_groups")) == 2, "it waited while the group was deleting"
    assert calls.first("autoscaling:delete_auto_scaling_group") < gone
    assert gone < calls.first("ecs:delete_capacity_provider")
    assert gone < calls.first("ecs:delete_cluster")
    # AWS: "Only capacity providers that aren't associated with a cluster can be deleted"
    assert calls.first("ecs:put_cluster_capacity_providers", capacityProviders=[]) < calls.first(
        "ecs:delete_capacity_provider")
    # instances are drained before the group takes them away
    assert calls.first("ecs:update_container_instances_state") < calls.first("autoscaling:update_auto_scaling_group")


def test_the_slow_deletes_are_asked_for_at_once_and_waited_for_together(full_run):
    """Issue 12, the critical path: the group (1-3 min on AWS), the load balancer (minutes) and the NAT
    gateways (1-5 min) depend on none of each other: all three are deleted before the first wait, so
    the uninstall takes the longest of them, not their sum."""
    calls = full_run.calls
    first_wait = min(calls.first("autoscaling:describe_auto_scaling_groups"),
                     calls.first("elbv2:describe_load_balancers"), calls.first("ec2:describe_nat_gateways"))
    assert calls.first("autoscaling:delete_auto_scaling_group") < first_wait
    assert calls.first("elbv2:delete_load_balancer") < first_wait
    assert calls.last("ec2:delete_nat_gateway") < first_wait


def test_cluster_delete_is_retried_while_ecs_deregisters_instances(full_run):
    calls = full_run.calls
    assert len(calls.at("ecs:delete_cluster")) == 2


def test_load_balancer_is_gone_before_any_security_group_is_deleted(full_run):
    calls = full_run.calls
    gone = calls.last("elbv2:describe_load_balancers", LoadBalancerArns=[LB_ARN])
    assert len(calls.at("elbv2:describe_load_balancers")) == 2, "it waited for the load balancer to go"
    assert calls.first("elbv2:delete_load_balancer") < gone < calls.first("ec2:delete_security_group")
    # the instances, in the instances' group, are gone too
    assert calls.last("autoscaling:describe_auto_scaling_groups") < calls.first("ec2:delete_security_group")


def test_deletion_protection_is_turned_off_right_before_the_load_balancer_is_deleted(full_run):
    """AWS refuses to delete a load balancer whose deletion protection is on (OperationNotPermitted:
    Elastic Load Balancing API reference, DeleteLoadBalancer; user guide, "Deletion protection")."""
    calls = full_run.calls
    off = calls.first("elbv2:modify_load_balancer_attributes")
    assert off + 1 == calls.first("elbv2:delete_load_balancer")


def test_the_flow_log_is_deleted_before_the_vpc(full_run):
    calls = full_run.calls
    assert calls.first("ec2:delete_flow_logs", FlowLogIds=[FLOW_LOG]) < calls.first("ec2:delete_vpc")


def test_nat_gateways_are_deleted_before_any_elastic_ip_is_released(full_run):
    calls = full_run.calls
    deleted = calls.last("ec2:describe_nat_gateways")  # the one that answered `deleted`
    assert len(calls.at("ec2:describe_nat_gateways")) == 2, "it waited through `deleting`"
    for nat in NATS:
        assert calls.first("ec2:delete_nat_gateway", NatGatewayId=nat) < deleted
    assert deleted < calls.first("ec2:release_address")
    assert [p["AllocationId"] for o, p in calls.log if o == "ec2:release_address"] == EIPS


def test_instances_group_is_deleted_before_the_router_group_it_references(full_run):
    calls = full_run.calls
    assert calls.last("ec2:delete_security_group", GroupId=INSTANCES_SG) < calls.first(
        "ec2:delete_security_group", GroupId=ROUTER_SG)
    assert len(calls.at("ec2:delete_security_group", GroupId=INSTANCES_SG)) == 2, "DependencyViolation retried"


def test_route_tables_are_disassociated_before_they_are_deleted(full_run):
    calls = full_run.calls
    for rt in full_state().route_tables:
        delete = calls.first("ec2:delete_route_table", RouteTableId=rt["RouteTableId"])
        for assoc in rt["Associations"]:
            assert calls.first("ec2:disassociate_route_table",
                               AssociationId=assoc["RouteTableAssociationId"]) < delete


def test_subnets_and_internet_gateway_go_before_the_vpc(full_run):
    calls = full_run.calls
    vpc = calls.first("ec2:delete_vpc", VpcId=VPC_ID)
    assert len(calls.at("ec2:delete_subnet")) == 6
    assert calls.last("ec2:delete_subnet") < vpc
    # subnets are free of NAT gateways, of the load balancer and of instances before their delete
    assert calls.last("ec2:describe_nat_gateways") < calls.first("ec2:delete_subnet")
    assert calls.last("elbv2:describe_load_balancers") < calls.first("ec2:delete_subnet")
    assert calls.last("autoscaling:describe_auto_scaling_groups") < calls.first("ec2:delete_subnet")
    detach = calls.first("ec2:detach_internet_gateway", InternetGatewayId=IGW_ID, VpcId=VPC_ID)
    assert detach < calls.first("ec2:delete_internet_gateway", InternetGatewayId=IGW_ID) < vpc
    # AWS detaches the gateway only once nothing in the VPC holds a public address: NAT gateways,
    # the internet-facing load balancer and the instances are gone first
    assert calls.last("ec2:describe_nat_gateways") < detach
    assert calls.last("elbv2:describe_load_balancers") < detach
    assert calls.last("autoscaling:describe_auto_scaling_groups") < detach
    assert calls.last("ec2:delete_security_group") < vpc
    assert calls.last("ec2:delete_route_table") < vpc


def test_role_is_emptied_and_out_of_its_profile_before_it_is_deleted(full_run):
    calls = full_run.calls
    role = calls.first("iam:delete_role", RoleName=NAMES.instance_role)
    assert calls.first("iam:delete_role_policy", PolicyName="ecs-container-instance") < role
    assert calls.first("iam:remove_role_from_instance_profile", RoleName=NAMES.instance_role) < role
    assert calls.first("iam:list_attached_role_policies") < role
    assert calls.first("iam:remove_role_from_instance_profile") < calls.first("iam:delete_instance_profile")


def test_bucket_is_deleted_last(full_run):
    calls = full_run.calls
    assert calls.log[-1] == ("s3:delete_bucket", {"Bucket": NAMES.bucket})


def test_check_mode_plans_every_delete_and_writes_nothing(stubbed, clock):
    stubbed.ok("s3", "list_object_versions", {"IsTruncated": False}, {"Bucket": NAMES.bucket, "MaxKeys": 1})
    teardown, plan = teardown_for(stubbed, full_state(), clock.deadline(900), check_mode=True)
    assert teardown.run() == []
    assert stubbed.ops() == ["s3:list_object_versions"], "check mode only reads"
    assert sorted(plan.by_action("delete")) == ALL_DELETES
    assert clock.now == 0
    stubbed.assert_all_used()


# -- DependencyViolation -------------------------------------------------------------------------------

def groups_only_state():
    state = empty_state()
    state.security_groups = full_state().security_groups
    return state


def test_dependency_violation_twice_then_success_is_retried(stubbed, clock):
    stubbed.ok("ec2", "describe_instances", {"Reservations": []})
    for attempt in range(2):
        stubbed.error("ec2", "delete_security_group", "DependencyViolation", request_id="req-sg-%d" % attempt,
                      message="resource %s has a dependent object" % INSTANCES_SG, params={"GroupId": INSTANCES_SG})
    stubbed.ok("ec2", "delete_security_group", {}, {"GroupId": INSTANCES_SG})
    stubbed.ok("ec2", "delete_security_group", {}, {"GroupId": ROUTER_SG})
    teardown, plan = teardown_for(stubbed, groups_only_state(), clock.deadline(900))
    teardown.run()
    stubbed.assert_all_used()
    assert [p["GroupId"] for o, p in stubbed.log if o == "ec2:delete_security_group"] == [INSTANCES_SG] * 3 + [ROUTER_SG]
    assert clock.sleeps == [3, 4.5], "waits between attempts, growing"
    assert plan.by_action("delete") == ["security_group " + INSTANCES_SG, "security_group " + ROUTER_SG]


def test_dependency_violation_that_never_stops_fails_after_wait_timeout(stubbed, clock):
    stubbed.ok("ec2", "describe_instances", {"Reservations": []})
    for attempt in range(30):
        stubbed.error("ec2", "delete_security_group", "DependencyViolation",
                      message="resource %s has a dependent object" % INSTANCES_SG, request_id="req-sg-%d" % attempt,
                      params={"GroupId": INSTANCES_SG})
    teardown = teardown_for(stubbed, groups_only_state(), clock.deadline(60))[0]
    with pytest.raises(RackError) as e:
        teardown.run()
    err = e.value
    last = len([o for o, p in stubbed.log if o == "ec2:delete_security_group"]) - 1
    assert err.msg == ("timed out after 60s waiting for security group %s to be released; last error: "
                       "security group %s: delete_security_group failed with DependencyViolation: resource %s has a "
                       "dependent object (request id req-sg-%d)" % (INSTANCES_SG, INSTANCES_SG, INSTANCES_SG, last))
    assert err.details["error_code"] == "DependencyViolation"
    assert err.details["resource"] == "security group %s" % INSTANCES_SG
    assert clock.now == 60, "gave up at wait_timeout, not before"
    attempts = [p["GroupId"] for o, p in stubbed.log if o == "ec2:delete_security_group"]
    assert len(attempts) > 2 and set(attempts) == {INSTANCES_SG}, "nothing after the group is attempted"


# -- apps --------------------------------------------------------------------------------------------------

def test_apps_without_force_refuse_before_any_call(stubbed, clock):
    state = full_state()
    state.apps = ["api", "web"]
    teardown, plan = teardown_for(stubbed, state, clock.deadline(900))
    with pytest.raises(RackError) as e:
        teardown.run()
    assert e.value.msg == "rack prod has apps (api, web): delete them first, or set force: true"
    assert e.value.details == {"apps": ["api", "web"]}
    assert stubbed.aws.calls == [] and stubbed.log == []
    assert plan.changes == []


# -- the bucket ------------------------------------------------------------------------------------------

def bucket_only_state():
    state = empty_state()
    state.bucket = bucket_state()
    return state


def test_bucket_holding_objects_is_kept_without_purge_data(stubbed, clock):
    stubbed.ok("ec2", "describe_instances", {"Reservations": []})
    stubbed.ok("s3", "list_object_versions", {"IsTruncated": True, "Versions": [{"Key": "releases/r1.json",
                                                                                "VersionId": "v1"}]},
               {"Bucket": NAMES.bucket, "MaxKeys": 1})
    stubbed.ok("s3", "put_bucket_tagging")
    stubbed.ok("s3", "put_bucket_tagging")
    teardown, plan = teardown_for(stubbed, bucket_only_state(), clock.deadline(900))
    assert teardown.run() == [NAMES.bucket]
    assert teardown.kept_buckets == [NAMES.bucket]
    stubbed.assert_all_used()
    ops = stubbed.ops()
    assert not {"s3:delete_bucket", "s3:delete_objects", "s3:delete_bucket_policy"} & set(ops), \
        "a kept bucket keeps its data and its TLS-only policy"
    final = {t["Key"]: t["Value"] for t in stubbed.log[-1][1]["Tagging"]["TagSet"]}
    assert final["convox:status"] == "uninstalled"
    assert "convox:lease" not in final, "a kept bucket is not held by a run"
    assert final["Rack"] == RACK and final["convox:vpc_cidr"] == "10.0.0.0/16", "parameters stay recorded"
    assert plan.changes[-1]["action"] == "update"
    assert "purge_data" in plan.changes[-1]["changes"]["kept"]


def test_empty_bucket_is_deleted_without_purge_data(stubbed, clock):
    stubbed.ok("ec2", "describe_instances", {"Reservations": []})
    stubbed.ok("s3", "list_object_versions", {"IsTruncated": False}, {"Bucket": NAMES.bucket, "MaxKeys": 1})
    stubbed.ok("s3", "put_bucket_tagging")
    stubbed.ok("s3", "delete_bucket", {}, {"Bucket": NAMES.bucket})
    teardown = teardown_for(stubbed, bucket_only_state(), clock.deadline(900))[0]
    assert teardown.run() == []
    stubbed.assert_all_used()
    assert not {"s3:delete_objects", "s3:delete_bucket_policy"} & set(stubbed.ops())


def _versions(prefix, n):
    return [{"Key": "%s/%04d" % (prefix, i), "VersionId": "ver-%s-%04d" % (prefix, i), "IsLatest": True}
            for i in range(n)]


def _markers(prefix, n):
    return [{"Key": "%s/%04d" % (prefix, i), "VersionId": "dm-%s-%04d" % (prefix, i), "IsLatest": True}
            for i in range(n)]


def queue_purge(stubbed, first):
    """An uninstall with purge_data, up to its emptying: remove_bucket's check (MaxKeys=1) finds the
    first entry of the first listing, and the rack is marked `uninstalling`. Over https nothing
    touches the bucket policy, so the emptying follows at once."""
    stubbed.ok("ec2", "describe_instances", {"Reservations": []})
    stubbed.ok("s3", "list_object_versions", {"IsTruncated": True, "Versions": first["Versions"][:1]},
               {"Bucket": NAMES.bucket, "MaxKeys": 1})
    stubbed.ok("s3", "put_bucket_tagging")


def batch(listing):
    """The delete_objects of one listing: its first 1,000 entries, versions then delete markers."""
    entries = listing.get("Versions", []) + listing.get("DeleteMarkers", [])
    return {"Bucket": NAMES.bucket, "Delete": {"Objects": [{"Key": e["Key"], "VersionId": e["VersionId"]}
                                                           for e in entries[:1000]], "Quiet": True}}


NOTHING_LEFT = {"IsTruncated": False}


def queue_listing(stubbed, listing):
    """Every listing of the emptying starts from the start of the bucket (no markers), 1,000 at most."""
    stubbed.ok("s3", "list_object_versions", listing, {"Bucket": NAMES.bucket, "MaxKeys": 1000})


def queue_emptying(stubbed, listings):
    """Each listing, then the delete of what it lists; then a listing that finds nothing left."""
    for listing in listings:
        queue_listing(stubbed, listing)
        stubbed.ok("s3", "delete_objects", {"Deleted": []}, batch(listing))
    queue_listing(stubbed, NOTHING_LEFT)


def deleted_entries(stubbed):
    """(Key, VersionId) of every entry sent to delete_objects, in order."""
    return [(o["Key"], o["VersionId"]) for op, p in stubbed.log if op == "s3:delete_objects"
            for o in p["Delete"]["Objects"]]


def s3_after_marking(stubbed):
    """The S3 calls after the rack is marked `uninstalling`: the purge itself."""
    ops = [op for op in stubbed.ops() if op.startswith("s3:")]
    return ops[ops.index("s3:put_bucket_tagging") + 1:]


def test_purge_data_lists_again_after_each_batch_until_nothing_is_left(stubbed, clock):
    """1,200 versions and 300 delete markers: the first listing stops at 1,000 entries, the second
    (once those are deleted) has the other 500, the third finds nothing; then the bucket goes."""
    first = {"IsTruncated": True, "Versions": _versions("a", 700), "DeleteMarkers": _markers("b", 300),
             "NextKeyMarker": "b/0299", "NextVersionIdMarker": "dm-b-0299"}
    second = {"IsTruncated": False, "Versions": _versions("c", 500)}
    queue_purge(stubbed, first)
    queue_emptying(stubbed, [first, second])
    stubbed.ok("s3", "delete_bucket", {}, {"Bucket": NAMES.bucket})
    teardown, plan = teardown_for(stubbed, bucket_only_state(), clock.deadline(900), purge_data=True)
    assert teardown.run() == []
    stubbed.assert_all_used()

    batches = [p["Delete"]["Objects"] for o, p in stubbed.log if o == "s3:delete_objects"]
    assert [len(b) for b in batches] == [1000, 500]
    deleted = deleted_entries(stubbed)
    expected = [(v["Key"], v["VersionId"]) for v in first["Versions"] + first["DeleteMarkers"] + second["Versions"]]
    assert len(deleted) == len(set(deleted)) == 1500
    assert set(deleted) == set(expected), "every version and delete marker, once"
    assert {vid for key, vid in deleted if vid.startswith("dm-")} == {m["VersionId"] for m in first["DeleteMarkers"]}
    assert all(p["Delete"]["Quiet"] for o, p in stubbed.log if o == "s3:delete_objects")
    listings = [p for o, p in stubbed.log if o == "s3:list_object_versions"][1:]
    assert listings == [{"Bucket": NAMES.bucket, "MaxKeys": 1000}] * 3, "each listing starts afresh"
    assert s3_after_marking(stubbed) == (["s3:list_object_versions", "s3:delete_objects"] * 2
                                         + ["s3:list_object_versions", "s3:delete_bucket"])
    assert stubbed.ops()[-1] == "s3:delete_bucket"
    assert plan.changes[-1] == {"resource": "bucket", "name": NAMES.bucket, "action": "delete",
                                "changes": {"purge_data": True}}


def test_purge_data_splits_an_oversized_listing_into_batches_of_1000(stubbed, clock):
    """S3-compatible stores may ignore MaxKeys: a listing of 2,500 entries is still deleted at most
    1,000 at a time, listing again after each batch."""
    versions, markers = _versions("a", 2000), _markers("a", 500)
    listings = [{"IsTruncated": False, "Versions": versions, "DeleteMarkers": markers},
                {"IsTruncated": False, "Versions": versions[1000:], "DeleteMarkers": markers},
                {"IsTruncated": False, "DeleteMarkers": markers}]
    queue_purge(stubbed, listings[0])
    queue_emptying(stubbed, listings)
    stubbed.ok("s3", "delete_bucket", {}, {"Bucket": NAMES.bucket})
    teardown = teardown_for(stubbed, bucket_only_state(), clock.deadline(900), purge_data=True)[0]
    teardown.run()
    stubbed.assert_all_used()
    sizes = [len(p["Delete"]["Objects"]) for o, p in stubbed.log if o == "s3:delete_objects"]
    assert sizes == [1000, 1000, 500]
    deleted = deleted_entries(stubbed)
    assert len(deleted) == len(set(deleted)) == 2500
    assert set(deleted) == {(e["Key"], e["VersionId"]) for e in versions + markers}
    assert stubbed.ops()[-1] == "s3:delete_bucket"


def test_purge_data_stops_at_an_object_s3_would_not_delete(stubbed, clock):
    listing = {"IsTruncated": False, "Versions": _versions("a", 3)}
    queue_purge(stubbed, listing)
    queue_listing(stubbed, listing)
    stubbed.ok("s3", "delete_objects", {"Errors": [{"Key": "a/0001", "VersionId": "ver-a-0001",
                                                    "Code": "AccessDenied", "Message": "Access Denied"}]},
               batch(listing))
    teardown = teardown_for(stubbed, bucket_only_state(), clock.deadline(900), purge_data=True)[0]
    with pytest.raises(RackError) as e:
        teardown.run()
    assert e.value.msg == ("bucket %s: could not delete a/0001 (version ver-a-0001): AccessDenied Access Denied"
                           % NAMES.bucket)
    assert e.value.details == {"resource": "bucket %s" % NAMES.bucket, "error_code": "AccessDenied"}
    assert s3_after_marking(stubbed) == ["s3:list_object_versions", "s3:delete_objects"], \
        "no listing after the refusal, and no delete_bucket"
    stubbed.assert_all_used()


def test_failed_purge_leaves_the_tls_only_policy_in_place(stubbed, clock):
    """Over https (AWS), the TLS-only policy refuses nothing the rack does: it stays throughout."""
    assert stubbed.aws.endpoint_scheme("s3") == "https"
    listing = {"IsTruncated": False, "Versions": _versions("a", 3)}
    queue_purge(stubbed, listing)
    queue_listing(stubbed, listing)
    stubbed.ok("s3", "delete_objects", {"Errors": [{"Key": "a/0001", "VersionId": "ver-a-0001",
                                                    "Code": "AccessDenied", "Message": "Access Denied"}]})
    teardown = teardown_for(stubbed, bucket_only_state(), clock.deadline(900), purge_data=True)[0]
    with pytest.raises(RackError):
        teardown.run()
    stubbed.assert_all_used()
    assert [op for op in stubbed.ops() if "policy" in op] == []


def test_purge_data_survives_s3_slowdown_between_listings(stubbed, clock, retry_sleeps):
    first = {"IsTruncated": True, "Versions": _versions("a", 1000), "NextKeyMarker": "a/0999",
             "NextVersionIdMarker": "ver-a-0999"}
    second = {"IsTruncated": False, "Versions": _versions("b", 10)}
    queue_purge(stubbed, first)
    queue_listing(stubbed, first)
    stubbed.ok("s3", "delete_objects", {"Deleted": []}, batch(first))
    stubbed.error("s3", "list_object_versions", "SlowDown", message="Please reduce your request rate.", status=503,
                  params={"Bucket": NAMES.bucket, "MaxKeys": 1000})
    queue_emptying(stubbed, [second])
    stubbed.ok("s3", "delete_bucket", {}, {"Bucket": NAMES.bucket})
    teardown = teardown_for(stubbed, bucket_only_state(), clock.deadline(900), purge_data=True)[0]
    assert teardown.run() == []
    stubbed.assert_all_used()
    assert len(retry_sleeps) == 1, "the SlowDown listing is retried"
    deleted = deleted_entries(stubbed)
    assert len(deleted) == len(set(deleted)) == 1010
    assert set(deleted) == {(v["Key"], v["VersionId"]) for v in first["Versions"] + second["Versions"]}
    assert s3_after_marking(stubbed) == ["s3:list_object_versions", "s3:delete_objects",
                                         "s3:list_object_versions", "s3:list_object_versions", "s3:delete_objects",
                                         "s3:list_object_versions", "s3:delete_bucket"]


# -- the bucket over plain http (the local AWS) ------------------------------------------------------------

TLS_ONLY_POLICY = json.dumps(D.tls_only_bucket_policy("aws", NAMES.bucket))


def queue_http_purge(stubbed, first):
    """Over http the TLS-only policy would refuse every request: it is read and lifted first."""
    queue_purge(stubbed, first)
    stubbed.ok("s3", "get_bucket_policy", {"Policy": TLS_ONLY_POLICY}, {"Bucket": NAMES.bucket})
    stubbed.ok("s3", "delete_bucket_policy", {}, {"Bucket": NAMES.bucket})


def test_purge_over_http_lifts_the_tls_only_policy_before_emptying(stubbed_http_s3, clock):
    stubbed = stubbed_http_s3
    assert stubbed.aws.endpoint_scheme("s3") == "http"
    listing = {"IsTruncated": False, "Versions": _versions("a", 3), "DeleteMarkers": _markers("b", 2)}
    queue_http_purge(stubbed, listing)
    queue_emptying(stubbed, [listing])
    stubbed.ok("s3", "delete_bucket", {}, {"Bucket": NAMES.bucket})
    teardown = teardown_for(stubbed, bucket_only_state(), clock.deadline(900), purge_data=True)[0]
    assert teardown.run() == []
    stubbed.assert_all_used()
    assert s3_after_marking(stubbed) == ["s3:get_bucket_policy", "s3:delete_bucket_policy",
                                         "s3:list_object_versions", "s3:delete_objects",
                                         "s3:list_object_versions", "s3:delete_bucket"], \
        "lifted before the first listing; not put back on a bucket that is deleted"


def test_purge_over_http_of_a_bucket_without_policy_lifts_nothing(stubbed_http_s3, clock):
    stubbed = stubbed_http_s3
    listing = {"IsTruncated": False, "Versions": _versions("a", 3)}
    queue_purge(stubbed, listing)
    stubbed.error("s3", "get_bucket_policy", "NoSuchBucketPolicy", status=404, params={"Bucket": NAMES.bucket})
    queue_emptying(stubbed, [listing])
    stubbed.ok("s3", "delete_bucket", {}, {"Bucket": NAMES.bucket})
    teardown = teardown_for(stubbed, bucket_only_state(), clock.deadline(900), purge_data=True)[0]
    assert teardown.run() == []
    stubbed.assert_all_used()
    assert s3_after_marking(stubbed) == ["s3:get_bucket_policy", "s3:list_object_versions", "s3:delete_objects",
                                         "s3:list_object_versions", "s3:delete_bucket"]


def _refuse_an_object(stubbed, listing):
    queue_listing(stubbed, listing)
    stubbed.ok("s3", "delete_objects", {"Errors": [{"Key": "a/0001", "VersionId": "ver-a-0001",
                                                    "Code": "AccessDenied", "Message": "Access Denied"}]},
               batch(listing))
    return ("bucket %s: could not delete a/0001 (version ver-a-0001): AccessDenied Access Denied" % NAMES.bucket,
            ["s3:list_object_versions", "s3:delete_objects"])


def _deny_the_second_listing(stubbed, listing):
    queue_listing(stubbed, listing)
    stubbed.ok("s3", "delete_objects", {"Deleted": []}, batch(listing))
    stubbed.error("s3", "list_object_versions", "AccessDenied", message="Access Denied", status=403,
                  request_id="req-s3-7", params={"Bucket": NAMES.bucket, "MaxKeys": 1000})
    return ("bucket %s: list_object_versions failed with AccessDenied: Access Denied (request id req-s3-7)"
            % NAMES.bucket, ["s3:list_object_versions", "s3:delete_objects", "s3:list_object_versions"])


@pytest.mark.parametrize("failure", [_refuse_an_object, _deny_the_second_listing],
                         ids=["object-refused", "listing-denied"])
def test_failed_purge_over_http_puts_the_tls_only_policy_back(stubbed_http_s3, clock, failure):
    stubbed = stubbed_http_s3
    listing = {"IsTruncated": False, "Versions": _versions("a", 3)}
    queue_http_purge(stubbed, listing)
    msg, emptying = failure(stubbed, listing)
    stubbed.ok("s3", "put_bucket_policy", {}, {"Bucket": NAMES.bucket, "Policy": TLS_ONLY_POLICY})
    teardown = teardown_for(stubbed, bucket_only_state(), clock.deadline(900), purge_data=True)[0]
    with pytest.raises(RackError) as e:
        teardown.run()
    assert e.value.msg == msg, "the emptying's own error is reported"
    stubbed.assert_all_used()
    assert s3_after_marking(stubbed) == (["s3:get_bucket_policy", "s3:delete_bucket_policy"] + emptying
                                         + ["s3:put_bucket_policy"]), "put back, and the bucket is kept"
    assert stubbed.log[-1] == ("s3:put_bucket_policy", {"Bucket": NAMES.bucket, "Policy": TLS_ONLY_POLICY})


# -- idempotence -----------------------------------------------------------------------------------------

def test_network_already_gone_counts_as_deleted(stubbed, clock):
    """A second uninstall, or one racing another: every 'not found' on delete is done, not an error."""
    state = empty_state()
    full = full_state()
    state.security_groups = {"instances": full.security_groups["instances"]}
    state.subnets = full.subnets[:1]
    state.route_tables = full.route_tables[:1]
    state.igw = full.igw
    state.vpc = full.vpc
    state.addresses = full.addresses[:1]
    state.load_balancer = full.load_balancer
    stubbed.ok("ec2", "describe_instances", {"Reservations": []})
    stubbed.error("elbv2", "modify_load_balancer_attributes", "LoadBalancerNotFound")
    stubbed.error("elbv2", "delete_load_balancer", "LoadBalancerNotFound")
    stubbed.error("elbv2", "describe_load_balancers", "LoadBalancerNotFound")
    stubbed.error("ec2", "release_address", "InvalidAllocationID.NotFound")
    stubbed.error("ec2", "delete_security_group", "InvalidGroup.NotFound")
    for i in range(3):
        stubbed.error("ec2", "disassociate_route_table", "InvalidAssociationID.NotFound",
                      params={"AssociationId": "rtbassoc-public%d" % i})
    stubbed.error("ec2", "delete_route_table", "InvalidRouteTableID.NotFound")
    stubbed.error("ec2", "delete_subnet", "InvalidSubnetID.NotFound")
    stubbed.error("ec2", "detach_internet_gateway", "Gateway.NotAttached")
    stubbed.error("ec2", "delete_internet_gateway", "InvalidInternetGatewayID.NotFound")
    stubbed.error("ec2", "delete_vpc", "InvalidVpcID.NotFound")
    teardown = teardown_for(stubbed, state, clock.deadline(900))[0]
    assert teardown.run() == []
    stubbed.assert_all_used()
    assert clock.sleeps == []


ASG_NOT_FOUND = "AutoScalingGroup name not found - AutoScalingGroup '%s' not found" % NAMES.autoscaling_group


def _describe_finds_nothing(stubbed):
    stubbed.ok("autoscaling", "describe_auto_scaling_groups", {"AutoScalingGroups": []},
               {"AutoScalingGroupNames": [NAMES.autoscaling_group]})


def _describe_says_not_found(stubbed):
    stubbed.error("autoscaling", "describe_auto_scaling_groups", "ValidationError",
                  message="AutoScalingGroup name NOT FOUND", params={"AutoScalingGroupNames": [NAMES.autoscaling_group]})


@pytest.mark.parametrize("describe", [_describe_finds_nothing, _describe_says_not_found],
                         ids=["describe-empty", "describe-not-found"])
def test_auto_scaling_group_already_gone_counts_as_deleted(stubbed, clock, describe):
    state = empty_state()
    state.asg = full_state().asg
    stubbed.error("autoscaling", "update_auto_scaling_group", "ValidationError", message=ASG_NOT_FOUND)
    stubbed.error("autoscaling", "delete_auto_scaling_group", "ValidationError", message=ASG_NOT_FOUND)
    describe(stubbed)
    stubbed.ok("ec2", "describe_instances", {"Reservations": []})
    teardown, plan = teardown_for(stubbed, state, clock.deadline(900))
    assert teardown.run() == []
    stubbed.assert_all_used()
    assert plan.by_action("delete") == ["autoscaling_group " + NAMES.autoscaling_group]
    assert clock.sleeps == [], "nothing left to wait for"


def test_other_auto_scaling_validation_errors_still_fail(stubbed, clock):
    state = empty_state()
    state.asg = full_state().asg
    stubbed.error("autoscaling", "update_auto_scaling_group", "ValidationError", request_id="req-asg-1",
                  message="Desired capacity:0 must be between the specified min size:1 and max size:0")
    teardown = teardown_for(stubbed, state, clock.deadline(900))[0]
    with pytest.raises(RackError) as e:
        teardown.run()
    assert e.value.msg == ("auto scaling group %s: update_auto_scaling_group failed with ValidationError: Desired "
                           "capacity:0 must be between the specified min size:1 and max size:0 (request id req-asg-1)"
                           % NAMES.autoscaling_group)
    assert "autoscaling:delete_auto_scaling_group" not in stubbed.ops()
