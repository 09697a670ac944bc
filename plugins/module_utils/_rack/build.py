# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""state: present. Converge a rack, resource by resource, in dependency order.

Each ensure_* step compares what exists (RackState) with what is wanted and records the
difference in the Plan, which applies it unless in check mode. Steps return the ids their
dependants need; in check mode a resource still to be created yields CHECK_MODE_ID.
"""

from __future__ import annotations

import json
import uuid

from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

from . import desired as D
from .app import access_logs_statement
from .errors import AWSCallError, RackError
from .naming import subnet_cidrs, system_tags
from .observe import tag_dict
from .params import COLLECTION_VERSION, LEASE_TAG, STATE_TAG_PREFIX, lease_until, parameters_to_tags
from .plan import CHECK_MODE_ID
from .teardown import RackTeardown

LISTENER_PORT = 80
# Set right after the load balancer is created (AWS takes no attributes at creation).
LB_ATTRIBUTES = {"routing.http.drop_invalid_header_fields.enabled": "true"}
# Set right after the VPC is created (AWS takes no attributes at creation).
VPC_ATTRIBUTES = ("EnableDnsSupport", "EnableDnsHostnames")
NOT_FOUND_404 = {
    "Type": "fixed-response",
    "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no such app"},
}


def _tl(tags, key="Key", value="Value"):
    return [{key: k, value: v} for k, v in sorted(tags.items())]


class RackBuilder:
    def __init__(self, aws, region, identity, state, wanted, user_tags, plan, deadline, wait):
        self.aws = aws
        self.region = region
        self.identity = identity
        self.state = state
        self.names = state.names
        self.rack = self.names.rack
        self.wanted = wanted
        self.user_tags = user_tags
        self.tags = dict(system_tags(self.rack), **user_tags)
        self.plan = plan
        self.deadline = deadline
        self.wait = wait
        self.out = {}
        # Client tokens of this run's creates: the same for botocore's retries of one request,
        # new for each run (a token AWS still remembers must not return a resource deleted since).
        self._run_token = uuid.uuid4()

    # -- helpers -------------------------------------------------------------------------------
    def _res_tags(self, name=None, **extra):
        tags = dict(self.tags)
        if name:
            tags["Name"] = name
        tags.update(extra)
        return tags

    def _last_run_unfinished(self):
        """Whether the rack's last changing run ended before it recorded `running` (killed, or
        failed): it may have created the VPC or the load balancer and stopped before the
        attribute calls that follow each creation (AWS takes those attributes only afterwards).
        Only then are they set again: setting them is idempotent, needs no permission beyond
        the install's own, and a healthy rack's no-op rerun makes no extra call."""
        return self.state.recorded_status != "running"

    def _client_token(self, name):
        return str(uuid.uuid5(self._run_token, name))

    def _ec2_tag_spec(self, resource_type, tags):
        return [{"ResourceType": resource_type, "Tags": _tl(tags)}]

    def _sync_tags(self, kind, name, current, wanted, set_fn, unset_fn):
        """Converge one resource's tags; leaves aws:* tags alone."""
        to_set, to_unset = compare_aws_tags(current or {}, wanted, purge_tags=True)
        if not to_set and not to_unset:
            return

        def apply():
            if to_unset:
                unset_fn(to_unset)
            if to_set:
                set_fn(to_set)
        self.plan.change(kind, name, "update", apply, detail={"tags": {"set": to_set, "unset": to_unset}})

    def _ec2_tags(self, kind, resource_id, current, wanted):
        self._sync_tags(
            kind, resource_id, current, wanted,
            lambda s: self.aws.call("ec2", "create_tags", "%s %s" % (kind, resource_id),
                                    Resources=[resource_id], Tags=_tl(s)),
            lambda u: self.aws.call("ec2", "delete_tags", "%s %s" % (kind, resource_id),
                                    Resources=[resource_id], Tags=[{"Key": k} for k in u]),
        )

    # -- steps ---------------------------------------------------------------------------------
    def converge(self):
        self.ensure_bucket()
        self.ensure_log_group()
        profile_arn = self.ensure_iam()
        vpc_id = self.ensure_vpc()
        igw_id = self.ensure_internet_gateway(vpc_id)
        public, private = self.ensure_subnets(vpc_id)
        self.ensure_public_routes(vpc_id, igw_id, public)
        if self.wanted["private"]:
            nats = self.ensure_nat_gateways(public)
            self.ensure_private_routes(vpc_id, nats, private)
        router_sg, instances_sg = self.ensure_security_groups(vpc_id)
        lt_id, lt_version = self.ensure_launch_template(profile_arn, instances_sg)
        self.ensure_cluster()
        instance_subnets = private if self.wanted["private"] else public
        asg_arn = self.ensure_autoscaling_group(lt_id, lt_version, instance_subnets)
        self.ensure_capacity_provider(asg_arn)
        if self.wanted["internal_only"]:
            lb_subnets = private if self.wanted["private"] else public
        else:
            lb_subnets = public
        self.ensure_load_balancer(lb_subnets, router_sg)
        self.remove_extras()
        self.out.update(vpc_id=vpc_id, public_subnet_ids=public,
                        private_subnet_ids=private if self.wanted["private"] else [])
        return self.out

    def remove_extras(self):
        """Delete the duplicates observe set aside (see observe.resolve_duplicates), last: by now
        the kept VPC, gateway, addresses and route tables carry everything, so the extras are
        unused. (A duplicate comes from a create AWS acted on whose answer was lost.)"""
        RackTeardown(self.aws, self.state, self.plan, self.deadline, force=False, purge_data=False).remove_extras()

    def ensure_bucket(self):
        name = self.names.bucket
        part = self.identity.partition
        bucket = self.state.bucket
        self.out["bucket"] = name
        if bucket is None:
            def create():
                kwargs = {"Bucket": name, "ObjectOwnership": "BucketOwnerEnforced"}
                if self.region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                self.aws.call("s3", "create_bucket", "bucket %s" % name, **kwargs)
                self.aws.call("s3", "put_bucket_tagging", "bucket %s" % name,
                              Bucket=name, Tagging={"TagSet": _tl(self.bucket_tags(self.first_status()))})
            self.plan.change("bucket", name, "create", create)
            current = {}
        else:
            current = self._read_bucket_config(name)

        def s3(op, **kw):
            return self.aws.call("s3", op, "bucket %s" % name, Bucket=name, **kw)
        if current.get("public_access_block") != D.PUBLIC_ACCESS_BLOCK:
            self.plan.change("bucket", name, "update" if bucket else "create", lambda: s3(
                "put_public_access_block", PublicAccessBlockConfiguration=D.PUBLIC_ACCESS_BLOCK),
                detail={"public_access_block": D.PUBLIC_ACCESS_BLOCK} if bucket else None)
        if bucket is not None and current.get("ownership") != "BucketOwnerEnforced":
            self.plan.change("bucket", name, "update", lambda: s3(
                "put_bucket_ownership_controls",
                OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}),
                detail={"ownership": "BucketOwnerEnforced"})
        if current.get("encryption") not in ("AES256", "aws:kms"):
            self.plan.change("bucket", name, "update" if bucket else "create", lambda: s3(
                "put_bucket_encryption", ServerSideEncryptionConfiguration={"Rules": [
                    {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]}),
                detail={"encryption": "AES256"} if bucket else None)
        if current.get("versioning") != "Enabled":
            self.plan.change("bucket", name, "update" if bucket else "create", lambda: s3(
                "put_bucket_versioning", VersioningConfiguration={"Status": "Enabled"}),
                detail={"versioning": "Enabled"} if bucket else None)
        rules = D.lifecycle_rules(self.wanted["log_retention"])
        if D.lifecycle_key(current.get("lifecycle")) != D.lifecycle_key(rules):
            self.plan.change("bucket", name, "update" if bucket else "create", lambda: s3(
                "put_bucket_lifecycle_configuration", LifecycleConfiguration={"Rules": rules}),
                detail={"lifecycle": "logs expire after %d days" % self.wanted["log_retention"]} if bucket else None)
        # TLS only, and S3 may deliver the apps' access logs under logs/apps/ (the app module adds
        # the same statement to a rack converged before this one did).
        policy = D.tls_only_bucket_policy(part, name)
        policy["Statement"].append(access_logs_statement(part, name, self.rack, self.identity.account))
        if not D.policy_equal(current.get("policy"), policy):
            self.plan.change("bucket", name, "update" if bucket else "create", lambda: s3(
                "put_bucket_policy", Policy=json.dumps(policy)),
                detail={"policy": "TLS only; S3 access logs of apps under logs/apps/"} if bucket else None)

    def _read_bucket_config(self, name):
        def s3(op, ignore=()):
            return self.aws.call("s3", op, "bucket %s" % name, ignore=ignore, Bucket=name)
        cfg = {}
        pab = s3("get_public_access_block", ignore=("NoSuchPublicAccessBlockConfiguration",))
        cfg["public_access_block"] = (pab or {}).get("PublicAccessBlockConfiguration")
        own = s3("get_bucket_ownership_controls", ignore=("OwnershipControlsNotFoundError",))
        rules = ((own or {}).get("OwnershipControls") or {}).get("Rules") or [{}]
        cfg["ownership"] = rules[0].get("ObjectOwnership")
        enc = s3("get_bucket_encryption", ignore=("ServerSideEncryptionConfigurationNotFoundError",))
        enc_rules = ((enc or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules") or [{}]
        cfg["encryption"] = (enc_rules[0].get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm")
        cfg["versioning"] = (s3("get_bucket_versioning") or {}).get("Status")
        lc = s3("get_bucket_lifecycle_configuration", ignore=("NoSuchLifecycleConfiguration",))
        cfg["lifecycle"] = (lc or {}).get("Rules")
        pol = s3("get_bucket_policy", ignore=("NoSuchBucketPolicy",))
        cfg["policy"] = (pol or {}).get("Policy")
        return cfg

    def first_status(self):
        return "updating" if self.state.recorded_parameters else "installing"

    def bucket_tags(self, status):
        tags = dict(self.tags)
        tags.update(parameters_to_tags(self.wanted))
        tags[STATE_TAG_PREFIX + "version"] = COLLECTION_VERSION
        tags[STATE_TAG_PREFIX + "status"] = status
        if status != "running":
            tags[LEASE_TAG] = lease_until(self.deadline.seconds)
        return tags

    def mark_run_status(self):
        """Before the first write: record on the bucket that a run holds the rack."""
        if self.state.bucket is None:
            return
        tags = dict(self.state.bucket["tags"])
        tags[STATE_TAG_PREFIX + "status"] = self.first_status()
        tags[LEASE_TAG] = lease_until(self.deadline.seconds)
        self.aws.call("s3", "put_bucket_tagging", "bucket %s" % self.names.bucket,
                      Bucket=self.names.bucket, Tagging={"TagSet": _tl(tags)})
        self.state.bucket["tags"] = tags

    def finish(self):
        """Record parameters, tags and status `running` on the bucket if they differ."""
        wanted = self.bucket_tags("running")
        current = (self.state.bucket or {}).get("tags") if self.state.bucket else None
        if current == wanted and not self.plan.changed:
            return
        if current is not None and current == wanted:
            return
        detail = None
        if current is not None:
            to_set, to_unset = compare_aws_tags(current, wanted, purge_tags=True)
            detail = {"tags": {"set": to_set, "unset": to_unset}}
        action = "update" if current is not None else "create"
        self.plan.change("bucket", self.names.bucket, action, lambda: self.aws.call(
            "s3", "put_bucket_tagging", "bucket %s" % self.names.bucket,
            Bucket=self.names.bucket, Tagging={"TagSet": _tl(wanted)}), detail=detail)

    def ensure_log_group(self):
        name = self.names.log_group
        group = self.state.log_group
        days = self.wanted["log_retention"]
        self.out["log_group"] = name
        if group is None:
            def create():
                self.aws.call("logs", "create_log_group", "log group %s" % name, logGroupName=name, tags=self.tags)
                self.aws.call("logs", "put_retention_policy", "log group %s" % name,
                              logGroupName=name, retentionInDays=days)
            self.plan.change("log_group", name, "create", create)
            return
        if group.get("retentionInDays") != days:
            self.plan.change("log_group", name, "update", lambda: self.aws.call(
                "logs", "put_retention_policy", "log group %s" % name, logGroupName=name, retentionInDays=days),
                detail={"retention_days": {"before": group.get("retentionInDays"), "after": days}})
        arn = group["tag_arn"]
        self._sync_tags("log_group", name, self.state.log_group_tags, self.tags,
                        lambda s: self.aws.call("logs", "tag_resource", "log group %s" % name,
                                                resourceArn=arn, tags=s),
                        lambda u: self.aws.call("logs", "untag_resource", "log group %s" % name,
                                                resourceArn=arn, tagKeys=u))

    def ensure_iam(self):
        role_name = self.names.instance_role
        ident = self.identity
        policy = D.instance_role_policy(ident.partition, self.region, ident.account, self.names.cluster,
                                        self.names.log_group)

        def iam(op, what, **kw):
            return self.aws.call("iam", op, "%s %s" % (what, role_name), **kw)
        role = self.state.role
        # The permissions boundary: set on creation, and put on an existing role whose boundary differs,
        # before its inline policy (an operator policy may allow PutRolePolicy only on roles that carry the
        # boundary). Unset (""), an existing role's boundary is left as it is, as amazon.aws.iam_role does.
        boundary = self.wanted.get("permissions_boundary") or None
        if role is None:
            create = dict(RoleName=role_name, Path="/convox/", AssumeRolePolicyDocument=json.dumps(D.ec2_trust_policy()),
                          Description="ECS container instances of convox rack %s" % self.rack, Tags=_tl(self.tags))
            if boundary:
                create["PermissionsBoundary"] = boundary
            self.plan.change("iam_role", role_name, "create", lambda: iam("create_role", "IAM role", **create),
                             detail={"permissions_boundary": boundary} if boundary else None)
        else:
            current = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
            if boundary and current != boundary:
                self.plan.change("iam_role", role_name, "update", lambda: iam(
                    "put_role_permissions_boundary", "IAM role", RoleName=role_name, PermissionsBoundary=boundary),
                    detail={"permissions_boundary": {"before": current, "after": boundary}})
            if not D.policy_equal(role.get("AssumeRolePolicyDocument"), D.ec2_trust_policy()):
                self.plan.change("iam_role", role_name, "update", lambda: iam(
                    "update_assume_role_policy", "IAM role", RoleName=role_name,
                    PolicyDocument=json.dumps(D.ec2_trust_policy())), detail={"trust_policy": "ec2.amazonaws.com"})
            self._sync_tags("iam_role", role_name, tag_dict(role.get("Tags")), self.tags,
                            lambda s: iam("tag_role", "IAM role", RoleName=role_name, Tags=_tl(s)),
                            lambda u: iam("untag_role", "IAM role", RoleName=role_name, TagKeys=u))
        if not D.policy_equal(self.state.role_policy, policy):
            self.plan.change("iam_role", role_name, "update" if role else "create", lambda: iam(
                "put_role_policy", "IAM role", RoleName=role_name, PolicyName="ecs-container-instance",
                PolicyDocument=json.dumps(policy)), detail={"policy": "ecs-container-instance"} if role else None)
        prof = self.state.instance_profile
        if prof is None:
            def create_profile():
                created = iam("create_instance_profile", "instance profile", InstanceProfileName=role_name,
                              Path="/convox/", Tags=_tl(self.tags))
                iam("add_role_to_instance_profile", "instance profile", InstanceProfileName=role_name,
                    RoleName=role_name)
                return created["InstanceProfile"]["Arn"]
            arn = self.plan.change("instance_profile", role_name, "create", create_profile)
            return arn or CHECK_MODE_ID
        if role_name not in [r["RoleName"] for r in prof.get("Roles", [])]:
            self.plan.change("instance_profile", role_name, "update", lambda: iam(
                "add_role_to_instance_profile", "instance profile", InstanceProfileName=role_name,
                RoleName=role_name), detail={"role": role_name})
        self._sync_tags("instance_profile", role_name, tag_dict(prof.get("Tags")), self.tags,
                        lambda s: iam("tag_instance_profile", "instance profile", InstanceProfileName=role_name,
                                      Tags=_tl(s)),
                        lambda u: iam("untag_instance_profile", "instance profile", InstanceProfileName=role_name,
                                      TagKeys=u))
        return prof["Arn"]

    def ensure_vpc(self):
        vpc = self.state.vpc
        cidr = self.wanted["vpc_cidr"]
        name = "%s" % self.names.base
        if vpc is None:
            def create():
                created = self.aws.call("ec2", "create_vpc", "VPC of rack %s" % self.rack, CidrBlock=cidr,
                                        TagSpecifications=self._ec2_tag_spec("vpc", self._res_tags(name)))["Vpc"]
                vpc_id = created["VpcId"]
                for attr in VPC_ATTRIBUTES:
                    self.aws.call("ec2", "modify_vpc_attribute", "VPC %s" % vpc_id, VpcId=vpc_id,
                                  **{attr: {"Value": True}})
                return vpc_id
            return self.plan.change("vpc", cidr, "create", create) or CHECK_MODE_ID
        vpc_id = vpc["VpcId"]
        if vpc["CidrBlock"] != cidr:
            raise RackError("VPC %s of rack %s has CIDR %s but the rack records %s; refusing to continue"
                            % (vpc_id, self.rack, vpc["CidrBlock"], cidr), resource="VPC %s" % vpc_id)
        self._ec2_tags("vpc", vpc_id, tag_dict(vpc.get("Tags")), self._res_tags(name))
        if self._last_run_unfinished():
            self._ensure_vpc_attributes(vpc_id)
        return vpc_id

    def _ensure_vpc_attributes(self, vpc_id):
        def apply():
            for attr in VPC_ATTRIBUTES:
                self.aws.call("ec2", "modify_vpc_attribute", "VPC %s" % vpc_id, VpcId=vpc_id, **{attr: {"Value": True}})
        self.plan.change("vpc", vpc_id, "update", apply,
                         detail={"attributes": dict.fromkeys(VPC_ATTRIBUTES, True), "reason": "last run unfinished"})

    def ensure_internet_gateway(self, vpc_id):
        igw = self.state.igw
        name = self.names.base
        if igw is None:
            def create():
                igw_id = self.aws.call("ec2", "create_internet_gateway", "internet gateway of rack %s" % self.rack,
                                       TagSpecifications=self._ec2_tag_spec("internet-gateway", self._res_tags(name))
                                       )["InternetGateway"]["InternetGatewayId"]
                self.aws.call("ec2", "attach_internet_gateway", "internet gateway %s" % igw_id,
                              InternetGatewayId=igw_id, VpcId=vpc_id)
                return igw_id
            return self.plan.change("internet_gateway", name, "create", create) or CHECK_MODE_ID
        igw_id = igw["InternetGatewayId"]
        attached = [a["VpcId"] for a in igw.get("Attachments", []) if a.get("State") in ("available", "attached")]
        if vpc_id not in attached:
            def attach():
                for other in attached:  # a VPC that is not the rack's (a duplicate, deleted later)
                    self.aws.call("ec2", "detach_internet_gateway", "internet gateway %s" % igw_id,
                                  ignore=("Gateway.NotAttached",), InternetGatewayId=igw_id, VpcId=other)
                self.aws.call("ec2", "attach_internet_gateway", "internet gateway %s" % igw_id,
                              InternetGatewayId=igw_id, VpcId=vpc_id)
            detail = {"attach": vpc_id}
            if attached:
                detail["detach"] = sorted(attached)
            self.plan.change("internet_gateway", igw_id, "update", attach, detail=detail)
        self._ec2_tags("internet_gateway", igw_id, tag_dict(igw.get("Tags")), self._res_tags(name))
        return igw_id

    def _zones(self, count):
        zones = self.aws.call("ec2", "describe_availability_zones", "availability zones of %s" % self.region,
                              Filters=[{"Name": "state", "Values": ["available"]},
                                       {"Name": "zone-type", "Values": ["availability-zone"]}])
        names = sorted(z["ZoneName"] for z in zones["AvailabilityZones"])
        if len(names) < 2:
            raise RackError("region %s has %d availability zone(s); a rack needs at least 2" % (self.region, len(names)))
        return names[:count]

    def ensure_subnets(self, vpc_id):
        count = 3 if self.wanted["high_availability"] else 2
        public_cidrs, private_cidrs = subnet_cidrs(self.wanted["vpc_cidr"], count)
        existing = {}
        for s in self.state.subnets:
            t = tag_dict(s.get("Tags"))
            existing[(t.get("convox:tier"), int(t.get("convox:index", "-1")))] = s
        present_public = [existing[("public", i)] for i in range(3) if ("public", i) in existing]
        zones = [s["AvailabilityZone"] for s in sorted(present_public, key=lambda s: s["CidrBlock"])]
        if len(present_public) < count:
            available = self._zones(3 if self.wanted["high_availability"] else 2)
            count = len(available) if self.wanted["high_availability"] else 2
            by_index = {}
            for (tier, i), s in existing.items():
                by_index[i] = s["AvailabilityZone"]
            spare = [z for z in available if z not in by_index.values()]
            zones = [by_index.get(i) or spare.pop(0) for i in range(count)]
        else:
            count = len(present_public)
            zones = [existing[("public", i)]["AvailabilityZone"] for i in range(count)]
        public = [self._ensure_subnet(vpc_id, "public", i, public_cidrs[i], zones[i], existing) for i in range(count)]
        private = []
        if self.wanted["private"]:
            private = [self._ensure_subnet(vpc_id, "private", i, private_cidrs[i], zones[i], existing)
                       for i in range(count)]
        self.zones = zones
        return public, private

    def _ensure_subnet(self, vpc_id, tier, index, cidr, zone, existing):
        name = "%s-%s-%d" % (self.names.base, tier, index)
        tags = self._res_tags(name, **{"convox:tier": tier, "convox:index": str(index)})
        map_public = tier == "public" and not self.wanted["private"]
        subnet = existing.get((tier, index))
        if subnet is None:
            def create():
                sid = self.aws.call("ec2", "create_subnet", "subnet %s" % name, VpcId=vpc_id, CidrBlock=cidr,
                                    AvailabilityZone=zone,
                                    TagSpecifications=self._ec2_tag_spec("subnet", tags))["Subnet"]["SubnetId"]
                if map_public:
                    self.aws.call("ec2", "modify_subnet_attribute", "subnet %s" % sid, SubnetId=sid,
                                  MapPublicIpOnLaunch={"Value": True})
                return sid
            return self.plan.change("subnet", name, "create", create) or CHECK_MODE_ID
        sid = subnet["SubnetId"]
        if bool(subnet.get("MapPublicIpOnLaunch")) != map_public:
            self.plan.change("subnet", sid, "update", lambda: self.aws.call(
                "ec2", "modify_subnet_attribute", "subnet %s" % sid, SubnetId=sid,
                MapPublicIpOnLaunch={"Value": map_public}), detail={"map_public_ip_on_launch": map_public})
        self._ec2_tags("subnet", sid, tag_dict(subnet.get("Tags")), tags)
        return sid

    def _route_table(self, tier, index=None):
        for rt in self.state.route_tables:
            t = tag_dict(rt.get("Tags"))
            if t.get("convox:tier") == tier and (index is None or t.get("convox:index") == str(index)):
                return rt
        return None

    def _ensure_route_table(self, vpc_id, tier, index, target, subnet_ids):
        suffix = tier if index is None else "%s-%d" % (tier, index)
        name = "%s-%s" % (self.names.base, suffix)
        extra = {"convox:tier": tier}
        if index is not None:
            extra["convox:index"] = str(index)
        tags = self._res_tags(name, **extra)
        route = {"DestinationCidrBlock": "0.0.0.0/0"}
        route.update(target)
        rt = self._route_table(tier, index)
        if rt is None:
            def create():
                rt_id = self.aws.call("ec2", "create_route_table", "route table %s" % name, VpcId=vpc_id,
                                      ClientToken=self._client_token(name),
                                      TagSpecifications=self._ec2_tag_spec("route-table", tags)
                                      )["RouteTable"]["RouteTableId"]
                self.aws.call("ec2", "create_route", "route table %s" % name, RouteTableId=rt_id, **route)
                for sid in subnet_ids:
                    self._associate(rt_id, sid)
                return rt_id
            self.plan.change("route_table", name, "create", create)
            return
        rt_id = rt["RouteTableId"]
        default = [r for r in rt.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        target_key, target_id = list(target.items())[0]
        if not default:
            self.plan.change("route_table", rt_id, "update", lambda: self.aws.call(
                "ec2", "create_route", "route table %s" % rt_id, RouteTableId=rt_id, **route),
                detail={"route": route})
        elif default[0].get(target_key) != target_id or default[0].get("State") == "blackhole":
            self.plan.change("route_table", rt_id, "update", lambda: self.aws.call(
                "ec2", "replace_route", "route table %s" % rt_id, RouteTableId=rt_id, **route),
                detail={"route": route})
        associated = {a.get("SubnetId") for a in rt.get("Associations", []) if a.get("SubnetId")}
        for sid in subnet_ids:
            if sid not in associated:
                self.plan.change("route_table", rt_id, "update", lambda sid=sid: self._associate(rt_id, sid),
                                 detail={"associate": sid})
        self._ec2_tags("route_table", rt_id, tag_dict(rt.get("Tags")), tags)

    def _associate(self, rt_id, subnet_id):
        """Associate the subnet with the table; a subnet associated with another of the rack's
        tables (a duplicate) is moved: AWS refuses a second association of one subnet."""
        for other in self.state.route_tables + self.state.extras.get("route_table", []):
            for assoc in other.get("Associations", []):
                if assoc.get("SubnetId") == subnet_id and other["RouteTableId"] != rt_id:
                    self.aws.call("ec2", "replace_route_table_association", "route table %s" % rt_id,
                                  AssociationId=assoc["RouteTableAssociationId"], RouteTableId=rt_id)
                    other["Associations"].remove(assoc)  # gone with the replacement
                    return
        self.aws.call("ec2", "associate_route_table", "route table %s" % rt_id, RouteTableId=rt_id,
                      SubnetId=subnet_id)

    def ensure_public_routes(self, vpc_id, igw_id, public):
        self._ensure_route_table(vpc_id, "public", None, {"GatewayId": igw_id}, public)

    def ensure_nat_gateways(self, public):
        nats = []
        for i, subnet_id in enumerate(public):
            nats.append(self._ensure_nat(i, subnet_id))
        waiting = [n for n in nats if n not in (None, CHECK_MODE_ID)]
        if waiting and not self.plan.check_mode and self._nat_pending:
            self.deadline.wait_for("NAT gateways %s to be available" % ", ".join(waiting),
                                   lambda: self._nats_available(waiting))
        return nats

    _nat_pending = False

    def _nats_available(self, ids):
        nats = self.aws.call("ec2", "describe_nat_gateways", "NAT gateways %s" % ", ".join(ids),
                             NatGatewayIds=ids)["NatGateways"]
        failed = [n for n in nats if n["State"] == "failed"]
        if failed:
            n = failed[0]
            raise RackError("NAT gateway %s failed: %s %s" % (n["NatGatewayId"], n.get("FailureCode"),
                                                              n.get("FailureMessage")),
                            resource="NAT gateway %s" % n["NatGatewayId"])
        return all(n["State"] == "available" for n in nats)

    def _ensure_nat(self, index, subnet_id):
        name = "%s-nat-%d" % (self.names.base, index)
        tags = self._res_tags(name, **{"convox:index": str(index)})
        eip = [a for a in self.state.addresses if tag_dict(a.get("Tags")).get("convox:index") == str(index)]
        nat = [n for n in self.state.nat_gateways if tag_dict(n.get("Tags")).get("convox:index") == str(index)]
        if eip:
            alloc = eip[0]["AllocationId"]
            self._ec2_tags("elastic_ip", alloc, tag_dict(eip[0].get("Tags")), tags)
        else:
            alloc = self.plan.change("elastic_ip", name, "create", lambda: self.aws.call(
                "ec2", "allocate_address", "elastic IP %s" % name, Domain="vpc",
                TagSpecifications=self._ec2_tag_spec("elastic-ip", tags))["AllocationId"]) or CHECK_MODE_ID
        if nat:
            if nat[0]["State"] == "pending":
                self._nat_pending = True
            self._ec2_tags("nat_gateway", nat[0]["NatGatewayId"], tag_dict(nat[0].get("Tags")), tags)
            return nat[0]["NatGatewayId"]

        def create():
            self._nat_pending = True
            return self.aws.call("ec2", "create_nat_gateway", "NAT gateway %s" % name, SubnetId=subnet_id,
                                 AllocationId=alloc, ClientToken=("%s-%s-%s" % (name, subnet_id, alloc))[:64],
                                 TagSpecifications=self._ec2_tag_spec("natgateway", tags)
                                 )["NatGateway"]["NatGatewayId"]
        return self.plan.change("nat_gateway", name, "create", create) or CHECK_MODE_ID

    def ensure_private_routes(self, vpc_id, nats, private):
        for i, subnet_id in enumerate(private):
            self._ensure_route_table(vpc_id, "private", i, {"NatGatewayId": nats[i]}, [subnet_id])

    def ensure_security_groups(self, vpc_id):
        router = self._ensure_group(vpc_id, "router", self.names.router_security_group,
                                    "convox rack %s load balancer" % self.rack)
        instances = self._ensure_group(vpc_id, "instances", self.names.instance_security_group,
                                       "convox rack %s instances" % self.rack)
        self._ensure_ingress("router", router, D.router_ingress())
        self._ensure_ingress("instances", instances, D.instance_ingress(router, instances))
        return router, instances

    def _ensure_group(self, vpc_id, role, name, description):
        tags = self._res_tags(name, **{"convox:role": role})
        group = self.state.security_groups.get(role)
        if group is None:
            return self.plan.change("security_group", name, "create", lambda: self.aws.call(
                "ec2", "create_security_group", "security group %s" % name, GroupName=name,
                Description=description, VpcId=vpc_id,
                TagSpecifications=self._ec2_tag_spec("security-group", tags))["GroupId"]) or CHECK_MODE_ID
        self._ec2_tags("security_group", group["GroupId"], tag_dict(group.get("Tags")), tags)
        return group["GroupId"]

    def _ensure_ingress(self, role, group_id, wanted_perms):
        group = self.state.security_groups.get(role)
        current = D.permission_keys(group.get("IpPermissions")) if group else set()
        wanted = D.permission_keys(wanted_perms)
        add, remove = wanted - current, current - wanted
        if add:
            self.plan.change("security_group", group_id if group else "%s ingress" % role,
                             "update" if group else "create", lambda: self.aws.call(
                                 "ec2", "authorize_security_group_ingress", "security group %s" % group_id,
                                 GroupId=group_id, IpPermissions=D.permissions_from_keys(add)),
                             detail={"ingress_add": sorted(str(k) for k in add)} if group else None)
        if remove:
            self.plan.change("security_group", group_id, "update", lambda: self.aws.call(
                "ec2", "revoke_security_group_ingress", "security group %s" % group_id,
                GroupId=group_id, IpPermissions=D.permissions_from_keys(remove)),
                detail={"ingress_remove": sorted(str(k) for k in remove)})

    def _image_id(self):
        if self.wanted.get("image_id"):
            return self.wanted["image_id"]
        lt = self.state.launch_template
        if lt and lt["data"].get("ImageId"):
            return lt["data"]["ImageId"]
        return self.aws.call("ssm", "get_parameter", "SSM parameter %s" % D.ECS_AMI_PARAMETER,
                             Name=D.ECS_AMI_PARAMETER)["Parameter"]["Value"]

    def ensure_launch_template(self, profile_arn, instances_sg):
        name = self.names.launch_template
        lt = self.state.launch_template
        volume_tags = dict(self.tags)
        data = D.launch_template_data(self._image_id(), self.wanted["instance_type"], profile_arn, instances_sg,
                                      self.names.cluster, volume_tags)
        self.out["image_id"] = data["ImageId"]
        if lt is None:
            def create():
                created = self.aws.call("ec2", "create_launch_template", "launch template %s" % name,
                                        LaunchTemplateName=name, LaunchTemplateData=data,
                                        VersionDescription="convox.rack %s" % COLLECTION_VERSION,
                                        TagSpecifications=self._ec2_tag_spec("launch-template", self.tags)
                                        )["LaunchTemplate"]
                return created["LaunchTemplateId"], created["DefaultVersionNumber"]
            res = self.plan.change("launch_template", name, "create", create)
            return res or (CHECK_MODE_ID, CHECK_MODE_ID)
        lt_id = lt["LaunchTemplateId"]
        self._ec2_tags("launch_template", lt_id, tag_dict(lt.get("Tags")), self.tags)
        current, wanted = D.launch_template_key(lt["data"]), D.launch_template_key(data)
        if current == wanted:
            return lt_id, lt["DefaultVersionNumber"]
        changed = {k: {"before": current[k], "after": wanted[k]} for k in wanted
                   if current[k] != wanted[k] and k != "UserData"}

        def new_version():
            version = self.aws.call("ec2", "create_launch_template_version", "launch template %s" % name,
                                    LaunchTemplateId=lt_id, LaunchTemplateData=data,
                                    VersionDescription="convox.rack %s" % COLLECTION_VERSION
                                    )["LaunchTemplateVersion"]["VersionNumber"]
            self.aws.call("ec2", "modify_launch_template", "launch template %s" % name,
                          LaunchTemplateId=lt_id, DefaultVersion=str(version))
            return version
        version = self.plan.change("launch_template", name, "update", new_version, detail=changed)
        return lt_id, version or CHECK_MODE_ID

    def ensure_cluster(self):
        name = self.names.cluster
        self.out["cluster_name"] = name
        cluster = self.state.cluster
        if cluster is None:
            self.plan.change("ecs_cluster", name, "create", lambda: self.aws.call(
                "ecs", "create_cluster", "ECS cluster %s" % name, clusterName=name,
                tags=_tl(self.tags, "key", "value")))
            return
        arn = cluster["clusterArn"]
        self._sync_tags("ecs_cluster", name, tag_dict(cluster.get("tags"), "key", "value"), self.tags,
                        lambda s: self.aws.call("ecs", "tag_resource", "ECS cluster %s" % name, resourceArn=arn,
                                                tags=_tl(s, "key", "value")),
                        lambda u: self.aws.call("ecs", "untag_resource", "ECS cluster %s" % name, resourceArn=arn,
                                                tagKeys=u))

    def ensure_autoscaling_group(self, lt_id, lt_version, subnets):
        name = self.names.autoscaling_group
        count = self.wanted["instance_count"]
        self.out["autoscaling_group_name"] = name
        asg = self.state.asg
        spec = {"LaunchTemplateId": lt_id, "Version": str(lt_version)}
        asg_tags = [dict(Key=k, Value=v, PropagateAtLaunch=True, ResourceId=name,
                         ResourceType="auto-scaling-group") for k, v in sorted(self._res_tags(name).items())]
        if asg is None:
            def create():
                kwargs = dict(AutoScalingGroupName=name, LaunchTemplate=spec, MinSize=count, MaxSize=count,
                              DesiredCapacity=count, VPCZoneIdentifier=",".join(subnets),
                              HealthCheckType="EC2", HealthCheckGracePeriod=300, Tags=asg_tags)
                self._create_asg(kwargs)
                return self.aws.call("autoscaling", "describe_auto_scaling_groups", "auto scaling group %s" % name,
                                     AutoScalingGroupNames=[name])["AutoScalingGroups"][0]["AutoScalingGroupARN"]
            return self.plan.change("autoscaling_group", name, "create", create) or CHECK_MODE_ID
        changes = {}
        cur_lt = asg.get("LaunchTemplate") or {}
        if cur_lt.get("LaunchTemplateId") != lt_id or str(cur_lt.get("Version")) != str(lt_version):
            changes["LaunchTemplate"] = spec
        for key in ("MinSize", "MaxSize", "DesiredCapacity"):
            if asg.get(key) != count:
                changes[key] = count
        if set(filter(None, asg.get("VPCZoneIdentifier", "").split(","))) != set(subnets):
            changes["VPCZoneIdentifier"] = ",".join(subnets)
        if changes:
            detail = {k: {"before": cur_lt if k == "LaunchTemplate" else asg.get(k), "after": v}
                      for k, v in changes.items()}
            self.plan.change("autoscaling_group", name, "update", lambda: self.aws.call(
                "autoscaling", "update_auto_scaling_group", "auto scaling group %s" % name,
                AutoScalingGroupName=name, **changes), detail=detail)
        self._sync_tags("autoscaling_group", name, tag_dict(asg.get("Tags")), self._res_tags(name),
                        lambda s: self.aws.call("autoscaling", "create_or_update_tags", "auto scaling group %s" % name,
                                                Tags=[t for t in asg_tags if t["Key"] in s]),
                        lambda u: self.aws.call("autoscaling", "delete_tags", "auto scaling group %s" % name,
                                                Tags=[dict(Key=k, ResourceId=name, ResourceType="auto-scaling-group")
                                                      for k in u]))
        return asg["AutoScalingGroupARN"]

    def _create_asg(self, kwargs):
        """A new instance profile takes seconds to reach EC2: retry while AWS says it is invalid."""
        def attempt():
            try:
                self.aws.call("autoscaling", "create_auto_scaling_group",
                              "auto scaling group %s" % kwargs["AutoScalingGroupName"], **kwargs)
                return True
            except AWSCallError as e:
                if e.code == "ValidationError" and "IamInstanceProfile" in e.msg and self.deadline.remaining() > 0:
                    return False
                if e.code == "AlreadyExists":
                    return True
                raise
        self.deadline.wait_for("instance profile %s to reach EC2" % self.names.instance_role, attempt, interval=2)

    def ensure_capacity_provider(self, asg_arn):
        name = self.names.capacity_provider
        cp = self.state.capacity_provider
        if cp is None:
            self.plan.change("capacity_provider", name, "create", lambda: self.aws.call(
                "ecs", "create_capacity_provider", "capacity provider %s" % name, name=name,
                autoScalingGroupProvider={"autoScalingGroupArn": asg_arn,
                                          "managedScaling": {"status": "DISABLED"},
                                          "managedTerminationProtection": "DISABLED"},
                tags=_tl(self.tags, "key", "value")))
        else:
            arn = cp["capacityProviderArn"]
            self._sync_tags("capacity_provider", name, tag_dict(cp.get("tags"), "key", "value"), self.tags,
                            lambda s: self.aws.call("ecs", "tag_resource", "capacity provider %s" % name,
                                                    resourceArn=arn, tags=_tl(s, "key", "value")),
                            lambda u: self.aws.call("ecs", "untag_resource", "capacity provider %s" % name,
                                                    resourceArn=arn, tagKeys=u))
        cluster = self.state.cluster or {}
        strategy = cluster.get("defaultCapacityProviderStrategy") or []
        if name not in (cluster.get("capacityProviders") or []) or [s.get("capacityProvider") for s in strategy] != [name]:
            self.plan.change("ecs_cluster", self.names.cluster, "update" if self.state.cluster else "create",
                             lambda: self.aws.call(
                                 "ecs", "put_cluster_capacity_providers", "ECS cluster %s" % self.names.cluster,
                                 retry_on=("UpdateInProgressException", "ResourceInUseException"),
                                 cluster=self.names.cluster, capacityProviders=[name],
                                 defaultCapacityProviderStrategy=[{"capacityProvider": name, "weight": 1, "base": 0}]),
                             detail={"capacity_providers": [name]} if self.state.cluster else None)

    def ensure_load_balancer(self, subnets, router_sg):
        name = self.names.load_balancer
        scheme = "internal" if self.wanted["internal_only"] else "internet-facing"
        lb = self.state.load_balancer
        if lb is not None and lb.get("Scheme") != scheme:
            arn = lb["LoadBalancerArn"]

            def delete():
                self.aws.call("elbv2", "delete_load_balancer", "load balancer %s" % name, LoadBalancerArn=arn)
                self.deadline.wait_for("load balancer %s to be deleted" % name, lambda: not self.aws.call(
                    "elbv2", "describe_load_balancers", "load balancer %s" % name,
                    ignore=("LoadBalancerNotFound",), Names=[name]))
            self.plan.change("load_balancer", name, "replace", delete,
                             detail={"scheme": {"before": lb.get("Scheme"), "after": scheme}})
            lb = None
            self.state.listeners = []
        if lb is None:
            def create():
                created = self.aws.call("elbv2", "create_load_balancer", "load balancer %s" % name, Name=name,
                                        Subnets=subnets, SecurityGroups=[router_sg], Scheme=scheme,
                                        Type="application", IpAddressType="ipv4", Tags=_tl(self.tags)
                                        )["LoadBalancers"][0]
                self.aws.call("elbv2", "modify_load_balancer_attributes", "load balancer %s" % name,
                              LoadBalancerArn=created["LoadBalancerArn"], Attributes=_tl(LB_ATTRIBUTES))
                return created
            created = self.plan.change("load_balancer", name, "create", create)
            arn = created["LoadBalancerArn"] if created else CHECK_MODE_ID
            self.out["load_balancer"] = {"arn": arn, "dns_name": created["DNSName"] if created else None}
        else:
            arn = lb["LoadBalancerArn"]
            self.out["load_balancer"] = {"arn": arn, "dns_name": lb.get("DNSName")}
            current_subnets = {z["SubnetId"] for z in lb.get("AvailabilityZones", [])}
            if current_subnets != set(subnets):
                self.plan.change("load_balancer", name, "update", lambda: self.aws.call(
                    "elbv2", "set_subnets", "load balancer %s" % name, LoadBalancerArn=arn, Subnets=subnets),
                    detail={"subnets": {"before": sorted(current_subnets), "after": sorted(subnets)}})
            if set(lb.get("SecurityGroups", [])) != {router_sg}:
                self.plan.change("load_balancer", name, "update", lambda: self.aws.call(
                    "elbv2", "set_security_groups", "load balancer %s" % name, LoadBalancerArn=arn,
                    SecurityGroups=[router_sg]), detail={"security_groups": [router_sg]})
            self._sync_tags("load_balancer", name, self.state.lb_tags, self.tags,
                            lambda s: self.aws.call("elbv2", "add_tags", "load balancer %s" % name,
                                                    ResourceArns=[arn], Tags=_tl(s)),
                            lambda u: self.aws.call("elbv2", "remove_tags", "load balancer %s" % name,
                                                    ResourceArns=[arn], TagKeys=u))
            if self._last_run_unfinished():
                self._ensure_lb_attributes(name, arn)
        self._ensure_listener(arn)

    def _ensure_lb_attributes(self, name, arn):
        self.plan.change("load_balancer", name, "update", lambda: self.aws.call(
            "elbv2", "modify_load_balancer_attributes", "load balancer %s" % name, LoadBalancerArn=arn,
            Attributes=_tl(LB_ATTRIBUTES)), detail={"attributes": LB_ATTRIBUTES, "reason": "last run unfinished"})

    def _ensure_listener(self, lb_arn):
        name = "%s:%d" % (self.names.load_balancer, LISTENER_PORT)
        listener = [x for x in self.state.listeners if x.get("Port") == LISTENER_PORT]
        if not listener:
            self.plan.change("listener", name, "create", lambda: self.aws.call(
                "elbv2", "create_listener", "listener %s" % name, LoadBalancerArn=lb_arn, Protocol="HTTP",
                Port=LISTENER_PORT, DefaultActions=[NOT_FOUND_404], Tags=_tl(self.tags)))
            return
        current = listener[0].get("DefaultActions") or [{}]
        cfg = current[0].get("FixedResponseConfig") or {}
        arn = listener[0]["ListenerArn"]
        self._sync_tags("listener", name, listener[0].get("tags", {}), self.tags,
                        lambda s: self.aws.call("elbv2", "add_tags", "listener %s" % name,
                                                ResourceArns=[arn], Tags=_tl(s)),
                        lambda u: self.aws.call("elbv2", "remove_tags", "listener %s" % name,
                                                ResourceArns=[arn], TagKeys=u))
        if current[0].get("Type") != "fixed-response" or str(cfg.get("StatusCode")) != "404":
            self.plan.change("listener", name, "update", lambda: self.aws.call(
                "elbv2", "modify_listener", "listener %s" % name, ListenerArn=arn, DefaultActions=[NOT_FOUND_404]),
                detail={"default_action": "fixed 404"})
