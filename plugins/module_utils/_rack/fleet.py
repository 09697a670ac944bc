# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every rack of a region in a few bulk reads, for `rack_info` without a name and the inventory.

observe.read_rack reads one rack in about 30 calls; a region of 100 racks would take 3,000.
Here each kind of resource is read once for the whole region, filtered by the tags every rack
resource carries (System=convox, Type=rack) where the API takes tag filters, by derived names
in batches where it does not (ECS), and the pieces are sorted out by their `Rack` tag or name.
About a dozen calls a region whatever the number of racks (plus one per 20 load balancers and
per 50 log groups), spread over a thread pool; IAM (global) is read once per account.

The result is the `rack` dictionary of service.rack_dict, status from service.derive_status,
with one difference from a full read: a rack's load balancer listener is not read (that would
be one call per rack); the load balancer standing for it. `rack_info` with a name reads it all.
"""

from __future__ import annotations

import copy
import ipaddress
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

try:
    import boto3
    import botocore.config
except ImportError:  # pragma: no cover - AnsibleAWSModule and the inventory plugin report missing boto3
    boto3 = None

from .aws import Aws
from .errors import RackError
from .naming import RackNames, SYSTEM
from .observe import GONE_NAT_STATES, RackState, tag_dict
from .params import COLLECTION_VERSION, RACK_NAME_RE, STATE_TAG_PREFIX
from .service import rack_dict

RACK_TAG_FILTERS = [{"Key": "System", "Values": [SYSTEM]}, {"Key": "Type", "Values": ["rack"]}]
EC2_FILTERS = [{"Name": "tag:System", "Values": [SYSTEM]}, {"Name": "tag:Type", "Values": ["rack"]}]
ECS_BATCH = 100          # DescribeClusters and DescribeCapacityProviders take 100 names
ELB_TAGS_BATCH = 20      # ELBv2 DescribeTags takes 20 ARNs
LISTENER_NOT_READ = {"ListenerArn": None, "note": "not read in a region-wide listing; the load balancer stands for it"}
WORKERS = 16


# -- clients ------------------------------------------------------------------------------------------------

class SessionClients:
    """boto3 clients of one set of credentials, all from one boto3 session.

    amazon.aws makes a new session per client, which loads the service models again every time
    (about 0.3 s a client here); one session per account loads each model once. Clients are
    made under a lock (a session is not thread-safe), then used from any thread (clients are)."""

    def __init__(self, region, endpoint_url, params):
        params = dict(params)
        self.region = region
        self.endpoint_url = endpoint_url
        self._session = boto3.session.Session(profile_name=params.pop("profile_name", None))
        config = botocore.config.Config(user_agent_extra="convox.rack/%s" % COLLECTION_VERSION)
        for key in ("config", "aws_config"):
            if params.get(key) is not None:
                config = config.merge(params.pop(key))
            params.pop(key, None)
        self._config = config
        self._params = params
        self._clients = {}
        self._lock = threading.Lock()

    def client(self, service, region=None):
        key = (service, region or self.region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._session.client(service, region_name=key[1], endpoint_url=self.endpoint_url,
                                                          config=self._config, **self._params)
            return self._clients[key]

    def factory(self, region=None):
        """A client factory for aws.Aws, bound to a region."""
        return lambda service: self.client(service, region)


def is_loopback(url):
    """True for an endpoint on this machine (the embedded local AWS): 127.0.0.0/8, ::1, localhost."""
    host = urlparse(url or "").hostname
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_source(aws, name=None):
    """Who the credentials are: account id, alias, and the name racks are listed under.

    `<org>` of `<org>/<rack>` is `name` when given, `local` for the local AWS, else the account
    alias, else the account id (listing aliases needs iam:ListAccountAliases; without it, the id)."""
    ident = aws.call("sts", "get_caller_identity", "caller identity")
    endpoint = aws.client("sts").meta.endpoint_url
    local = is_loopback(endpoint)
    alias = None
    if not name and not local:
        aliases = aws.call("iam", "list_account_aliases", "account aliases",
                           ignore=("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"))
        alias = ((aliases or {}).get("AccountAliases") or [None])[0]
    org = name or ("local" if local else alias or ident["Account"])
    return {"name": org, "account_id": ident["Account"], "account_alias": alias, "local": local,
            "partition": ident["Arn"].split(":")[1]}


# -- the bulk reads (each a function of one client, run in the pool) ------------------------------------------

def by_rack(items, tags_key="Tags", key="Key", value="Value"):
    out = {}
    for item in items:
        rack = tag_dict(item.get(tags_key), key, value).get("Rack")
        if rack:
            out.setdefault(rack, []).append(item)
    return out


def read_buckets(aws, region, account, name=None):
    """The racks of the region: buckets tagged System=convox, Type=rack under their derived names."""
    filters = RACK_TAG_FILTERS + ([{"Key": "Rack", "Values": [name]}] if name else [])
    found = aws.paginate("resourcegroupstaggingapi", "get_resources", "racks in %s" % region,
                         TagFilters=filters, ResourceTypeFilters=["s3"])
    buckets = {}
    for res in found.get("ResourceTagMappingList", []):
        tags = tag_dict(res.get("Tags"))
        rack = tags.get("Rack") or ""
        if tags.get(STATE_TAG_PREFIX + "status") == "uninstalled" or not RACK_NAME_RE.match(rack):
            continue
        bucket = res["ResourceARN"].split(":")[-1]
        if bucket == RackNames(rack, region, account).bucket:
            buckets[rack] = {"name": bucket, "tags": tags}
    return buckets


def read_network(aws, region):
    """VPCs, subnets, internet gateways, NAT gateways and security groups, by rack."""
    out = {}
    for kind, op, key in (("vpcs", "describe_vpcs", "Vpcs"), ("subnets", "describe_subnets", "Subnets"),
                          ("igws", "describe_internet_gateways", "InternetGateways"),
                          ("nats", "describe_nat_gateways", "NatGateways"),
                          ("security_groups", "describe_security_groups", "SecurityGroups")):
        if kind == "nats":
            # DescribeNatGateways names its filter parameter Filter.
            items = aws.paginate("ec2", op, "NAT gateways of racks in %s" % region, Filter=EC2_FILTERS)[key]
            items = [n for n in items if n["State"] not in GONE_NAT_STATES]
        else:
            items = aws.paginate("ec2", op, "%s of racks in %s" % (kind.replace("_", " "), region),
                                 Filters=EC2_FILTERS)[key]
        out[kind] = by_rack(items)
    return out


def read_launch_templates(aws, region):
    found = aws.paginate("ec2", "describe_launch_templates", "launch templates of racks in %s" % region,
                         Filters=EC2_FILTERS)
    return by_rack(found["LaunchTemplates"])


def read_autoscaling_groups(aws, region):
    found = aws.paginate("autoscaling", "describe_auto_scaling_groups", "auto scaling groups of racks in %s" % region,
                         Filters=EC2_FILTERS)
    return by_rack(found["AutoScalingGroups"])


def read_load_balancers(aws, region):
    """Load balancers named convox-*, kept when their tags name a rack (DescribeTags, 20 at a time)."""
    found = aws.paginate("elbv2", "describe_load_balancers", "load balancers in %s" % region)
    lbs = {lb["LoadBalancerArn"]: lb for lb in found.get("LoadBalancers", [])
           if lb["LoadBalancerName"].startswith(SYSTEM + "-")}
    arns = sorted(lbs)
    out = {}
    for start in range(0, len(arns), ELB_TAGS_BATCH):
        descs = aws.call("elbv2", "describe_tags", "load balancers in %s" % region,
                         ResourceArns=arns[start:start + ELB_TAGS_BATCH])["TagDescriptions"]
        for desc in descs:
            tags = tag_dict(desc.get("Tags"))
            lb = lbs.get(desc["ResourceArn"])
            if lb and tags.get("System") == SYSTEM and tags.get("Type") == "rack" and tags.get("Rack"):
                if lb["LoadBalancerName"] == RackNames(tags["Rack"], region).load_balancer:
                    out[tags["Rack"]] = lb
    return out


def read_log_groups(aws, region):
    """Log groups under /convox/: each rack's own, and its apps' (/convox/<rack>/apps/<app>)."""
    found = aws.paginate("logs", "describe_log_groups", "log groups in %s" % region, logGroupNamePrefix="/convox/")
    own, apps = {}, {}
    for group in found.get("logGroups", []):
        parts = group["logGroupName"].split("/")
        if len(parts) == 3:
            own[parts[2]] = group
        elif len(parts) == 5 and parts[3] == "apps":
            apps.setdefault(parts[2], []).append(parts[4])
    return {"own": own, "apps": apps}


def read_clusters(aws, region, names):
    """ECS clusters by derived name, 100 a call; INACTIVE ones and ones not tagged as the rack's left out."""
    out = {}
    for start in range(0, len(names), ECS_BATCH):
        batch = names[start:start + ECS_BATCH]
        found = aws.call("ecs", "describe_clusters", "ECS clusters in %s" % region,
                         clusters=[n.cluster for n in batch], include=["TAGS"])["clusters"]
        by_name = {n.cluster: n.rack for n in batch}
        for cluster in found:
            rack = by_name.get(cluster.get("clusterName"))
            tags = tag_dict(cluster.get("tags"), "key", "value")
            if rack and cluster.get("status") != "INACTIVE" and tags.get("Rack") == rack:
                out[rack] = cluster
    return out


def read_capacity_providers(aws, region, names):
    out = {}
    for start in range(0, len(names), ECS_BATCH):
        batch = names[start:start + ECS_BATCH]
        found = aws.call("ecs", "describe_capacity_providers", "capacity providers in %s" % region,
                         capacityProviders=[n.capacity_provider for n in batch], include=["TAGS"])["capacityProviders"]
        by_name = {n.capacity_provider: n.rack for n in batch}
        for cp in found:
            rack = by_name.get(cp.get("name"))
            if rack and cp.get("status") != "INACTIVE" and cp.get("updateStatus") != "DELETE_COMPLETE":
                out[rack] = cp
    return out


def read_iam(aws):
    """Instance roles and profiles under path /convox/ (IAM is global: once per account).

    None when IAM may not be listed (a read-only inventory role without iam:ListRoles): the
    racks are then listed with their role and profile taken as present, and a warning."""
    denied = ("AccessDenied", "AccessDeniedException")
    roles = aws.paginate("iam", "list_roles", "IAM roles under /convox/", ignore=denied, PathPrefix="/convox/")
    profiles = aws.paginate("iam", "list_instance_profiles", "instance profiles under /convox/", ignore=denied,
                            PathPrefix="/convox/")
    if roles is None or profiles is None:
        return None
    return {"roles": {r["RoleName"]: r for r in roles.get("Roles", [])},
            "profiles": {p["InstanceProfileName"]: p for p in profiles.get("InstanceProfiles", [])}}


IAM_NOT_READ = {"note": "IAM not readable with these credentials (iam:ListRoles, iam:ListInstanceProfiles)"}
IAM_WARNING = ("IAM roles and instance profiles could not be listed (iam:ListRoles, iam:ListInstanceProfiles denied):"
               " racks are listed without checking them")


# -- one region -----------------------------------------------------------------------------------------------

def assemble(rack, bucket, region, account, reads, iam):
    """A RackState made of the bulk reads, turned into the `rack` dictionary."""
    names = RackNames(rack, region, account)
    state = RackState(names)
    state.bucket = bucket
    net = reads["network"]
    vpcs = net["vpcs"].get(rack, [])
    state.vpc = vpcs[0] if len(vpcs) == 1 else None
    state.subnets = net["subnets"].get(rack, [])
    state.igw = (net["igws"].get(rack) or [None])[0]
    state.nat_gateways = net["nats"].get(rack, [])
    for group in net["security_groups"].get(rack, []):
        role = tag_dict(group.get("Tags")).get("convox:role")
        if role:
            state.security_groups[role] = group
    if iam is None:
        state.role = state.instance_profile = IAM_NOT_READ
    else:
        state.role = iam["roles"].get(names.instance_role)
        state.instance_profile = iam["profiles"].get(names.instance_role)
    state.launch_template = _named(reads["launch_templates"].get(rack), "LaunchTemplateName", names.launch_template)
    state.asg = _named(reads["autoscaling_groups"].get(rack), "AutoScalingGroupName", names.autoscaling_group)
    state.cluster = reads["clusters"].get(rack)
    state.capacity_provider = reads["capacity_providers"].get(rack)
    state.load_balancer = reads["load_balancers"].get(rack)
    state.listeners = [LISTENER_NOT_READ] if state.load_balancer else []
    state.log_group = reads["log_groups"]["own"].get(rack)
    state.apps = sorted(reads["log_groups"]["apps"].get(rack, []))
    out = rack_dict(state, region)
    if len(vpcs) > 1:
        out["status"], out["missing"] = "failed", ["vpc (%d VPCs tagged as this rack's)" % len(vpcs)]
    return out


def _named(items, key, name):
    for item in items or []:
        if item.get(key) == name:
            return item
    return None


class RegionRead:
    """The bulk read of one region: started at once on the pool, finished by result()."""

    def __init__(self, pool, aws, region, account, iam_future, name=None):
        self.pool = pool
        self.aws = aws
        self.region = region
        self.account = account
        self.iam_future = iam_future
        self.futures = {
            "buckets": pool.submit(read_buckets, aws, region, account, name),
            "network": pool.submit(read_network, aws, region),
            "launch_templates": pool.submit(read_launch_templates, aws, region),
            "autoscaling_groups": pool.submit(read_autoscaling_groups, aws, region),
            "load_balancers": pool.submit(read_load_balancers, aws, region),
            "log_groups": pool.submit(read_log_groups, aws, region),
        }

    def result(self):
        """(the region's rack dictionaries sorted by name, warnings). RackError when the racks
        themselves cannot be listed; a read of their parts that fails leaves their status unknown."""
        buckets = self.futures["buckets"].result()
        names = [RackNames(rack, self.region, self.account) for rack in sorted(buckets)]
        futures = dict(self.futures, iam=self.iam_future,
                       clusters=self.pool.submit(read_clusters, self.aws, self.region, names),
                       capacity_providers=self.pool.submit(read_capacity_providers, self.aws, self.region, names))
        reads, failed = {}, {}
        for key, future in futures.items():
            try:
                reads[key] = future.result()
            except RackError as e:
                reads[key], failed[key] = copy.deepcopy(NOT_READ[key]), e.msg
        racks = [assemble(rack, buckets[rack], self.region, self.account, reads, reads["iam"]) for rack in sorted(buckets)]
        warnings = ["%s; status unknown" % msg for _key, msg in sorted(failed.items())]
        for rack in racks if failed else []:
            rack["status"], rack["missing"] = "unknown", []
        if reads["iam"] is None and "iam" not in failed and buckets:
            warnings.append(IAM_WARNING)
        return racks, warnings


# What a read that failed leaves behind (the racks' status is then unknown).
NOT_READ = {
    "network": {"vpcs": {}, "subnets": {}, "igws": {}, "nats": {}, "security_groups": {}},
    "launch_templates": {}, "autoscaling_groups": {}, "load_balancers": {}, "clusters": {}, "capacity_providers": {},
    "log_groups": {"own": {}, "apps": {}}, "iam": {"roles": {}, "profiles": {}},
}


def start_reads(pool, aws_for_region, regions, account, name=None):
    """Start the bulk reads of every region of one account on the pool; collect() finishes them.
    aws_for_region(region) gives an aws.Aws for that region, its clients made beforehand
    (prepare_clients): a boto3 session is not thread-safe, its clients are."""
    iam_future = pool.submit(read_iam, aws_for_region(regions[0]))
    reads = [(region, RegionRead(pool, aws_for_region(region), region, account, iam_future, name)) for region in regions]
    return {"iam": iam_future, "reads": reads}


def collect(started):
    """{region: {"racks": [...], "error": None, "warnings": [...]}}, in the order the regions were given.
    A region whose racks cannot be listed gets {"racks": [], "error": message} and does not stop the others."""
    results = {}
    for region, read in started["reads"]:
        try:
            racks, warnings = read.result()
        except RackError as e:
            results[region] = {"racks": [], "error": e.msg, "warnings": []}
        else:
            results[region] = {"racks": racks, "error": None, "warnings": warnings}
    return results


def read_regions(aws_for_region, regions, account, name=None, workers=WORKERS):
    """start_reads and collect on a pool of its own."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return collect(start_reads(pool, aws_for_region, regions, account, name))


FLEET_SERVICES = ("resourcegroupstaggingapi", "ec2", "autoscaling", "elbv2", "logs", "ecs")


def prepare_clients(aws, global_services=("iam",)):
    """Make the clients a region read uses, before threads share them."""
    for service in FLEET_SERVICES + tuple(global_services):
        aws.client(service)


# -- rack_info ---------------------------------------------------------------------------------------------------

def rack_info(module):
    """The result of rack_info: one rack (by name: the full read of observe.read_rack, listener
    included) or every rack of the region (the bulk read), and the source the racks are listed
    under (`local` for the local AWS). Parts that cannot be read leave a rack's status unknown,
    with a warning; racks that cannot be listed at all fail the module."""
    from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_connection_info

    from .errors import AWSCallError
    from .params import validate_name
    from .runner import region_of
    from .service import read_racks

    name = module.params.get("name")
    if name is not None:
        validate_name(name)
    region = region_of(module)
    _region, endpoint, params = get_aws_connection_info(module)
    aws = Aws(SessionClients(region, endpoint, params).factory(region))
    source = read_source(aws)
    warnings = []
    try:
        racks = read_racks(aws, region, name) if name is not None else None
    except AWSCallError as e:
        warnings.append("rack %s could not be read in full (%s); its status is from a partial read" % (name, e.msg))
        racks = None
    if racks is None:
        prepare_clients(aws)
        read = read_regions(lambda r: aws, [region], source["account_id"], name=name)[region]
        if read["error"]:
            raise RackError(read["error"])
        warnings += read["warnings"]
        racks = read["racks"]
    for warning in warnings:
        module.warn(warning)
    return {"changed": False, "racks": racks, "source": source, "aws_calls": len(aws.calls)}
