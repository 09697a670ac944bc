# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""state: absent. Remove every resource of a rack, found by its tags, in an order AWS accepts.

The order follows AWS's documented dependencies (the local emulator lets most ordering
mistakes through, so tests/unit/test_teardown_order.py checks it with botocore's Stubber):

1. drain container instances, detach the capacity provider, delete the auto scaling group
   (terminating its instances) and any instance of the rack left outside it;
2. capacity provider, ECS cluster;
3. load balancer (its listener goes with it), waiting until it is gone;
4. NAT gateways, waiting until deleted, then their elastic IPs;
5. security groups (instances first: it references the router's), route tables,
   subnets, internet gateway (detached first), VPC;
6. launch template, instance profile and role, log group;
7. the bucket: deleted when empty, emptied first when purge_data, kept (and named) otherwise.

With force, the rack's apps go first, as convox.rack.app deletes them (their buckets and
repositories holding data are kept and named unless purge_data).

Every delete treats "not found" as done, so a second uninstall, or one after a half-built
install, is safe. Deletes AWS refuses while a dependency drains (DependencyViolation) are
retried until wait_timeout.
"""

from __future__ import annotations

from .errors import AWSCallError, RackError
from .observe import ec2_filters
from .params import LEASE_TAG, STATE_TAG_PREFIX, lease_until

LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


class RackTeardown:
    def __init__(self, aws, state, plan, deadline, force, purge_data):
        self.aws = aws
        self.state = state
        self.names = state.names
        self.rack = self.names.rack
        self.plan = plan
        self.deadline = deadline
        self.force = force
        self.purge_data = purge_data
        self.kept_buckets = []
        self.kept_repositories = []

    def _retry_dependency(self, what, fn, codes=("DependencyViolation",)):
        """Retry a delete AWS refuses while something it depends on is still being released."""
        last = {}

        def attempt():
            try:
                fn()
                return True
            except AWSCallError as e:
                if e.code in codes:
                    last["error"] = e
                    return False
                raise
        try:
            self.deadline.wait_for(what, attempt, interval=3)
        except RackError as e:
            if "error" in last:
                raise RackError("%s; last error: %s" % (e.msg, last["error"].msg), **last["error"].details)
            raise

    def run(self):
        if self.state.apps and not self.force:
            raise RackError("rack %s has apps (%s): delete them first, or set force: true"
                            % (self.rack, ", ".join(self.state.apps)), apps=self.state.apps)
        self.remove_apps()
        self.remove_runtime()
        self.remove_load_balancer()
        self.remove_nat()
        self.remove_network()
        self.remove_templates_and_roles()
        self.remove_bucket()
        return self.kept_buckets

    def mark_uninstalling(self):
        bucket = self.state.bucket
        if bucket is None:
            return
        tags = dict(bucket["tags"])
        tags[STATE_TAG_PREFIX + "status"] = "uninstalling"
        tags[LEASE_TAG] = lease_until(self.deadline.seconds)
        self.aws.call("s3", "put_bucket_tagging", "bucket %s" % bucket["name"], Bucket=bucket["name"],
                      Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]})
        bucket["tags"] = tags

    # -- 0: apps (with force) ------------------------------------------------------------------------------
    def remove_apps(self):
        """Each app's repository, bucket and log group, as convox.rack.app deletes them."""
        if not self.state.apps:
            return
        from .app import AppNames, remove_app  # app.py imports this module (empty_bucket)
        for app in self.state.apps:
            kept = remove_app(self.aws, AppNames.of_rack(self.names, app), self.plan, self.purge_data)
            self.kept_buckets.extend(kept["buckets"])
            self.kept_repositories.extend(kept["repositories"])

    # -- 1, 2: instances, cluster ------------------------------------------------------------------
    def remove_runtime(self):
        cluster, asg, cp = self.state.cluster, self.state.asg, self.state.capacity_provider
        cluster_name = self.names.cluster
        if cluster is not None:
            if cluster.get("registeredContainerInstancesCount"):
                self.plan.change("ecs_cluster", cluster_name, "update", self._drain,
                                 detail={"drain": "container instances"})
            if cluster.get("capacityProviders"):
                self.plan.change("ecs_cluster", cluster_name, "update", lambda: self.aws.call(
                    "ecs", "put_cluster_capacity_providers", "ECS cluster %s" % cluster_name, cluster=cluster_name,
                    retry_on=("UpdateInProgressException", "ResourceInUseException"),
                    capacityProviders=[], defaultCapacityProviderStrategy=[]),
                    detail={"capacity_providers": []})
        if asg is not None:
            name = asg["AutoScalingGroupName"]
            self.plan.change("autoscaling_group", name, "delete", lambda: self._delete_asg(name))
        self._terminate_strays()
        if cp is not None:
            self.plan.change("capacity_provider", cp["name"], "delete", lambda: self.aws.call(
                "ecs", "delete_capacity_provider", "capacity provider %s" % cp["name"],
                capacityProvider=cp["name"]))
        if cluster is not None:
            self.plan.change("ecs_cluster", cluster_name, "delete", lambda: self._retry_dependency(
                "ECS cluster %s to release its container instances" % cluster_name,
                lambda: self.aws.call("ecs", "delete_cluster", "ECS cluster %s" % cluster_name,
                                      ignore=("ClusterNotFoundException",), cluster=cluster_name),
                codes=("ClusterContainsContainerInstancesException", "ClusterContainsTasksException",
                       "ClusterContainsServicesException")))

    def _drain(self):
        cluster = self.names.cluster
        arns = self.aws.paginate("ecs", "list_container_instances", "ECS cluster %s" % cluster,
                                 cluster=cluster).get("containerInstanceArns", [])
        for i in range(0, len(arns), 10):
            self.aws.call("ecs", "update_container_instances_state", "ECS cluster %s" % cluster, cluster=cluster,
                          containerInstances=arns[i:i + 10], status="DRAINING")

    def _delete_asg(self, name):
        def asg(op, **kw):
            try:
                return self.aws.call("autoscaling", op, "auto scaling group %s" % name, **kw)
            except AWSCallError as e:
                # A group that finished deleting since it was read: done.
                if e.code == "ValidationError" and "not found" in e.msg.lower():
                    return None
                raise
        asg("update_auto_scaling_group", AutoScalingGroupName=name, MinSize=0, MaxSize=0, DesiredCapacity=0)
        asg("delete_auto_scaling_group", AutoScalingGroupName=name, ForceDelete=True)

        def gone():
            found = asg("describe_auto_scaling_groups", AutoScalingGroupNames=[name]) or {}
            return not found.get("AutoScalingGroups")
        self.deadline.wait_for("auto scaling group %s to terminate its instances and go" % name, gone)

    def _live_instances(self):
        live = [{"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}]
        res = self.aws.paginate("ec2", "describe_instances", "instances of rack %s" % self.rack,
                                Filters=ec2_filters(self.rack, live))
        return [i["InstanceId"] for r in res.get("Reservations", []) for i in r["Instances"]]

    def _terminate_strays(self):
        if self.plan.check_mode:
            return
        strays = self._live_instances()
        if not strays:
            return

        def terminate():
            self.aws.call("ec2", "terminate_instances", "instances %s" % ", ".join(strays), InstanceIds=strays)
            self.deadline.wait_for("instances %s to terminate" % ", ".join(strays), lambda: not self._live_instances())
        self.plan.change("instances", ", ".join(strays), "delete", terminate)

    # -- 3: load balancer ------------------------------------------------------------------------------
    def remove_load_balancer(self):
        lb = self.state.load_balancer
        if lb is None:
            return
        name, arn = lb["LoadBalancerName"], lb["LoadBalancerArn"]

        def delete():
            self.aws.call("elbv2", "delete_load_balancer", "load balancer %s" % name,
                          ignore=("LoadBalancerNotFound",), LoadBalancerArn=arn)
            self.deadline.wait_for("load balancer %s to be deleted" % name, lambda: not (self.aws.call(
                "elbv2", "describe_load_balancers", "load balancer %s" % name, ignore=("LoadBalancerNotFound",),
                LoadBalancerArns=[arn]) or {}).get("LoadBalancers"))
        self.plan.change("load_balancer", name, "delete", delete)

    # -- 4: NAT gateways and their addresses -------------------------------------------------------
    def remove_nat(self):
        nats = [n["NatGatewayId"] for n in self.state.nat_gateways]
        pending = nats + [n["NatGatewayId"] for n in getattr(self.state, "deleting_nat_gateways", [])]
        for nat_id in nats:
            self.plan.change("nat_gateway", nat_id, "delete", lambda nat_id=nat_id: self.aws.call(
                "ec2", "delete_nat_gateway", "NAT gateway %s" % nat_id, ignore=("NatGatewayNotFound",),
                NatGatewayId=nat_id))
        if pending and not self.plan.check_mode:
            self.deadline.wait_for("NAT gateways %s to be deleted" % ", ".join(pending),
                                   lambda: self._nats_gone(pending))
        for addr in self.state.addresses + self._extras("elastic_ip"):
            self.release_address(addr)

    def _extras(self, kind):
        return list(self.state.extras.get(kind, []))

    def release_address(self, addr, detail=None):
        alloc = addr["AllocationId"]
        self.plan.change("elastic_ip", alloc, "delete", lambda: self._retry_dependency(
            "elastic IP %s to be released by its NAT gateway" % alloc,
            lambda: self.aws.call("ec2", "release_address", "elastic IP %s" % alloc,
                                  ignore=("InvalidAllocationID.NotFound",), AllocationId=alloc),
            codes=("InvalidIPAddress.InUse", "AuthFailure")), detail=detail)

    def _nats_gone(self, ids):
        nats = self.aws.call("ec2", "describe_nat_gateways", "NAT gateways %s" % ", ".join(ids),
                             ignore=("NatGatewayNotFound",), NatGatewayIds=ids)
        return all(n["State"] in ("deleted", "failed") for n in (nats or {}).get("NatGateways", []))

    # -- 5: network ----------------------------------------------------------------------------------------
    def remove_network(self):
        groups = self.state.security_groups
        for role in ("instances", "router"):
            group = groups.get(role)
            if group is None:
                continue
            gid = group["GroupId"]
            self.plan.change("security_group", gid, "delete", lambda gid=gid: self._retry_dependency(
                "security group %s to be released" % gid,
                lambda: self.aws.call("ec2", "delete_security_group", "security group %s" % gid,
                                      ignore=("InvalidGroup.NotFound",), GroupId=gid)))
        for rt in self.state.route_tables + self._extras("route_table"):
            if not any(a.get("Main") for a in rt.get("Associations", [])):
                self.delete_route_table(rt)
        for subnet in self.state.subnets:
            sid = subnet["SubnetId"]
            self.plan.change("subnet", sid, "delete", lambda sid=sid: self._retry_dependency(
                "subnet %s to be released" % sid,
                lambda: self.aws.call("ec2", "delete_subnet", "subnet %s" % sid,
                                      ignore=("InvalidSubnetID.NotFound",), SubnetId=sid)))
        for igw in [self.state.igw] + self._extras("internet_gateway"):
            if igw is not None:
                self.delete_internet_gateway(igw)
        for vpc in [self.state.vpc] + self._extras("vpc"):
            if vpc is not None:
                self.delete_vpc(vpc)

    # -- duplicates (observe.resolve_duplicates): removed by an install once it no longer needs them ---------
    def remove_extras(self):
        """Delete the duplicates of kept resources, in dependency order, each change saying why."""
        why = {"reason": "duplicate of the rack's own (a create sent twice)"}
        for rt in self._extras("route_table"):
            self.delete_route_table(rt, why)
        for igw in self._extras("internet_gateway"):
            self.delete_internet_gateway(igw, why)
        for addr in self._extras("elastic_ip"):
            self.release_address(addr, why)
        for vpc in self._extras("vpc"):
            self.delete_vpc(vpc, why)

    def delete_route_table(self, rt, detail=None):
        self.plan.change("route_table", rt["RouteTableId"], "delete", lambda: self._delete_route_table(rt),
                         detail=detail)

    def delete_internet_gateway(self, igw, detail=None):
        self.plan.change("internet_gateway", igw["InternetGatewayId"], "delete", lambda: self._delete_igw(igw),
                         detail=detail)

    def delete_vpc(self, vpc, detail=None):
        vid = vpc["VpcId"]
        self.plan.change("vpc", vid, "delete", lambda: self._retry_dependency(
            "VPC %s to be released" % vid,
            lambda: self.aws.call("ec2", "delete_vpc", "VPC %s" % vid, ignore=("InvalidVpcID.NotFound",),
                                  VpcId=vid)), detail=detail)

    def _delete_route_table(self, rt):
        rt_id = rt["RouteTableId"]
        for assoc in rt.get("Associations", []):
            self.aws.call("ec2", "disassociate_route_table", "route table %s" % rt_id,
                          ignore=("InvalidAssociationID.NotFound",),
                          AssociationId=assoc["RouteTableAssociationId"])
        self.aws.call("ec2", "delete_route_table", "route table %s" % rt_id,
                      ignore=("InvalidRouteTableID.NotFound",), RouteTableId=rt_id)

    def _delete_igw(self, igw):
        igw_id = igw["InternetGatewayId"]
        for att in igw.get("Attachments", []):
            self._retry_dependency("internet gateway %s to be detached" % igw_id, lambda att=att: self.aws.call(
                "ec2", "detach_internet_gateway", "internet gateway %s" % igw_id,
                ignore=("Gateway.NotAttached", "InvalidInternetGatewayID.NotFound"),
                InternetGatewayId=igw_id, VpcId=att["VpcId"]))
        self.aws.call("ec2", "delete_internet_gateway", "internet gateway %s" % igw_id,
                      ignore=("InvalidInternetGatewayID.NotFound",), InternetGatewayId=igw_id)

    # -- 6: templates, roles, logs --------------------------------------------------------------------------
    def remove_templates_and_roles(self):
        lt = self.state.launch_template
        if lt is not None:
            self.plan.change("launch_template", lt["LaunchTemplateName"], "delete", lambda: self.aws.call(
                "ec2", "delete_launch_template", "launch template %s" % lt["LaunchTemplateName"],
                ignore=("InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateName.NotFoundException"),
                LaunchTemplateId=lt["LaunchTemplateId"]))
        prof, role = self.state.instance_profile, self.state.role
        name = self.names.instance_role

        def iam(op, **kw):
            return self.aws.call("iam", op, "IAM role %s" % name, ignore=("NoSuchEntity",), **kw)
        if prof is not None:
            def delete_profile():
                for r in prof.get("Roles", []):
                    iam("remove_role_from_instance_profile", InstanceProfileName=name, RoleName=r["RoleName"])
                iam("delete_instance_profile", InstanceProfileName=name)
            self.plan.change("instance_profile", name, "delete", delete_profile)
        if role is not None:
            def delete_role():
                policies = iam("list_role_policies", RoleName=name) or {}
                for pol in policies.get("PolicyNames", []):
                    iam("delete_role_policy", RoleName=name, PolicyName=pol)
                attached = iam("list_attached_role_policies", RoleName=name) or {}
                for pol in attached.get("AttachedPolicies", []):
                    iam("detach_role_policy", RoleName=name, PolicyArn=pol["PolicyArn"])
                iam("delete_role", RoleName=name)
            self.plan.change("iam_role", name, "delete", delete_role)
        group = self.state.log_group
        if group is not None:
            self.plan.change("log_group", group["logGroupName"], "delete", lambda: self.aws.call(
                "logs", "delete_log_group", "log group %s" % group["logGroupName"],
                ignore=("ResourceNotFoundException",), logGroupName=group["logGroupName"]))

    def _empty(self, name):
        empty_bucket_over_any_endpoint(self.aws, name)

    # -- 7: the bucket ----------------------------------------------------------------------------------
    def remove_bucket(self):
        bucket = self.state.bucket
        if bucket is None:
            return
        name = bucket["name"]
        listing = self.aws.call("s3", "list_object_versions", "bucket %s" % name, ignore=("NoSuchBucket",),
                                Bucket=name, MaxKeys=1)
        if listing is None:
            return
        holds_data = bool(listing.get("Versions") or listing.get("DeleteMarkers"))
        if holds_data and not self.purge_data:
            self.kept_buckets.append(name)
            if bucket["tags"].get(STATE_TAG_PREFIX + "status") != "uninstalled" or LEASE_TAG in bucket["tags"]:
                tags = dict(bucket["tags"])
                tags[STATE_TAG_PREFIX + "status"] = "uninstalled"
                tags.pop(LEASE_TAG, None)
                self.plan.change("bucket", name, "update", lambda: self.aws.call(
                    "s3", "put_bucket_tagging", "bucket %s" % name, Bucket=name,
                    Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}),
                    detail={"kept": "holds objects; purge_data: true deletes them"})
            return

        def delete():
            if holds_data:
                self._empty(name)
            self.aws.call("s3", "delete_bucket", "bucket %s" % name, ignore=("NoSuchBucket",), Bucket=name)
        self.plan.change("bucket", name, "delete", delete, detail={"purge_data": True} if holds_data else None)


def empty_bucket(aws, name):
    """Delete every object version and delete marker, 1,000 at a time, until none is left.

    Each round lists the bucket afresh from its start (deleted entries drop out of the
    listing), so a retried or failed listing can never end the emptying early."""
    deleted = 0
    while True:
        page = aws.call("s3", "list_object_versions", "bucket %s" % name, Bucket=name, MaxKeys=1000)
        objects = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                   for v in (page or {}).get("Versions", []) + (page or {}).get("DeleteMarkers", [])]
        if not objects:
            return deleted
        res = aws.call("s3", "delete_objects", "bucket %s" % name, Bucket=name,
                       Delete={"Objects": objects[:1000], "Quiet": True})
        errors = (res or {}).get("Errors") or []
        if errors:
            e = errors[0]
            raise RackError("bucket %s: could not delete %s (version %s): %s %s" % (
                name, e.get("Key"), e.get("VersionId"), e.get("Code"), e.get("Message")),
                resource="bucket %s" % name, error_code=e.get("Code"))
        deleted += len(objects[:1000])


def empty_bucket_over_any_endpoint(aws, name):
    """Empty a bucket. Its TLS-only policy refuses every request made without TLS, so on such an
    endpoint (the local AWS) it is lifted while emptying and put back if that fails; over HTTPS
    (AWS) it stays in place throughout."""
    lifted = None
    if aws.endpoint_scheme("s3") == "http":
        lifted = aws.call("s3", "get_bucket_policy", "bucket %s" % name, ignore=("NoSuchBucketPolicy",), Bucket=name)
        if lifted:
            aws.call("s3", "delete_bucket_policy", "bucket %s" % name, Bucket=name)
    try:
        return empty_bucket(aws, name)
    except RackError:
        if lifted:
            aws.call("s3", "put_bucket_policy", "bucket %s" % name, Bucket=name, Policy=lifted["Policy"])
        raise
