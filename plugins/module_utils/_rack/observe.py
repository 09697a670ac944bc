# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what exists of a rack: singletons by their derived names, confirmed by tags;
network resources by tags alone. The same reading serves install, uninstall and status."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .errors import RackError
from .naming import RackNames, system_tags
from .params import STATE_TAG_PREFIX, RESERVED_TAG_KEYS, parameters_from_tags

GONE_NAT_STATES = ("deleted", "deleting", "failed")


def tag_dict(tags, key="Key", value="Value"):
    return {t[key]: t.get(value, "") for t in tags or []}


def ec2_filters(rack, extra=None):
    filters = [{"Name": "tag:%s" % k, "Values": [v]} for k, v in system_tags(rack).items()]
    return filters + list(extra or [])


def is_ours(tags, rack):
    return all(tags.get(k) == v for k, v in system_tags(rack).items())


def user_tags(tags):
    return {k: v for k, v in (tags or {}).items()
            if k not in RESERVED_TAG_KEYS and not k.startswith(STATE_TAG_PREFIX) and not k.startswith("aws:")}


class Identity:
    def __init__(self, aws):
        ident = aws.call("sts", "get_caller_identity", "caller identity")
        self.account = ident["Account"]
        self.partition = ident["Arn"].split(":")[1]


class RackState:
    """What exists of one rack. Attributes are None (or empty) for what is missing."""

    def __init__(self, names):
        self.names = names
        self.bucket = None            # {"name", "tags"}
        self.vpc = None
        self.vpcs = []                # every VPC tagged as the rack's (resolve_duplicates keeps one)
        self.subnets = []
        self.igw = None
        self.igws = []
        self.route_tables = []
        self.nat_gateways = []
        self.addresses = []
        self.extras = {}              # kind -> duplicates of a kept resource, to delete (resolve_duplicates)
        self.security_groups = {}     # "router"/"instances" -> group
        self.role = None
        self.role_policy = None
        self.instance_profile = None
        self.launch_template = None   # describe_launch_templates item + "data" of the default version
        self.asg = None
        self.cluster = None
        self.capacity_provider = None
        self.load_balancer = None
        self.lb_tags = {}
        self.listeners = []
        self.log_group = None
        self.log_group_tags = {}

    @property
    def recorded_parameters(self):
        return parameters_from_tags(self.bucket["tags"]) if self.bucket else {}

    @property
    def recorded_status(self):
        return (self.bucket or {}).get("tags", {}).get(STATE_TAG_PREFIX + "status")

    @property
    def exists(self):
        """True when anything of the rack is left (a retained bucket alone does not count)."""
        return any([self.vpc, self.subnets, self.igw, self.route_tables, self.nat_gateways, self.addresses,
                    any(self.extras.values()),
                    self.security_groups, self.role, self.instance_profile, self.launch_template, self.asg,
                    self.cluster, self.capacity_provider, self.load_balancer, self.log_group]) or (
            self.bucket is not None and self.recorded_status != "uninstalled")

    def subnets_of(self, tier):
        subs = [s for s in self.subnets if tag_dict(s.get("Tags")).get("convox:tier") == tier]
        return sorted(subs, key=lambda s: int(tag_dict(s.get("Tags")).get("convox:index", "0")))


def read_bucket(aws, names, rack):
    name = names.bucket
    tagging = aws.call("s3", "get_bucket_tagging", "bucket %s" % name, ignore=("NoSuchBucket",), Bucket=name)
    if tagging is None:
        return None
    return {"name": name, "tags": tag_dict(tagging.get("TagSet"))}


def read_bucket_tags_tolerant(aws, names):
    """get_bucket_tagging, telling a bucket with no tags (ours, half made) from a missing one."""
    name = names.bucket
    try:
        return read_bucket(aws, names, names.rack)
    except RackError as e:
        code = e.details.get("error_code")
        if code == "NoSuchTagSet":
            return {"name": name, "tags": {}}
        if code in ("AccessDenied", "AllAccessDisabled", "403"):
            raise RackError(
                "bucket %s: the name is taken by a bucket this account cannot read (%s); "
                "it is derived from the account, region and rack name, so this should not happen" % (name, code),
                **e.details)
        raise


def read_vpc_part(aws, state, rack):
    state.vpcs = aws.call("ec2", "describe_vpcs", "VPC of rack %s" % rack, Filters=ec2_filters(rack))["Vpcs"]
    state.subnets = aws.call("ec2", "describe_subnets", "subnets of rack %s" % rack,
                             Filters=ec2_filters(rack))["Subnets"]
    state.igws = aws.call("ec2", "describe_internet_gateways", "internet gateway of rack %s" % rack,
                          Filters=ec2_filters(rack))["InternetGateways"]
    state.route_tables = aws.call("ec2", "describe_route_tables", "route tables of rack %s" % rack,
                                  Filters=ec2_filters(rack))["RouteTables"]


# -- duplicates ---------------------------------------------------------------------------------------------------
# CreateVpc, CreateInternetGateway and AllocateAddress take no idempotency token: when AWS acts on
# one and its answer is lost, botocore sends the request again and AWS makes a second resource,
# tagged as the rack's like the first (CreateRouteTable takes a token, which build passes; the
# local AWS ignores it). So where the rack has one of a thing, the reading may find several. One
# is kept, chosen by what uses it (the VPC holding the subnets, the gateway attached to that VPC,
# the address of the NAT gateway, the route table with the subnets); the others, unused, are
# `extras`, which an install deletes once the kept ones carry everything (build.remove_extras)
# and an uninstall deletes with the rest.

def _attached_vpcs(igw):
    return {a["VpcId"] for a in igw.get("Attachments", []) if a.get("State") in ("available", "attached")}


def _by_slot(items, slot):
    groups = {}
    for item in items:
        groups.setdefault(slot(item), []).append(item)
    return groups


def pick_vpc(rack, vpcs, subnets, igws):
    """(the rack's VPC or None, the extra VPCs). Two VPCs that both hold subnets of the rack are
    not duplicates of a lost answer: the rack refuses to guess."""
    holding = {s.get("VpcId") for s in subnets}
    if len([v for v in vpcs if v["VpcId"] in holding]) > 1:
        raise RackError("rack %s has %d VPCs tagged as its own that hold its subnets (%s); "
                        "keep one and remove the others by hand"
                        % (rack, len(vpcs), ", ".join(sorted(v["VpcId"] for v in vpcs))),
                        resource="VPC of rack %s" % rack)
    attached = set().union(*[_attached_vpcs(g) for g in igws]) if igws else set()
    ranked = sorted(vpcs, key=lambda v: (v["VpcId"] not in holding, v["VpcId"] not in attached, v["VpcId"]))
    return (ranked[0] if ranked else None), ranked[1:]


def pick_igw(igws, vpc_id):
    """(the gateway attached to the rack's VPC, else an unattached one, else any; the extras)."""
    ranked = sorted(igws, key=lambda g: (vpc_id not in _attached_vpcs(g), bool(_attached_vpcs(g)),
                                         g["InternetGatewayId"]))
    return (ranked[0] if ranked else None), ranked[1:]


def pick_addresses(addresses, nat_gateways):
    """(one elastic IP per NAT index, the extras). Kept first: the address a NAT gateway of the
    rack uses, then one associated with anything; an extra in use is never released, so it is
    kept as well (the NAT gateways of one index are build's concern, not this reading's)."""
    used = {a.get("AllocationId") for n in nat_gateways for a in n.get("NatGatewayAddresses", [])}
    kept, extras = [], []
    for _slot, group in sorted(_by_slot(addresses, lambda a: tag_dict(a.get("Tags")).get("convox:index")).items(),
                               key=lambda kv: str(kv[0])):
        ranked = sorted(group, key=lambda a: (a["AllocationId"] not in used, not a.get("AssociationId"),
                                              a["AllocationId"]))
        kept.append(ranked[0])
        for a in ranked[1:]:
            (kept if a["AllocationId"] in used or a.get("AssociationId") else extras).append(a)
    return kept, extras


def _subnet_associations(rt):
    return [a for a in rt.get("Associations", []) if a.get("SubnetId")]


def pick_route_tables(route_tables):
    """(one route table per tier and index, the extras): the table with most subnets, then the
    one with a default route. The main route table of a VPC is never an extra."""
    kept, extras = [], []

    def slot(rt):
        t = tag_dict(rt.get("Tags"))
        return (t.get("convox:tier", ""), t.get("convox:index", ""))
    for _slot, group in sorted(_by_slot(route_tables, slot).items()):
        ranked = sorted(group, key=lambda rt: (
            -len(_subnet_associations(rt)),
            not any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in rt.get("Routes", [])),
            rt["RouteTableId"]))
        kept.append(ranked[0])
        for rt in ranked[1:]:
            (kept if any(a.get("Main") for a in rt.get("Associations", [])) else extras).append(rt)
    return kept, extras


def resolve_duplicates(state, rack):
    """Keep one of each thing the rack has one of; the others become state.extras."""
    state.vpc, extra_vpcs = pick_vpc(rack, state.vpcs, state.subnets, state.igws)
    state.igw, extra_igws = pick_igw(state.igws, state.vpc["VpcId"] if state.vpc else None)
    state.addresses, extra_addresses = pick_addresses(state.addresses, state.nat_gateways)
    state.route_tables, extra_route_tables = pick_route_tables(state.route_tables)
    state.extras = {"vpc": extra_vpcs, "internet_gateway": extra_igws, "elastic_ip": extra_addresses,
                    "route_table": extra_route_tables}


def read_gateway_part(aws, state, rack):
    nats = aws.call("ec2", "describe_nat_gateways", "NAT gateways of rack %s" % rack,
                    Filters=ec2_filters(rack))["NatGateways"]
    state.nat_gateways = [n for n in nats if n["State"] not in GONE_NAT_STATES]
    state.deleting_nat_gateways = [n for n in nats if n["State"] == "deleting"]
    state.addresses = aws.call("ec2", "describe_addresses", "elastic IPs of rack %s" % rack,
                               Filters=ec2_filters(rack))["Addresses"]
    groups = aws.call("ec2", "describe_security_groups", "security groups of rack %s" % rack,
                      Filters=ec2_filters(rack))["SecurityGroups"]
    for g in groups:
        role = tag_dict(g.get("Tags")).get("convox:role")
        if role:
            state.security_groups[role] = g


def read_iam(aws, state, names, rack):
    role = aws.call("iam", "get_role", "IAM role %s" % names.instance_role, ignore=("NoSuchEntity",),
                    RoleName=names.instance_role)
    if role:
        role = role["Role"]
        _confirm(tag_dict(role.get("Tags")), rack, "IAM role %s" % names.instance_role)
        state.role = role
        pol = aws.call("iam", "get_role_policy", "IAM role %s" % names.instance_role, ignore=("NoSuchEntity",),
                       RoleName=names.instance_role, PolicyName="ecs-container-instance")
        state.role_policy = pol["PolicyDocument"] if pol else None
    prof = aws.call("iam", "get_instance_profile", "instance profile %s" % names.instance_role,
                    ignore=("NoSuchEntity",), InstanceProfileName=names.instance_role)
    if prof:
        prof = prof["InstanceProfile"]
        tags = prof.get("Tags")
        if tags is None:
            tags = aws.call("iam", "list_instance_profile_tags", "instance profile %s" % names.instance_role,
                            InstanceProfileName=names.instance_role).get("Tags", [])
            prof["Tags"] = tags
        _confirm(tag_dict(tags), rack, "instance profile %s" % names.instance_role)
        state.instance_profile = prof


def read_runtime(aws, state, names, rack):
    lts = aws.call("ec2", "describe_launch_templates", "launch template %s" % names.launch_template,
                   ignore=("InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound"),
                   LaunchTemplateNames=[names.launch_template])
    if lts and lts.get("LaunchTemplates"):
        lt = lts["LaunchTemplates"][0]
        _confirm(tag_dict(lt.get("Tags")), rack, "launch template %s" % names.launch_template)
        versions = aws.call("ec2", "describe_launch_template_versions", "launch template %s" % names.launch_template,
                            LaunchTemplateId=lt["LaunchTemplateId"], Versions=["$Default"])["LaunchTemplateVersions"]
        lt["data"] = versions[0]["LaunchTemplateData"] if versions else {}
        state.launch_template = lt
    groups = aws.call("autoscaling", "describe_auto_scaling_groups", "auto scaling group %s" % names.autoscaling_group,
                      AutoScalingGroupNames=[names.autoscaling_group])["AutoScalingGroups"]
    if groups:
        asg = groups[0]
        _confirm(tag_dict(asg.get("Tags")), rack, "auto scaling group %s" % names.autoscaling_group)
        state.asg = asg
    clusters = aws.call("ecs", "describe_clusters", "ECS cluster %s" % names.cluster,
                        clusters=[names.cluster], include=["TAGS"])["clusters"]
    clusters = [c for c in clusters if c.get("status") != "INACTIVE"]
    if clusters:
        _confirm(tag_dict(clusters[0].get("tags"), "key", "value"), rack, "ECS cluster %s" % names.cluster)
        state.cluster = clusters[0]
    cps = aws.call("ecs", "describe_capacity_providers", "capacity provider %s" % names.capacity_provider,
                   capacityProviders=[names.capacity_provider], include=["TAGS"])["capacityProviders"]
    cps = [c for c in cps if c.get("status") != "INACTIVE" and c.get("updateStatus") != "DELETE_COMPLETE"]
    if cps:
        _confirm(tag_dict(cps[0].get("tags"), "key", "value"), rack,
                 "capacity provider %s" % names.capacity_provider)
        state.capacity_provider = cps[0]


def read_entry(aws, state, names, rack):
    lbs = aws.call("elbv2", "describe_load_balancers", "load balancer %s" % names.load_balancer,
                   ignore=("LoadBalancerNotFound",), Names=[names.load_balancer])
    if lbs and lbs.get("LoadBalancers"):
        lb = lbs["LoadBalancers"][0]
        listeners = aws.call("elbv2", "describe_listeners", "load balancer %s" % names.load_balancer,
                             LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        # One describe_tags for the load balancer and its listeners (20 ARNs a call at most).
        arns = [lb["LoadBalancerArn"]] + [x["ListenerArn"] for x in listeners][:19]
        descs = aws.call("elbv2", "describe_tags", "load balancer %s" % names.load_balancer,
                         ResourceArns=arns)["TagDescriptions"]
        tags = {d["ResourceArn"]: tag_dict(d.get("Tags")) for d in descs}
        state.lb_tags = tags.get(lb["LoadBalancerArn"], {})
        _confirm(state.lb_tags, rack, "load balancer %s" % names.load_balancer)
        for listener in listeners:
            listener["tags"] = tags.get(listener["ListenerArn"], {})
        state.load_balancer = lb
        state.listeners = listeners


def read_logs(aws, state, names, rack):
    groups = aws.paginate("logs", "describe_log_groups", "log group %s" % names.log_group,
                          logGroupNamePrefix=names.log_group).get("logGroups", [])
    exact = [g for g in groups if g["logGroupName"] == names.log_group]
    state.apps = sorted(g["logGroupName"][len(names.app_log_group_prefix()):] for g in groups
                        if g["logGroupName"].startswith(names.app_log_group_prefix()))
    if exact:
        group = exact[0]
        arn = group["arn"][:-2] if group["arn"].endswith(":*") else group["arn"]
        tags = aws.call("logs", "list_tags_for_resource", "log group %s" % names.log_group, resourceArn=arn)
        state.log_group_tags = (tags or {}).get("tags", {})
        _confirm(state.log_group_tags, rack, "log group %s" % names.log_group)
        group["tag_arn"] = arn
        state.log_group = group


def _confirm(tags, rack, what):
    if not is_ours(tags, rack):
        raise RackError(
            "%s exists but is not tagged as part of rack %s (System=convox, Rack=%s, Type=rack);"
            " refusing to adopt or delete it" % (what, rack, rack), resource=what)


def read_rack(aws, rack, region, identity):
    """Everything that exists of the rack, in one RackState."""
    names = RackNames(rack, region, identity.account)
    state = RackState(names)
    state.apps = []

    def bucket():
        state.bucket = read_bucket_tags_tolerant(aws, names)
    in_parallel(aws, [
        bucket,
        lambda: read_vpc_part(aws, state, rack),
        lambda: read_gateway_part(aws, state, rack),
        lambda: read_iam(aws, state, names, rack),
        lambda: read_runtime(aws, state, names, rack),
        lambda: read_entry(aws, state, names, rack),
        lambda: read_logs(aws, state, names, rack),
    ])
    resolve_duplicates(state, rack)
    return state


def in_parallel(aws, readers, workers=8):
    """Run independent reads concurrently (AWS latency, not CPU, is what a read costs).

    boto3 clients are thread-safe once made, so they are all made first, in this thread.
    The first failure is raised, as a sequential run would."""
    for service in ("s3", "ec2", "iam", "autoscaling", "ecs", "elbv2", "logs"):
        aws.client(service)
    with ThreadPoolExecutor(max_workers=min(workers, len(readers))) as pool:
        futures = [pool.submit(reader) for reader in readers]
        for future in futures:
            future.result()
