# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every rack of a region in a few bulk reads, for `rack_info` without a name and the inventory.

reading.read_rack reads one rack in about 30 calls; a region of 100 racks would take 3,000.
Here each kind of resource is read once for the whole region and sorted out by its `Rack` tag:
one listing of the Resource Groups Tagging API (the racks' buckets, whose tags are the recorded
parameters and status, and their VPCs, subnets, internet gateways, security groups and load
balancers), the Auto Scaling groups (filtered by tag), the ECS clusters and capacity providers
(by derived name, 100 a call), the load balancers, the log groups under /convox/ and, where a
rack is private, the NAT gateways: about eight calls a region whatever the number of racks,
spread over a thread pool; IAM (global) once per account.

The result is the `rack` dictionary of status.rack_dict, status from status.decide,
with two differences from a full read, each to save a call per rack: a rack's load balancer
stands for its listener, and the launch template its Auto Scaling group names stands for the
template. `rack_info` with a name reads it all.
"""

from __future__ import annotations

import copy
import ipaddress
import threading
import types
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

from . import holder
from .errors import RackError
from .naming import SYSTEM, RackNames
from .params import RACK_NAME_RE
from .parts.duplicates import pick_igw, pick_vpc
from .parts import storage
from .parts.nat import GONE_NAT_STATES
from .reading import read_rack
from .record import RUN_STATUSES, STATUS_TAG, parameters_from_tags
from .state import NOT_READ, RackState
from .status import decide, rack_dict
from .tags import ec2_filters, tag_dict

RACK_TAG_FILTERS = [{"Key": "System", "Values": [SYSTEM]}, {"Key": "Type", "Values": ["rack"]}]
EC2_FILTERS = [{"Name": "tag:System", "Values": [SYSTEM]}, {"Name": "tag:Type", "Values": ["rack"]}]
ECS_BATCH = 100          # DescribeClusters and DescribeCapacityProviders take 100 names
WORKERS = 16
# What a rack of which nothing but the tagging listing's entry is left has none of (and no load
# balancer): the parts read from their own services, not from the (lagging) listing.
GHOST_KEYS = ("autoscaling_group_name", "cluster_name", "log_group")


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
    """Items tagged as a rack's (System=convox, Type=rack), grouped by their Rack tag."""
    out = {}
    for item in items:
        tags = tag_dict(item.get(tags_key), key, value)
        if tags.get("Rack") and tags.get("System") == SYSTEM and tags.get("Type") == "rack":
            out.setdefault(tags["Rack"], []).append(item)
    return out


# One listing of the Resource Groups Tagging API gives the racks (their buckets, whose tags are the
# recorded parameters and status) and, of their network and load balancer, all that the status needs:
# ids and tags (tier, index, role, rack). EC2's describe calls would take four calls more; on the local
# AWS each of those also costs time in proportion to the resources returned times every tag of the
# region (moto scans its whole tag store for each resource): 7 s a region at 125 racks, against a
# quarter of a second for the listing. (On AWS the listing can lag EC2 by a few minutes; rack_info
# with a name reads EC2 itself.)
TAGGED_TYPES = {"ec2:vpc": ("vpcs", "VpcId"), "ec2:subnet": ("subnets", "SubnetId"),
                "ec2:internet-gateway": ("igws", "InternetGatewayId"),
                "ec2:security-group": ("security_groups", "GroupId"),
                "elasticloadbalancing:loadbalancer": ("load_balancers", "LoadBalancerArn")}


def read_tagged(aws, region, account, name=None):
    """{"buckets": {rack: {name, tags}}, "network": {kind: {rack: [items]}}, "lb_arns": {arn: rack}}."""
    filters = RACK_TAG_FILTERS + ([{"Key": "Rack", "Values": [name]}] if name else [])
    found = aws.paginate("resourcegroupstaggingapi", "get_resources", "racks in %s" % region, TagFilters=filters,
                         ResourceTypeFilters=["s3"] + list(TAGGED_TYPES), TagsPerPage=500)
    buckets, items = {}, {kind: [] for kind, _key in TAGGED_TYPES.values()}
    for res in found.get("ResourceTagMappingList", []):
        arn = res["ResourceARN"]
        service, resource = arn.split(":")[2], arn.split(":", 5)[-1]
        if service == "s3":
            _add_bucket(buckets, resource, tag_dict(res.get("Tags")), region, account)
            continue
        kind_type = "%s:%s" % (service, resource.split("/")[0])
        if kind_type in TAGGED_TYPES:
            kind, id_key = TAGGED_TYPES[kind_type]
            items[kind].append({id_key: arn if service == "elasticloadbalancing" else resource.split("/")[-1],
                                "Tags": res.get("Tags", [])})
    lb_arns = {lb["LoadBalancerArn"]: rack for rack, lbs in by_rack(items.pop("load_balancers")).items() for lb in lbs}
    log_buckets = buckets.pop(LOG_BUCKETS, {})
    return {"buckets": buckets, "log_buckets": log_buckets,
            "network": {kind: by_rack(found_items) for kind, found_items in items.items()},
            "lb_arns": lb_arns}


LOG_BUCKETS = ""  # not a rack's name: where _add_bucket puts the racks' log buckets meanwhile


def _add_bucket(buckets, bucket, tags, region, account):
    """A rack's bucket: tagged as a rack's, not uninstalled, under the name derived for this account and region."""
    rack = tags.get("Rack") or ""
    if tags.get(STATUS_TAG) == "uninstalled" or not RACK_NAME_RE.match(rack):
        return
    names = RackNames(rack, region, account)
    if bucket == names.bucket:
        buckets[rack] = {"name": bucket, "tags": tags}
    elif bucket == names.log_bucket:
        buckets.setdefault(LOG_BUCKETS, {})[rack] = {"name": bucket, "tags": tags}


def read_nat_gateways(aws, region, private):
    """NAT gateways from EC2 itself, when some rack of the region is private: they have a state (a
    deleted one stays listed for an hour). DescribeNatGateways names its filter parameter Filter."""
    if not private:
        return {}
    nats = aws.paginate("ec2", "describe_nat_gateways", "NAT gateways of racks in %s" % region, Filter=EC2_FILTERS[:1])
    return by_rack([n for n in nats["NatGateways"] if n["State"] not in GONE_NAT_STATES])


def read_autoscaling_groups(aws, region):
    found = aws.paginate("autoscaling", "describe_auto_scaling_groups", "auto scaling groups of racks in %s" % region,
                         Filters=EC2_FILTERS)
    return by_rack(found["AutoScalingGroups"])


def read_load_balancers(aws, region):
    """Load balancers named convox-* (whose tags, in the tagging listing, say which rack they are)."""
    found = aws.paginate("elbv2", "describe_load_balancers", "load balancers in %s" % region)
    return {lb["LoadBalancerArn"]: lb for lb in found.get("LoadBalancers", [])
            if lb["LoadBalancerName"].startswith(SYSTEM + "-")}


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


def read_kms_aliases(aws, region):
    """Each rack's own key, by its alias alias/convox/<rack>: {rack: {"Arn"}} (one paginated call)."""
    found = aws.paginate("kms", "list_aliases", "KMS aliases in %s" % region)
    out = {}
    for alias in found.get("Aliases", []):
        parts = alias.get("AliasName", "").split("/")
        if len(parts) == 3 and parts[1] == SYSTEM and alias.get("TargetKeyId"):
            prefix = alias["AliasArn"].split(":alias/")[0]
            out[parts[2]] = {"Arn": "%s:key/%s" % (prefix, alias["TargetKeyId"]), "KeyId": alias["TargetKeyId"]}
    return out


def _read_ecs(aws, region, names, what):
    """ECS clusters or capacity providers by derived name, 100 a call: {rack: description}.
    INACTIVE ones, deleted ones, and clusters not tagged as the rack's are left out."""
    label, operation, key, name_key, derived = {
        "clusters": ("ECS clusters", "describe_clusters", "clusters", "clusterName", lambda n: n.cluster),
        "capacity providers": ("capacity providers", "describe_capacity_providers", "capacityProviders", "name",
                               lambda n: n.capacity_provider),
    }[what]
    out = {}
    for start in range(0, len(names), ECS_BATCH):
        batch = names[start:start + ECS_BATCH]
        found = aws.call("ecs", operation, "%s in %s" % (label, region), include=["TAGS"],
                         **{key: [derived(n) for n in batch]})[key]
        by_name = {derived(n): n.rack for n in batch}
        for item in found:
            rack = by_name.get(item.get(name_key))
            tagged = what != "clusters" or tag_dict(item.get("tags"), "key", "value").get("Rack") == rack
            if rack and tagged and item.get("status") != "INACTIVE" and item.get("updateStatus") != "DELETE_COMPLETE":
                out[rack] = item
    return out


def read_clusters(aws, region, names):
    return _read_ecs(aws, region, names, "clusters")


def read_capacity_providers(aws, region, names):
    return _read_ecs(aws, region, names, "capacity providers")


def read_iam(aws):
    """Instance profiles under path /convox/ and the roles in them (IAM is global: once per account).

    None when IAM may not be listed (a read-only inventory role without iam:ListInstanceProfiles):
    the racks are then listed with their role and profile taken as present, and a warning."""
    found = aws.paginate("iam", "list_instance_profiles", "instance profiles under /convox/", PathPrefix="/convox/",
                         ignore=("AccessDenied", "AccessDeniedException"))
    if found is None:
        return None
    profiles = {p["InstanceProfileName"]: p for p in found.get("InstanceProfiles", [])}
    return {"profiles": profiles, "roles": {r["RoleName"]: r for p in profiles.values() for r in p.get("Roles", [])}}


IAM_WARNING = ("IAM instance profiles could not be listed (iam:ListInstanceProfiles denied): racks are listed without"
               " checking their instance role and profile")


# -- one region -----------------------------------------------------------------------------------------------

def assemble(rack, region, account, reads, unread=False):
    """A RackState made of the bulk reads, turned into the `rack` dictionary (status unknown
    when some read failed: `unread`)."""
    names = RackNames(rack, region, account)
    state = RackState(names)
    state.bucket = reads["tagged"]["buckets"][rack]
    net = reads["tagged"]["network"]
    vpcs, igws = net["vpcs"].get(rack, []), net["igws"].get(rack, [])
    state.subnets = net["subnets"].get(rack, [])
    try:
        # Duplicates left by a create sent twice do not count (the next install deletes them).
        state.vpc = pick_vpc(rack, vpcs, state.subnets, igws)[0]
        unresolved = None
    except RackError as e:
        unresolved = e.msg
    state.igw = pick_igw(igws, state.vpc["VpcId"] if state.vpc else None)[0]
    state.nat_gateways = reads["nat_gateways"].get(rack, [])
    for group in net["security_groups"].get(rack, []):
        role = tag_dict(group.get("Tags")).get("convox:role")
        if role:
            state.security_groups[role] = group
    if reads["iam"] is None:  # IAM not readable with these credentials (iam:ListInstanceProfiles)
        state.role = state.instance_profile = NOT_READ
    else:
        state.role = reads["iam"]["roles"].get(names.instance_role)
        state.instance_profile = reads["iam"]["profiles"].get(names.instance_role)
    state.asg = _named(reads["autoscaling_groups"].get(rack), "AutoScalingGroupName", names.autoscaling_group)
    state.launch_template = launch_template_of(state.asg, names)
    state.cluster = reads["clusters"].get(rack)
    state.capacity_provider = reads["capacity_providers"].get(rack)
    state.load_balancer = _named([lb for arn, lb in reads["load_balancers"].items()
                                  if reads["tagged"]["lb_arns"].get(arn) == rack], "LoadBalancerName", names.load_balancer)
    # Not read in a region-wide listing: the load balancer stands for its listeners (and its attributes),
    # and the VPC for its flow logs (rack_info with a name reads them).
    state.listeners = [NOT_READ] if state.load_balancer else []
    state.flow_logs = [NOT_READ] if state.vpc else []
    state.log_bucket = reads["tagged"].get("log_buckets", {}).get(rack)
    state.log_group = reads["log_groups"]["own"].get(rack)
    state.kms_key = reads["kms_aliases"].get(rack)   # found by its alias (the full read confirms its tags)
    if rack in reads.get("locks", {}):
        state.lock = reads["locks"][rack]
    state.apps = sorted(reads["log_groups"]["apps"].get(rack, []))
    if unresolved:
        unresolved = "vpc (%d VPCs tagged as this rack's hold its subnets)" % len(vpcs)
    status, missing = decide(state, unread=unread, unresolved=unresolved)
    return rack_dict(state, region, status, missing)


def launch_template_of(asg, names):
    """The launch template the group launches from, when it is the rack's (its name): the bulk read
    does not describe launch templates. Without a group, there is no telling: the template is not
    read (the group is counted missing)."""
    if asg is None:
        return NOT_READ
    spec = asg.get("LaunchTemplate") or {}
    if spec.get("LaunchTemplateName") != names.launch_template:
        return None
    return {"LaunchTemplateName": spec["LaunchTemplateName"], "LaunchTemplateId": spec.get("LaunchTemplateId")}


def _named(items, key, name):
    for item in items or []:
        if item.get(key) == name:
            return item
    return None


class RegionRead:
    """The bulk read of one region, started on the pool at once, finished by result().

    Each read is submitted as soon as its client exists, so that the reads of a region run while
    the clients of the next are made (making a client is CPU work of a few tens of milliseconds,
    which the calling thread does: a boto3 session is not thread-safe, its clients are). The ECS
    reads, which need the racks' names, and the NAT gateways' (read only when a rack is private,
    its EC2 client made then, under SessionClients' lock) wait in the pool for the tagging listing,
    the Auto Scaling groups and the log groups (which name racks the listing may not give yet);
    they are submitted after those, and the pool takes tasks in order, so what they wait for is
    running or done by the time one of them waits.

    The tagging listing lags AWS's creates and deletes by minutes (Resource Groups Tagging API
    reference, GetResources: "eventually consistent"): a rack just installed may be missing from it,
    a rack just removed may linger. A rack whose Auto Scaling group or log group exists but that the
    listing does not give is read from its bucket's tags, then in full (reading.read_rack: the
    listing gives the others' network; about 30 calls, for each such rack only); a listed
    rack of which nothing but the listing is left is checked the same way, and dropped when its
    bucket is gone or kept by an uninstall."""

    READS = (("resourcegroupstaggingapi", "tagged"), ("autoscaling", "autoscaling_groups"), ("logs", "log_groups"),
             ("elbv2", "load_balancers"), ("ecs", "clusters"), ("ecs", "capacity_providers"),
             ("kms", "kms_aliases"), (None, "nat_gateways"))

    def __init__(self, pool, aws, region, account, iam_future, name=None):
        self.aws = aws
        self.region = region
        self.account = account
        self.iam_future = iam_future
        self.name = name
        self.futures = {}
        self._buckets = None
        self._lock = threading.Lock()
        calls = {
            "tagged": lambda: read_tagged(aws, region, account, name),
            "nat_gateways": lambda: read_nat_gateways(aws, region, self._private()),
            "autoscaling_groups": lambda: read_autoscaling_groups(aws, region),
            "clusters": lambda: read_clusters(aws, region, self._names()),
            "capacity_providers": lambda: read_capacity_providers(aws, region, self._names()),
            "load_balancers": lambda: read_load_balancers(aws, region),
            "log_groups": lambda: read_log_groups(aws, region),
            "kms_aliases": lambda: read_kms_aliases(aws, region),
        }
        for service, key in self.READS:
            if service:
                aws.client(service)
            self.futures[key] = pool.submit(calls[key])

    def _private(self):
        """Whether a rack of the region is private (has NAT gateways to read)."""
        return any(parameters_from_tags(b["tags"]).get("private") for b in self.buckets().values())

    def _names(self):
        return [RackNames(rack, self.region, self.account) for rack in sorted(self.buckets())]

    def _found(self, key):
        try:
            return self.futures[key].result()
        except RackError:
            return {}

    def buckets(self):
        """{rack: its bucket}: the listed racks, and those the listing does not give yet."""
        with self._lock:
            if self._buckets is None:
                buckets = dict(self.futures["tagged"].result()["buckets"])
                seen = set(self._found("autoscaling_groups")) | set(self._found("log_groups").get("own", {}))
                for rack in sorted(seen - set(buckets)):
                    if RACK_NAME_RE.match(rack) and self.name in (None, rack):
                        self._read_bucket(buckets, rack)
                self._buckets = buckets
            return self._buckets

    def _read_bucket(self, buckets, rack):
        name = RackNames(rack, self.region, self.account).bucket
        bucket = storage.read_tags(self.aws, name)
        if bucket is not None and bucket["tags"].get("Rack") == rack and bucket["tags"].get("Type") == "rack":
            _add_bucket(buckets, name, bucket["tags"], self.region, self.account)

    def _read_late(self, rack):
        """The full reading of a rack the tagging listing does not give yet."""
        return rack_dict(read_rack(self.aws, rack, self.region, types.SimpleNamespace(account=self.account)),
                         self.region)

    def _gone(self, rack):
        """Whether a rack of which nothing but the listing is left has lost its bucket (or had it
        kept by an uninstall) since the listing was made."""
        if any(rack[key] for key in GHOST_KEYS) or rack["load_balancer"]["arn"]:
            return False
        bucket = storage.read_tags(self.aws, rack["bucket"])
        return bucket is None or bucket["tags"].get(STATUS_TAG) == "uninstalled"

    def _read_duplicated(self, net):
        """The subnets and internet gateways, from EC2 itself, of a rack that has more than one VPC
        or gateway tagged as its own (a create sent twice: parts/duplicates.py): which one is
        the rack's depends on where its subnets are and what is attached, which the tagging listing
        does not say. Two calls for each such rack; none for the others."""
        for rack in sorted(set(net["vpcs"]) | set(net["igws"])):
            if len(net["vpcs"].get(rack, [])) < 2 and len(net["igws"].get(rack, [])) < 2:
                continue
            net["subnets"][rack] = self.aws.call("ec2", "describe_subnets", "subnets of rack %s" % rack,
                                                 Filters=ec2_filters(rack))["Subnets"]
            net["igws"][rack] = self.aws.call("ec2", "describe_internet_gateways",
                                              "internet gateway of rack %s" % rack,
                                              Filters=ec2_filters(rack))["InternetGateways"]

    def _read_locks(self, buckets):
        """({rack: holder or None} of the racks whose record says a run works on them, warnings):
        holder.read_many, ten a call, no call when no run works on any; when the locks cannot be read,
        none, and the record is believed until its expiry."""
        working = [rack for rack, bucket in buckets.items() if bucket["tags"].get(STATUS_TAG) in RUN_STATUSES]
        if not working:
            return {}, []
        try:
            found = holder.read_many(self.aws, working, self.region)
        except RackError as e:
            return {}, ["%s; a recorded run status is believed until its expiry" % e.msg]
        return {rack: found.get(rack) for rack in working}, []

    def result(self):
        """(the region's rack dictionaries sorted by name, warnings). RackError when the racks
        themselves cannot be listed; a read of their parts that fails leaves their status unknown."""
        reads, failed = {"tagged": self.futures["tagged"].result()}, {}
        buckets = self.buckets()
        for key, future in dict(self.futures, iam=self.iam_future).items():
            if key == "tagged":
                continue
            try:
                reads[key] = future.result()
            except RackError as e:
                reads[key], failed[key] = copy.deepcopy(FAILED_READ[key]), e.msg
        self._read_duplicated(reads["tagged"]["network"])
        reads["locks"], lock_warnings = self._read_locks(buckets)
        late = set(buckets) - set(self.futures["tagged"].result()["buckets"])
        racks = [self._read_late(rack) if rack in late else
                 assemble(rack, self.region, self.account, reads, unread=bool(failed)) for rack in sorted(buckets)]
        racks = [r for r in racks if failed or not self._gone(r)]
        warnings = ["%s; status unknown" % msg for _key, msg in sorted(failed.items())] + lock_warnings
        if reads["iam"] is None and "iam" not in failed and buckets:
            warnings.append(IAM_WARNING)
        return racks, warnings


# What a read that failed leaves behind (the racks' status is then unknown).
FAILED_READ = {
    "nat_gateways": {}, "autoscaling_groups": {}, "load_balancers": {}, "clusters": {}, "capacity_providers": {},
    "log_groups": {"own": {}, "apps": {}}, "iam": {"roles": {}, "profiles": {}}, "kms_aliases": {},
}


def start_reads(pool, aws_for_region, regions, account, name=None):
    """Start the bulk reads of every region of one account on the pool; collect() finishes them.
    aws_for_region(region) gives an aws.Aws for that region; its clients are made here, in the
    calling thread, each just before the first read that uses it."""
    first = aws_for_region(regions[0])
    first.client("iam")
    iam_future = pool.submit(read_iam, first)
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


# The services a region read uses (and IAM, once per account).
FLEET_SERVICES = tuple(dict.fromkeys([service for service, _key in RegionRead.READS if service] + ["ec2"]))
