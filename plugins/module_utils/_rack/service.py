# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rack service: what the rack and rack_info modules hand over to.

present(): validate -> read what exists -> merge parameters -> plan and apply in
dependency order -> record parameters -> wait until usable -> replace outdated instances.
absent(): read what exists -> refuse while apps exist -> tear down in dependency order.
"""

from __future__ import annotations

from .aws import Deadline
from .build import RackBuilder
from .errors import RackError, ValidationError
from .lock import locked_first, with_run_lock
from .naming import RackNames
from .observe import Identity, read_rack, tag_dict, user_tags
from .params import (COLLECTION_VERSION, STATE_TAG_PREFIX, check_immutable, check_permissions_boundary,
                     effective_parameters, lease_active, merge_user_tags, user_tag_limit, validate_name,
                     validate_request)
from .plan import CHECK_MODE_ID, Plan
from .teardown import RackTeardown

RUN_STATUSES = ("installing", "updating", "uninstalling")


def required_parts(state):
    """The parts a rack must have, by name, and whether each exists."""
    params = state.recorded_parameters
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
    }
    if params.get("private"):
        parts["private_subnets"] = len(state.subnets_of("private")) >= 2
        parts["nat_gateways"] = bool(state.nat_gateways)
    return parts


def instance_counts(state):
    asg = state.asg or {}
    in_service = [i for i in asg.get("Instances", [])
                  if i.get("LifecycleState") == "InService" and i.get("HealthStatus", "Healthy") == "Healthy"]
    return {
        "desired": asg.get("DesiredCapacity", 0),
        "in_service": len(in_service),
        "registered": (state.cluster or {}).get("registeredContainerInstancesCount", 0),
    }


def derive_status(state):
    """Convox's status words, from what exists. Returns (status, missing parts)."""
    recorded = state.recorded_status
    if recorded in RUN_STATUSES and lease_active((state.bucket or {}).get("tags")):
        return recorded, []
    missing = sorted(k for k, ok in required_parts(state).items() if not ok)
    if missing:
        return "failed", missing
    counts = instance_counts(state)
    lb_state = ((state.load_balancer or {}).get("State") or {}).get("Code", "active")
    if lb_state == "failed":
        return "failed", ["load_balancer (state failed)"]
    if counts["in_service"] < counts["desired"] or lb_state != "active":
        return "converging", []
    return "running", []


def rack_dict(state, region, status=None, parameters=None, extra=None):
    """The `rack` return value shared by rack and rack_info."""
    lb = state.load_balancer or {}
    if status is None:
        status, missing = derive_status(state)
    else:
        missing = []
    out = {
        "name": state.names.rack,
        "region": region,
        "status": status,
        "parameters": parameters if parameters is not None else state.recorded_parameters,
        "version": (state.bucket or {}).get("tags", {}).get(STATE_TAG_PREFIX + "version"),
        "vpc_id": (state.vpc or {}).get("VpcId"),
        "public_subnet_ids": [s["SubnetId"] for s in state.subnets_of("public")],
        "private_subnet_ids": [s["SubnetId"] for s in state.subnets_of("private")],
        "cluster_name": (state.cluster or {}).get("clusterName"),
        "autoscaling_group_name": (state.asg or {}).get("AutoScalingGroupName"),
        "load_balancer": {"arn": lb.get("LoadBalancerArn"), "dns_name": lb.get("DNSName")},
        "bucket": (state.bucket or {}).get("name"),
        "log_group": (state.log_group or {}).get("logGroupName"),
        "tags": user_tags((state.bucket or {}).get("tags")),
        "instances": instance_counts(state),
        "apps": list(getattr(state, "apps", [])),
        "missing": missing,
    }
    if extra:
        out.update(extra)
    return out


class RackService:
    def __init__(self, aws, region, params, check_mode):
        self.aws = aws
        self.region = region
        self.params = params
        self.check_mode = check_mode
        self.deadline = Deadline(params.get("wait_timeout") or 900)
        aws.deadline = self.deadline
        self.warnings = []
        self.with_run_lock = with_run_lock

    def _read(self):
        self.identity = Identity(self.aws)
        return read_rack(self.aws, self.params["name"], self.region, self.identity)

    # -- present ---------------------------------------------------------------------------------------------
    def present(self):
        validate_request(self.params)
        operation = "install or update of rack %s" % self.params["name"]
        return self.with_run_lock(self.aws, self.params["name"], self.deadline, operation, self.check_mode,
                                  self._present, self.warnings)

    def _present(self, first_write):
        p = self.params
        state = self._read()
        if p.get("create") is False and not state.exists:
            # create: false converges only a rack that exists (update_rack.yml): before any write, and in check
            # mode too. A bucket kept by an uninstall (convox:status=uninstalled) is no rack.
            raise RackError(
                "could not find rack %s: install it with playbooks/install_rack.yml (or convox.rack.rack with"
                " create: true); looked in region %s of account %s, nothing was changed"
                % (p["name"], self.region, self.identity.account))
        recorded = state.recorded_parameters
        if state.recorded_status == "uninstalled":
            recorded = {}
        wanted = effective_parameters(p, recorded)
        check_immutable(recorded, wanted)
        check_permissions_boundary(wanted["permissions_boundary"], self.identity.partition, self.identity.account)
        recorded_tags = user_tags((state.bucket or {}).get("tags"))
        tags = merge_user_tags(recorded_tags, p.get("tags"), p.get("purge_tags", True))
        limit = user_tag_limit(wanted["permissions_boundary"])
        if len(tags) > limit:
            raise ValidationError(
                "tags", "the rack would have %d tags of yours; at most %d fit next to the collection's own with a"
                " permissions_boundary (AWS allows 50 a resource)" % (len(tags), limit))

        plan = Plan(self.check_mode)
        builder = RackBuilder(self.aws, self.region, self.identity, state, wanted, tags, plan, self.deadline,
                              p.get("wait", True))
        plan.before_first_write = locked_first(first_write, builder.mark_run_status)
        out = builder.converge()
        rolled = self._plan_replacement(builder, state, plan, wanted, out)
        builder.finish()

        status = self._status_after(state, plan, out)
        if p.get("wait", True) and not self.check_mode:
            status = self._wait_usable(out)
            if rolled:
                self._replace_outdated(out, wanted)
        result = {
            "changed": plan.changed,
            "rack": self._result_rack(state, wanted, tags, out, status),
            "plan": plan.changes,
            "aws_calls": len(self.aws.calls),
        }
        result["diff"] = plan.diff(recorded, wanted, recorded_tags, tags)
        return result

    def _status_after(self, state, plan, out):
        if self.check_mode:
            return derive_status(state)[0] if not plan.changed else ("updating" if state.bucket else "installing")
        if not plan.changed:
            return derive_status(state)[0]
        return "converging"

    def _result_rack(self, state, wanted, tags, out, status):
        rack = rack_dict(state, self.region, status=status, parameters=wanted)
        rack["tags"] = tags
        rack["version"] = COLLECTION_VERSION
        for key in ("vpc_id", "public_subnet_ids", "private_subnet_ids", "cluster_name", "autoscaling_group_name",
                    "bucket", "log_group", "load_balancer"):
            if key in out:
                rack[key] = out[key]
        for key, value in list(rack.items()):
            if value == CHECK_MODE_ID:
                rack[key] = None
        if isinstance(rack["load_balancer"], dict) and rack["load_balancer"].get("arn") == CHECK_MODE_ID:
            rack["load_balancer"] = {"arn": None, "dns_name": None}
        rack["public_subnet_ids"] = [s for s in rack["public_subnet_ids"] if s != CHECK_MODE_ID]
        rack["private_subnet_ids"] = [s for s in rack["private_subnet_ids"] if s != CHECK_MODE_ID]
        if getattr(self, "_counts", None):
            rack["instances"] = self._counts
        return rack

    def _asg(self, name):
        groups = self.aws.call("autoscaling", "describe_auto_scaling_groups", "auto scaling group %s" % name,
                               AutoScalingGroupNames=[name])["AutoScalingGroups"]
        return groups[0] if groups else None

    def _wait_usable(self, out):
        """Return when the instances are in service and the load balancer active (or time out)."""
        name = out["autoscaling_group_name"]
        lb_arn = out["load_balancer"]["arn"]

        def usable():
            asg = self._asg(name)
            ready = [i for i in asg.get("Instances", []) if i["LifecycleState"] == "InService"]
            self._counts = {"desired": asg["DesiredCapacity"], "in_service": len(ready), "registered": None}
            if len(ready) < asg["DesiredCapacity"]:
                return False
            lbs = self.aws.call("elbv2", "describe_load_balancers", "load balancer %s" % lb_arn,
                                LoadBalancerArns=[lb_arn])["LoadBalancers"]
            code = lbs[0]["State"]["Code"]
            if code == "failed":
                raise RackError("load balancer %s failed: %s" % (lb_arn, lbs[0]["State"].get("Reason")),
                                resource="load balancer %s" % lb_arn)
            return code == "active"
        self.deadline.wait_for("rack %s: instances in service and load balancer active" % self.params["name"],
                               usable)
        return "running"

    # -- rolling replacement ---------------------------------------------------------------------------
    def _outdated(self, asg, wanted, image_id, subnets=None):
        """Instances of another type or image than wanted, or outside the group's subnets
        (after private: true they must move to the private subnets)."""
        instances = [i for i in asg.get("Instances", []) if i["LifecycleState"] in ("InService", "Pending")]
        if not instances:
            return []
        if subnets is None:
            subnets = set(filter(None, asg.get("VPCZoneIdentifier", "").split(",")))
        outdated = {i["InstanceId"] for i in instances if i.get("InstanceType") != wanted["instance_type"]}
        described = self.aws.paginate("ec2", "describe_instances", "instances of %s" % asg["AutoScalingGroupName"],
                                      InstanceIds=[i["InstanceId"] for i in instances])
        for r in described.get("Reservations", []):
            for inst in r["Instances"]:
                if image_id and inst.get("ImageId") != image_id:
                    outdated.add(inst["InstanceId"])
                if subnets and inst.get("SubnetId") and inst["SubnetId"] not in subnets:
                    outdated.add(inst["InstanceId"])
        return sorted(outdated)

    def _plan_replacement(self, builder, state, plan, wanted, out):
        """Record (and later perform) the replacement of instances of an older type or image."""
        lt_changes = [c for c in plan.changes if c["resource"] == "launch_template" and c["action"] == "update"]
        will_change = any(set(c.get("changes", {})) & {"InstanceType", "ImageId"} for c in lt_changes)
        moved = [c for c in plan.changes if c["resource"] == "autoscaling_group" and c["action"] == "update"
                 and "VPCZoneIdentifier" in c.get("changes", {})]
        will_change = will_change or bool(moved)
        subnets = set(out.get("private_subnet_ids") or out.get("public_subnet_ids") or []) - {CHECK_MODE_ID}
        if state.asg is None:
            return False
        if self.check_mode:
            if will_change:
                plan.changes.append({"resource": "instances", "name": state.asg["AutoScalingGroupName"],
                                     "action": "replace", "changes": {"reason": "new instance type or image"}})
            return will_change
        outdated = self._outdated(state.asg, wanted, out.get("image_id"), subnets or None)
        if will_change or outdated:
            if self.params.get("wait", True):
                plan.writing()
            plan.changes.append({"resource": "instances", "name": state.asg["AutoScalingGroupName"],
                                 "action": "replace", "changes": {"instances": outdated or "all"}})
            if not self.params.get("wait", True):
                self.warnings.append("instances of an older type or image are replaced only with wait: true; "
                                     "rerun with wait: true to replace them")
            return True
        return False

    def _replace_outdated(self, out, wanted):
        """One instance at a time: drain, terminate (the group launches a replacement), wait."""
        name = out["autoscaling_group_name"]
        while True:
            asg = self._asg(name)
            outdated = self._outdated(asg, wanted, out.get("image_id"))
            if not outdated:
                return
            victim = outdated[0]
            self.aws.call("autoscaling", "terminate_instance_in_auto_scaling_group", "instance %s" % victim,
                          InstanceId=victim, ShouldDecrementDesiredCapacity=False)

            def replaced():
                group = self._asg(name)
                ready = [i for i in group.get("Instances", []) if i["LifecycleState"] == "InService"
                         and i["InstanceId"] != victim]
                return len(ready) >= group["DesiredCapacity"]
            self.deadline.wait_for("instance %s of %s to be replaced" % (victim, name), replaced)

    # -- absent -----------------------------------------------------------------------------------------------
    def absent(self):
        validate_name(self.params["name"])
        if (self.params.get("wait_timeout") or 900) < 1:
            raise ValidationError("wait_timeout", "must be at least 1 second")
        operation = "uninstall of rack %s" % self.params["name"]
        return self.with_run_lock(self.aws, self.params["name"], self.deadline, operation, self.check_mode,
                                  self._absent, self.warnings, removed=lambda r: r["rack"]["status"] == "uninstalled")

    def _absent(self, first_write):
        state = self._read()
        before = {"parameters": state.recorded_parameters, "exists": state.exists}
        plan = Plan(self.check_mode)
        teardown = RackTeardown(self.aws, state, plan, self.deadline, self.params.get("force", False),
                                self.params.get("purge_data", False))
        plan.before_first_write = locked_first(first_write, teardown.mark_uninstalling)
        kept = teardown.run()
        rack = rack_dict(state, self.region, status="uninstalling" if plan.changed else "uninstalled",
                         extra={"kept_buckets": kept, "kept_repositories": teardown.kept_repositories})
        if not plan.changed and not state.exists:
            rack["status"] = "uninstalled"
        if plan.changed and not self.check_mode:
            rack["status"] = "uninstalled"
        return {
            "changed": plan.changed,
            "rack": rack,
            "kept_buckets": kept,
            "kept_repositories": teardown.kept_repositories,
            "plan": plan.changes,
            "aws_calls": len(self.aws.calls),
            "diff": {"before": before, "after": {"exists": False, "kept_buckets": kept,
                                                 "delete": plan.by_action("delete")}},
        }


def list_rack_names(aws, region, identity):
    """Every rack in a region, found by its bucket's tags (System=convox, Type=rack).

    A bucket counts only under the name derived for this account and region, so a listing that
    reaches other regions' buckets does not show their racks twice."""
    found = aws.paginate("resourcegroupstaggingapi", "get_resources", "racks in %s" % region,
                         TagFilters=[{"Key": "System", "Values": ["convox"]}, {"Key": "Type", "Values": ["rack"]}],
                         ResourceTypeFilters=["s3"])
    names = []
    for res in found.get("ResourceTagMappingList", []):
        tags = tag_dict(res.get("Tags"))
        if tags.get(STATE_TAG_PREFIX + "status") == "uninstalled":
            continue
        rack = tags.get("Rack")
        if not rack or rack in names:
            continue
        if res["ResourceARN"].split(":")[-1] != RackNames(rack, region, identity.account).bucket:
            continue
        names.append(rack)
    return sorted(names)


def read_racks(aws, region, name=None):
    """The rack dicts of one rack (by name) or of every rack in the region."""
    identity = Identity(aws)
    names = [name] if name else list_rack_names(aws, region, identity)
    racks = []
    for rack in names:
        state = read_rack(aws, rack, region, identity)
        if not state.exists:
            continue
        racks.append(rack_dict(state, region))
    return racks
