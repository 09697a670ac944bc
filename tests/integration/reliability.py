"""What the reliability tests (test_reliability_*.py) share: an AWS account of the local AWS of
their own, playbook runs through the fault-injecting proxy (scripts/aws_proxy.py) that can be
killed after their Nth AWS call, and a picture of everything an account holds, to compare a run
under faults or interruptions with a clean one.

Each test works in an account of its own (moto keeps one set of resources per account, reached
with the keys of an assumed role), so that the picture of the account is the picture of what the
test's runs made, untagged leftovers included: nothing else lives there."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import defaultdict

import boto3
import yaml

from aws_proxy import AwsProxy, FAULT_KINDS
from conftest import REGION, ROOT, VENV_BIN

FAULT_MIX = FAULT_KINDS  # the proxy's default mix of fault kinds

# The rack every reliability test installs: private (so NAT gateways and elastic IPs, the
# resources AWS bills for and duplicates hurt most), two zones, one instance.
RACK_VARS = {"rack_high_availability": False, "rack_private": True, "rack_instance_count": 1}
UPDATE_VARS = {"rack_instance_count": 2, "rack_log_retention": 14}

# Set in the environment of every process of a run, so that a kill finds them all (ansible-playbook,
# its worker and the module it runs).
RUN_MARK = "CONVOX_RELIABILITY_RUN"

# Seconds between the rack action's progress lines (plugins/action/rack.py): one a second here, so
# that a test's output shows where a slowed run was.
POLL = {"rack_poll_interval": 1}


def account_id(name):
    """A 12-digit account id of its own for `name` (a test), never moto's default one."""
    return "7" + str(int(hashlib.sha256(name.encode()).hexdigest(), 16))[:11]


class Account:
    """An account of the local AWS: the environment of runs in it, and boto3 clients reading it directly."""

    def __init__(self, local_aws, name):
        self.local_aws = local_aws
        self.id = account_id(name)
        creds = local_aws.client("sts").assume_role(RoleArn="arn:aws:iam::%s:role/convox-reliability" % self.id,
                                                    RoleSessionName="reliability")["Credentials"]
        self.env = {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                    "AWS_SESSION_TOKEN": creds["SessionToken"]}
        self._clients = {}

    def client(self, service):
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service, region_name=REGION, endpoint_url=self.local_aws.endpoint,
                aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=self.env["AWS_SESSION_TOKEN"])
        return self._clients[service]


# -- runs -----------------------------------------------------------------------------------------------------
class Run:
    """One ansible-playbook (or ansible-inventory) run: how it ended and what it sent to AWS."""

    def __init__(self, what, rc, stdout, stderr, seconds, records, killed_at=None, mark=None):
        self.what = what
        self.mark = mark
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds
        self.records = records
        self.killed_at = killed_at

    @property
    def calls(self):
        return len(self.records)

    def __repr__(self):
        killed = " killed at %s" % self.killed_at if self.killed_at else ""
        return "<Run %s rc=%s %.1fs %d calls%s>" % (self.what, self.rc, self.seconds, self.calls, killed)


def processes_of(mark):
    """Pids of every live process whose environment carries RUN_MARK=mark."""
    needle = ("%s=%s" % (RUN_MARK, mark)).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def kill_run(mark, pgid, scope="all"):
    """SIGKILL a run as a killed CI job or container would end it: ansible-playbook's process group
    and (scope "all") every process of the run, the detached async module included. Scope
    "playbook" kills only ansible-playbook's process group (a user's Ctrl-\\ or a killed terminal):
    the async module goes on alone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if scope != "all":
        return
    for _attempt in range(100):
        pids = processes_of(mark)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)
    raise AssertionError("processes of run %s survived SIGKILL: %s" % (mark, processes_of(mark)))


def wait_gone(mark, timeout=120):
    """Wait until no process of the run is left (a detached async module finishing on its own)."""
    end = time.monotonic() + timeout
    while processes_of(mark):
        if time.monotonic() > end:
            raise AssertionError("run %s still has processes after %ds" % (mark, timeout))
        time.sleep(0.2)


class Driver:
    """Runs the collection's playbooks in one account, every AWS call through one proxy."""

    def __init__(self, local_aws, account, proxy):
        self.local_aws = local_aws
        self.account = account
        self.proxy = proxy
        self.runs = []

    def env(self, mark):
        env = self.local_aws.env_via(self.proxy.url)
        env.update(self.account.env)
        env[RUN_MARK] = mark
        return env

    def _records_since(self, start):
        with self.proxy.lock:
            return list(self.proxy.records[start:])

    def _run(self, what, cmd, expect_rc=0, kill_after=None, kill_then="drop", kill_scope="all", kill_counting=None,
             timeout=600):
        """Run cmd; with kill_after=N, SIGKILL the run when its Nth AWS request (of those
        kill_counting(record) accepts, every one by default) arrives at the proxy. kill_then says
        what becomes of that request: "drop" (it never reaches AWS: the process died before
        sending it), "lost" (AWS acts on it, the answer reaches nobody) or None (it goes on as
        the proxy's settings say)."""
        mark = uuid.uuid4().hex
        with self.proxy.lock:
            start = len(self.proxy.records)
        out = tempfile.TemporaryFile(mode="w+")
        err = tempfile.TemporaryFile(mode="w+")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env(mark), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True, text=True)
        killed = {}
        if kill_after is not None:
            seen = {"n": 0}
            guard = threading.Lock()

            def hook(record):
                if kill_counting is not None and not kill_counting(record):
                    return None
                with guard:
                    seen["n"] += 1
                    if seen["n"] != kill_after:
                        return None
                    killed["at"] = "%d (%s)" % (record.seq - start, record.name)  # its place in the run
                kill_run(mark, proc.pid, kill_scope)
                return kill_then
            self.proxy.configure(hook=hook)
        started = time.monotonic()
        try:
            rc = proc.wait(timeout)
        finally:
            if kill_after is not None:
                self.proxy.configure(hook=False)
            if proc.poll() is None:
                kill_run(mark, proc.pid)
                proc.wait()
        seconds = time.monotonic() - started
        if kill_after is not None and kill_scope == "all":
            kill_run(mark, proc.pid)  # nothing of a killed run lives on
        out.seek(0)
        err.seek(0)
        run = Run(what, rc, out.read(), err.read(), seconds, self._records_since(start), killed.get("at"), mark)
        out.close()
        err.close()
        self.runs.append(run)
        if kill_after is None and expect_rc is not None and rc != expect_rc:
            raise AssertionError("%s exited %d (expected %d)\n%s\n%s" % (what, rc, expect_rc, run.stdout[-6000:],
                                                                         run.stderr[-3000:]))
        return run

    def playbook(self, name, extra_vars=None, **kw):
        """ansible-playbook playbooks/<name>.yml -e <vars>, from the repository root."""
        cmd = [os.path.join(VENV_BIN, "ansible-playbook"), os.path.join("playbooks", name)]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        return self._run("%s %s" % (name, json.dumps(extra_vars or {}, sort_keys=True)), cmd, **kw)

    def inventory(self, tmp_dir, **kw):
        """ansible-inventory --list with the convox.rack.racks plugin over the region."""
        path = os.path.join(str(tmp_dir), "racks.convox.yml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump({"plugin": "convox.rack.racks", "regions": [REGION]}, f)
        return self._run("ansible-inventory", [os.path.join(VENV_BIN, "ansible-inventory"), "-i", path, "--list"],
                         **kw)


def listed_racks(inventory_run):
    """{host: status} from ansible-inventory --list output."""
    data = json.loads(inventory_run.stdout)

    def plain(v):
        return v["__ansible_unsafe"] if isinstance(v, dict) and set(v) == {"__ansible_unsafe"} else v
    return {host: plain(hv.get("rack_status")) for host, hv in data.get("_meta", {}).get("hostvars", {}).items()}


# -- the picture of an account --------------------------------------------------------------------------------
_DIGEST = re.compile(r"\b(convox-[a-z0-9-]+?)-[0-9a-f]{12}\b")
SKIPPED_TAGS = {"convox:lease"}  # a timestamp: differs between any two runs


class Picture:
    """Everything an account holds in the region (and its global IAM and S3 parts), each resource
    as a description without ids, names normalised (account id, bucket digests): two accounts
    holding the same racks give equal pictures, and a leftover, a duplicate or a resource left
    half-configured shows as a difference."""

    def __init__(self, account, racks=()):
        self.account = account
        self.racks = list(racks)
        self.kinds = defaultdict(list)

    def norm(self, value):
        if isinstance(value, str):
            value = value.replace(self.account.id, "<account>")
            value = _DIGEST.sub(r"\1-<digest>", value)
            for i, rack in enumerate(self.racks):
                value = re.sub(r"\b%s\b" % re.escape(rack), "<rack%d>" % i, value)
            return value
        if isinstance(value, dict):
            return {self.norm(k): self.norm(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.norm(v) for v in value]
        return value

    def add(self, kind, **desc):
        self.kinds[kind].append(json.dumps(self.norm(desc), sort_keys=True))

    def as_dict(self):
        return {k: sorted(v) for k, v in sorted(self.kinds.items()) if v}

    def count(self, kind):
        return len(self.kinds.get(kind, []))

    def __eq__(self, other):
        return self.as_dict() == other.as_dict()

    def differences(self, other):
        """Human-readable lines: what this picture has that `other` lacks, and the reverse."""
        mine, theirs = self.as_dict(), other.as_dict()
        lines = []
        for kind in sorted(set(mine) | set(theirs)):
            a, b = list(mine.get(kind, [])), list(theirs.get(kind, []))
            for item in list(a):
                if item in b:
                    a.remove(item)
                    b.remove(item)
            lines += ["+ %s %s" % (kind, x) for x in a] + ["- %s %s" % (kind, x) for x in b]
        return lines

    def summary(self):
        return {k: len(v) for k, v in self.as_dict().items()}

    def without(self, kind, **desc):
        """This picture less one resource (which must be in it)."""
        item = json.dumps(self.norm(desc), sort_keys=True)
        assert item in self.kinds.get(kind, []), "%s %s is not in the picture" % (kind, item)
        other = picture_from(self.as_dict(), self.account)
        other.kinds[kind].remove(item)
        return other


def dead_lock(account, rack):
    """The holder of the rack's run lock when it is a process of this host that is gone (a lock a
    killed run left, which the next changing run takes over at once), else None."""
    import socket

    ssm = account.client("ssm")
    got = ignoring(lambda: ssm.get_parameter(Name="/convox/%s/lock" % rack), "ParameterNotFound")
    if got is None:
        return None
    holder = json.loads(got["Parameter"]["Value"])
    if holder.get("host") != socket.gethostname() or os.path.exists("/proc/%s" % holder.get("pid")):
        return None
    return holder


def _tags(items, key="Key", value="Value"):
    return {t[key]: t.get(value, "") for t in items or [] if t[key] not in SKIPPED_TAGS
            and not t[key].startswith("aws:")}


def ignoring(fn, *codes):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - botocore ClientError of any client
        code = getattr(e, "response", {}).get("Error", {}).get("Code")
        if code in codes:
            return None
        raise


def picture(account, racks=()):
    """The Picture of `account` now."""
    pic = Picture(account, racks)
    ec2 = account.client("ec2")
    vpcs = [v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")]
    default_vpcs = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v.get("IsDefault")}
    ours = {v["VpcId"] for v in vpcs}
    for v in vpcs:
        attr = {a: ec2.describe_vpc_attribute(VpcId=v["VpcId"], Attribute=a)[a[0].upper() + a[1:]]["Value"]
                for a in ("enableDnsSupport", "enableDnsHostnames")}
        pic.add("vpc", cidr=v["CidrBlock"], tags=_tags(v.get("Tags")), **attr)
    subnets = [s for s in ec2.describe_subnets()["Subnets"] if s["VpcId"] in ours]
    tier = {s["SubnetId"]: _tags(s.get("Tags")).get("convox:tier", "?") for s in subnets}
    for s in subnets:
        pic.add("subnet", cidr=s["CidrBlock"], zone=s["AvailabilityZone"],
                map_public_ip=bool(s.get("MapPublicIpOnLaunch")), tags=_tags(s.get("Tags")))
    for g in ec2.describe_internet_gateways()["InternetGateways"]:
        attached = [a["VpcId"] for a in g.get("Attachments", [])]
        if set(attached) & default_vpcs:
            continue
        pic.add("internet_gateway", attached=len(attached), tags=_tags(g.get("Tags")))
    for rt in ec2.describe_route_tables()["RouteTables"]:
        if rt["VpcId"] not in ours:
            continue
        routes = sorted("%s->%s" % (r.get("DestinationCidrBlock"), next(
            (k[:-2] for k in ("GatewayId", "NatGatewayId", "InstanceId") if r.get(k)), "?"))
            for r in rt.get("Routes", []))
        assoc = sorted(tier.get(a.get("SubnetId"), "main" if a.get("Main") else "?") for a in rt.get("Associations", []))
        pic.add("route_table", routes=routes, associations=assoc, tags=_tags(rt.get("Tags")))
    for g in ec2.describe_security_groups()["SecurityGroups"]:
        if g["VpcId"] not in ours:
            continue
        rules = sorted("%s:%s-%s from %s" % (p.get("IpProtocol"), p.get("FromPort"), p.get("ToPort"), ",".join(
            sorted([r["CidrIp"] for r in p.get("IpRanges", [])] + ["group"] * len(p.get("UserIdGroupPairs", [])))))
            for p in g.get("IpPermissions", []))
        pic.add("security_group", name=g["GroupName"], ingress=rules, tags=_tags(g.get("Tags")))
    for a in ec2.describe_addresses()["Addresses"]:
        pic.add("elastic_ip", associated=bool(a.get("AssociationId") or a.get("NetworkInterfaceId")),
                tags=_tags(a.get("Tags")))
    for n in ec2.describe_nat_gateways()["NatGateways"]:
        if n["State"] in ("deleted",):
            continue
        pic.add("nat_gateway", state=n["State"], subnet=tier.get(n["SubnetId"], "?"), tags=_tags(n.get("Tags")))
    for r in ec2.describe_instances()["Reservations"]:
        for i in r["Instances"]:
            if i["State"]["Name"] in ("terminated", "shutting-down"):
                continue
            pic.add("instance", type=i["InstanceType"], state=i["State"]["Name"], subnet=tier.get(i.get("SubnetId"), "?"))
    for lt in ec2.describe_launch_templates()["LaunchTemplates"]:
        data = ec2.describe_launch_template_versions(LaunchTemplateId=lt["LaunchTemplateId"], Versions=["$Default"])[
            "LaunchTemplateVersions"][0]["LaunchTemplateData"]
        pic.add("launch_template", name=lt["LaunchTemplateName"], default_version=lt["DefaultVersionNumber"],
                latest_version=lt["LatestVersionNumber"], instance_type=data.get("InstanceType"),
                http_tokens=(data.get("MetadataOptions") or {}).get("HttpTokens"), tags=_tags(lt.get("Tags")))
    asg = account.client("autoscaling")
    for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
        subnets_of = sorted(tier.get(s, "?") for s in filter(None, g.get("VPCZoneIdentifier", "").split(",")))
        pic.add("autoscaling_group", name=g["AutoScalingGroupName"], min=g["MinSize"], max=g["MaxSize"],
                desired=g["DesiredCapacity"], instances=len(g.get("Instances", [])), subnets=subnets_of,
                launch_template_version=(g.get("LaunchTemplate") or {}).get("Version"), tags=_tags(g.get("Tags")))
    ecs = account.client("ecs")
    arns = ecs.list_clusters().get("clusterArns", [])
    for c in (ecs.describe_clusters(clusters=arns, include=["TAGS"])["clusters"] if arns else []):
        if c.get("status") == "INACTIVE":
            continue
        pic.add("ecs_cluster", name=c["clusterName"], capacity_providers=sorted(c.get("capacityProviders", [])),
                strategy=[s["capacityProvider"] for s in c.get("defaultCapacityProviderStrategy", [])],
                tags=_tags(c.get("tags"), "key", "value"))
    # moto cannot list every capacity provider (describe without names fails): the clusters' and
    # the racks' own names are asked for.
    names = sorted(set(["convox-%s" % r for r in pic.racks] + [
        n for c in (ecs.describe_clusters(clusters=arns)["clusters"] if arns else []) for n in c.get("capacityProviders", [])]))
    found = ecs.describe_capacity_providers(capacityProviders=names, include=["TAGS"])["capacityProviders"] if names else []
    for cp in found:
        if cp["name"] in ("FARGATE", "FARGATE_SPOT") or cp.get("status") == "INACTIVE":
            continue
        pic.add("capacity_provider", name=cp["name"], tags=_tags(cp.get("tags"), "key", "value"))
    elb = account.client("elbv2")
    for lb in elb.describe_load_balancers()["LoadBalancers"]:
        arn = lb["LoadBalancerArn"]
        attrs = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]}
        tags = elb.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
        pic.add("load_balancer", name=lb["LoadBalancerName"], scheme=lb["Scheme"],
                subnets=sorted(tier.get(z["SubnetId"], "?") for z in lb.get("AvailabilityZones", [])),
                security_groups=len(lb.get("SecurityGroups", [])),
                drop_invalid_header_fields=attrs.get("routing.http.drop_invalid_header_fields.enabled"),
                tags=_tags(tags))
        for listener in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
            action = (listener.get("DefaultActions") or [{}])[0]
            pic.add("listener", load_balancer=lb["LoadBalancerName"], port=listener["Port"],
                    action=action.get("Type"), status=(action.get("FixedResponseConfig") or {}).get("StatusCode"))
    for tg in elb.describe_target_groups()["TargetGroups"]:
        pic.add("target_group", name=tg["TargetGroupName"])
    iam = account.client("iam")
    for role in iam.list_roles()["Roles"]:
        if role["Path"].startswith("/aws-service-role/"):
            # A service-linked role is the account's, not a rack's: Auto Scaling makes
            # AWSServiceRoleForAutoScaling at an account's first group (IAM user guide, "Using
            # service-linked roles"), the rack's key policy names it (so an install makes it where it
            # is missing), and no uninstall removes it, on AWS as here.
            continue
        name = role["RoleName"]
        tags = iam.list_role_tags(RoleName=name)["Tags"]
        pic.add("iam_role", name=name, path=role["Path"], policies=sorted(iam.list_role_policies(RoleName=name)["PolicyNames"]),
                tags=_tags(tags))
    for prof in iam.list_instance_profiles()["InstanceProfiles"]:
        pic.add("instance_profile", name=prof["InstanceProfileName"], roles=sorted(r["RoleName"] for r in prof["Roles"]))
    logs = account.client("logs")
    for g in logs.describe_log_groups()["logGroups"]:
        pic.add("log_group", name=g["logGroupName"], retention=g.get("retentionInDays"))
    s3 = account.client("s3")
    for b in s3.list_buckets()["Buckets"]:
        name = b["Name"]
        tagging = ignoring(lambda: s3.get_bucket_tagging(Bucket=name), "NoSuchTagSet") or {}
        enc = ignoring(lambda: s3.get_bucket_encryption(Bucket=name), "ServerSideEncryptionConfigurationNotFoundError")
        pab = ignoring(lambda: s3.get_public_access_block(Bucket=name), "NoSuchPublicAccessBlockConfiguration")
        pol = ignoring(lambda: s3.get_bucket_policy(Bucket=name), "NoSuchBucketPolicy")
        lc = ignoring(lambda: s3.get_bucket_lifecycle_configuration(Bucket=name), "NoSuchLifecycleConfiguration")
        logging = s3.get_bucket_logging(Bucket=name).get("LoggingEnabled") or {}
        pic.add("bucket", name=name, tags=_tags(tagging.get("TagSet")),
                versioning=s3.get_bucket_versioning(Bucket=name).get("Status"),
                encryption=[r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
                            for r in ((enc or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules", [])],
                public_access_block=(pab or {}).get("PublicAccessBlockConfiguration"),
                policy=sorted(s.get("Sid", "") for s in json.loads(pol["Policy"])["Statement"]) if pol else None,
                lifecycle=sorted("%s:%s" % (r["ID"], (r.get("Expiration") or {}).get("Days"))
                                 for r in (lc or {}).get("Rules", [])),
                logging=logging.get("TargetPrefix"))
    ecr = account.client("ecr")
    for repo in ecr.describe_repositories()["repositories"]:
        pic.add("repository", name=repo["repositoryName"], mutability=repo.get("imageTagMutability"),
                scan=(repo.get("imageScanningConfiguration") or {}).get("scanOnPush"))
    ssm = account.client("ssm")
    # Only names under /convox and convox: moto lists its thousands of public /aws/ parameters
    # (once the ECS AMI id has been read) in pages it takes long to cut.
    for page in ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": ["/convox", "convox"]}]):
        for p in page.get("Parameters", []):
            pic.add("ssm_parameter", name=p["Name"])
    return pic


def assert_same(actual, expected, what):
    diff = actual.differences(expected)
    assert not diff, "%s differs from the fault-free run:\n%s" % (what, "\n".join(diff))


# -- data -----------------------------------------------------------------------------------------------------
def put_objects(account, bucket, objects):
    """Put objects ({key: body}) into a bucket of the collection. Its TLS-only policy refuses every
    object call over plain HTTP (the local AWS; moto ignores the condition), so it is lifted for
    the writes and put back, as conftest.put_object does."""
    s3 = account.client("s3")
    policy = ignoring(lambda: s3.get_bucket_policy(Bucket=bucket)["Policy"], "NoSuchBucketPolicy")
    if policy:
        s3.delete_bucket_policy(Bucket=bucket)
    try:
        for key, body in objects.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
    finally:
        if policy:
            s3.put_bucket_policy(Bucket=bucket, Policy=policy)


def read_objects(account, bucket, keys):
    """{key: body} of the current versions of `keys` (None for a missing key or bucket), read as
    put_objects writes (the policy lifted and put back)."""
    s3 = account.client("s3")
    try:
        policy = ignoring(lambda: s3.get_bucket_policy(Bucket=bucket)["Policy"], "NoSuchBucketPolicy")
    except Exception as e:  # noqa: BLE001
        if getattr(e, "response", {}).get("Error", {}).get("Code") == "NoSuchBucket":
            return {k: None for k in keys}
        raise
    if policy:
        s3.delete_bucket_policy(Bucket=bucket)
    try:
        out = {}
        for key in keys:
            got = ignoring(lambda key=key: s3.get_object(Bucket=bucket, Key=key), "NoSuchKey")
            out[key] = got["Body"].read() if got else None
        return out
    finally:
        if policy:
            s3.put_bucket_policy(Bucket=bucket, Policy=policy)


def buckets(account):
    return sorted(b["Name"] for b in account.client("s3").list_buckets()["Buckets"])


def report(title, data):
    """Print a figure for the test log (pytest -s or -rA shows it) and keep it for docs/reliability.md
    in $RELIABILITY_REPORT (one JSON line per figure) when that is set."""
    line = json.dumps({"figure": title, "data": data}, sort_keys=True, default=str)
    print("\n[reliability] %s: %s" % (title, json.dumps(data, sort_keys=True, default=str)))
    path = os.environ.get("RELIABILITY_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def is_write(record):
    """Whether a request may change something (its action is not a Describe, Get, List or Head)."""
    return not re.match(r"(Describe|Get|List|Head)", record.action)


def without_log_bucket(data):
    """A picture's as_dict() without the racks' log buckets (<rack bucket>-logs). moto delivers the rack
    bucket's S3 access logs into it at once (AWS within hours), so an uninstall without purge_data always
    keeps it: it holds data. That it is kept, named, and deleted with purge_data is test_rack_security's."""
    out = dict(data)
    if "bucket" in out:
        out["bucket"] = [b for b in out["bucket"] if not json.loads(b)["name"].endswith("-logs")]
        if not out["bucket"]:
            del out["bucket"]
    return out


def left(account, racks=()):
    """What is left in the account, but the racks' kept log buckets (see without_log_bucket)."""
    return without_log_bucket(picture(account, racks).as_dict())


def picture_from(data, account=None):
    pic = Picture(account)
    for kind, items in data.items():
        pic.kinds[kind] = list(items)
    return pic


# -- the fault-free baseline ----------------------------------------------------------------------------------
RACK = "rely"
APP = "web"


def lifecycle(driver, tmp_dir, rack=RACK, snap=None, expect_rc=0):
    """The user's whole story with a rack, playbook by playbook: install, update, app create, status,
    racks, inventory, app delete, uninstall (purging the rack bucket, which holds the app's access
    logs by then). snap(step) is called after each changing step. Returns the runs."""
    snap = snap or (lambda step: None)
    runs = {}
    runs["install"] = driver.playbook("install_rack.yml", dict(RACK_VARS, rack=rack, **POLL), expect_rc=expect_rc)
    snap("install")
    runs["update"] = driver.playbook("update_rack.yml", dict(UPDATE_VARS, rack=rack, **POLL), expect_rc=expect_rc)
    snap("update")
    runs["create_app"] = driver.playbook("create_app.yml", {"rack": rack, "app": APP}, expect_rc=expect_rc)
    snap("create_app")
    runs["status"] = driver.playbook("rack_status.yml", {"rack": rack}, expect_rc=expect_rc)
    runs["racks"] = driver.playbook("racks.yml", {}, expect_rc=expect_rc)
    runs["inventory"] = driver.inventory(tmp_dir, expect_rc=expect_rc)
    runs["delete_app"] = driver.playbook("delete_app.yml", {"rack": rack, "app": APP}, expect_rc=expect_rc)
    snap("delete_app")
    runs["uninstall"] = driver.playbook("uninstall_rack.yml", dict(POLL, rack=rack, rack_purge_data=True),
                                        expect_rc=expect_rc)
    snap("uninstall")
    return runs


def baseline(local_aws, shared_dir):
    """Pictures of the account after each step of lifecycle() run without faults, and the AWS
    actions of each run in order. Made once for all workers of a test session (pytest-xdist):
    the first worker runs it, in an account of its own, the others read its file."""
    import fcntl

    path = os.path.join(str(shared_dir), "reliability-baseline.json")
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        else:
            account = Account(local_aws, "baseline")
            pictures = {}
            with AwsProxy(local_aws.endpoint) as proxy, tempfile.TemporaryDirectory() as tmp:
                driver = Driver(local_aws, account, proxy)
                runs = lifecycle(driver, tmp, snap=lambda step: pictures.__setitem__(
                    step, picture(account, [RACK]).as_dict()))
            data = {"pictures": pictures,
                    "runs": {step: {"actions": [r.name for r in run.records], "seconds": run.seconds}
                             for step, run in runs.items()}}
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(path + ".tmp", path)
    data["pictures"] = {k: picture_from(v) for k, v in data["pictures"].items()}
    return data


# -- the rack service in-process, through the proxy (cheap runs for exploring many cases) -----------------------
def service_run(account, endpoint, state="present", check_mode=False, **params):
    """Run the rack service in this process as the module would (its defaults, RACK_VARS' rack),
    every AWS call to `endpoint`. Returns ("ok", result) or ("failed", message)."""
    from ansible_collections.convox.rack.plugins.module_utils._rack.aws import Aws, Deadline
    from ansible_collections.convox.rack.plugins.module_utils._rack.errors import RackError
    from ansible_collections.convox.rack.plugins.module_utils._rack.service import RackService
    from ansible_collections.convox.rack.plugins.module_utils._rack.spec import RACK_ARGUMENT_SPEC

    full = {k: v.get("default") for k, v in RACK_ARGUMENT_SPEC.items()}
    full.update(name=RACK, state=state, high_availability=False, private=True, instance_count=1)
    full.update(params)
    session = boto3.session.Session(aws_access_key_id=account.env["AWS_ACCESS_KEY_ID"],
                                    aws_secret_access_key=account.env["AWS_SECRET_ACCESS_KEY"],
                                    aws_session_token=account.env["AWS_SESSION_TOKEN"], region_name=REGION)
    aws = Aws(lambda service: session.client(service, endpoint_url=endpoint), deadline=Deadline(full["wait_timeout"]))
    service = RackService(aws, REGION, full, check_mode=check_mode)
    try:
        return "ok", (service.absent() if state == "absent" else service.present())
    except RackError as e:
        return "failed", e.msg
