#!/usr/bin/env python
"""Benchmark the convox.rack.racks inventory against amazon.aws.aws_ec2 on the same local AWS.

Run by hand from the repository root, after `make venv` (not part of `make test`):

    .venv/bin/python bench/bench_inventory.py [--counts 10,100,500] [--repeat 3]

For each count N it empties the local AWS (a moto server of its own on a free loopback port,
scripts/moto_server.py) and spreads, over four regions:

* N racks for convox.rack.racks. Racks are made directly with boto3, not by installing them: only
  the tagged resources the inventory reads, as the collection names and tags them (naming.py,
  params.py): the bucket with its tags (parameters, status, version), VPC, two public subnets,
  internet gateway, the two security groups, launch template, Auto Scaling group (one instance),
  IAM role and instance profile, ECS cluster and capacity provider, load balancer and listener,
  log group. No NAT gateway, route table or policy: the inventory does not read them. Each rack so
  made reads as `running`. (Installing 500 racks with the collection takes about an hour here.)
* N EC2 instances tagged System=convox, Type=bench-peer, for amazon.aws.aws_ec2 to list (filtered
  by that tag; the racks' own instances are not tagged so).

Then it times, --repeat times each (medians reported):

* cold: the inventory read from AWS (`--flush-cache`: the cache is not read, it is written);
* cached: the same configuration again, answered from the jsonfile cache;

each measured three ways, in fresh Python processes:

* parse: the inventory plugin's parse of the source (InventoryManager, the plugin already loaded),
  wall clock and CPU time of the process (its threads included);
* plugin load: importing the plugin (boto3, botocore and amazon.aws come with it), the same for
  both sides whatever N;
* the whole `ansible-inventory --list` process, wall clock (Python and Ansible start-up, plugin
  load, parse, and writing the JSON out).

The two sides take turns (order alternating), so that both run under the same machine load. It
prints a table with the ratio aws_ec2 / convox.rack.racks and how each time grows with N (seconds
per 100 hosts, by least squares), and writes bench/results/inventory-<time>/ (results.json with
every run, summary.md, moto.log).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
COLLECTIONS = os.path.join(ROOT, ".venv", "collections")
sys.path.insert(0, COLLECTIONS)

from ansible_collections.convox.rack.plugins.module_utils._rack.naming import RackNames, system_tags  # noqa: E402
from ansible_collections.convox.rack.plugins.module_utils._rack.params import (  # noqa: E402
    COLLECTION_VERSION, DEFAULTS, parameters_to_tags)

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
ACCOUNT = "123456789012"
SEED_WORKERS = 24

# Run in a fresh interpreter: time InventoryManager's parse of one source.
MEASURE = r"""
import json, sys, time
t0 = time.perf_counter()
from ansible.parsing.dataloader import DataLoader
from ansible.inventory.manager import InventoryManager
from ansible.plugins.loader import init_plugin_loader, inventory_loader
init_plugin_loader([sys.argv[1]])
t1 = time.perf_counter()
inventory_loader.get(sys.argv[4])
inventory_loader.get("auto")
t2 = time.perf_counter()
c2 = time.process_time()
inventory = InventoryManager(loader=DataLoader(), sources=[sys.argv[2]], cache=sys.argv[3] == "cached")
t3 = time.perf_counter()
hosts = [h for h in inventory.get_hosts() if h.name != "localhost"]
print(json.dumps({"ansible_import": t1 - t0, "plugin_load": t2 - t1, "parse": t3 - t2, "parse_cpu": time.process_time() - c2,
                  "hosts": len(hosts)}))
"""


# -- the local AWS -----------------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalAws:
    def __init__(self, workdir):
        self.port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(workdir, "moto.log"), "w")
        self.proc = subprocess.Popen([os.path.join(VENV_BIN, "python"), os.path.join(ROOT, "scripts", "moto_server.py"),
                                      "-H", "127.0.0.1", "-p", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        for _attempt in range(200):
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the local AWS did not start")

    @property
    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL=self.endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION=REGIONS[0], ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_COLLECTIONS_PATH=COLLECTIONS)
        return env

    def reset(self):
        urllib.request.urlopen(urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST"), timeout=60).read()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# -- seeding: racks as the inventory reads them, and the peer's instances -----------------------------------------

class Seeder:
    def __init__(self, aws):
        self.session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
        self.endpoint = aws.endpoint
        self.clients = {}
        for region in REGIONS:
            for service in ("s3", "ec2", "autoscaling", "iam", "ecs", "elbv2", "logs"):
                self.client(service, region)
        self.images = {region: self.client("ec2", region).describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
                       for region in REGIONS}

    def client(self, service, region):
        if (service, region) not in self.clients:
            self.clients[(service, region)] = self.session.client(service, region_name=region, endpoint_url=self.endpoint)
        return self.clients[(service, region)]

    def rack(self, rack, region):
        """The resources of one rack that the inventory reads, named and tagged as the collection does."""
        names = RackNames(rack, region, ACCOUNT)
        tags = system_tags(rack)
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]

        def c(service):
            return self.client(service, region)
        s3 = c("s3")
        s3.create_bucket(Bucket=names.bucket, **({} if region == "us-east-1" else
                                                 {"CreateBucketConfiguration": {"LocationConstraint": region}}))
        params = dict(DEFAULTS, instance_count=1, high_availability=False)
        record = dict(tags, **parameters_to_tags(params))
        record.update({"convox:status": "running", "convox:version": COLLECTION_VERSION})
        s3.put_bucket_tagging(Bucket=names.bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in record.items()]})
        ec2 = c("ec2")

        def spec(kind, **extra):
            return [{"ResourceType": kind, "Tags": tag_list + [{"Key": k, "Value": v} for k, v in extra.items()]}]
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=spec("vpc"))["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.%d.0/24" % i, AvailabilityZone=region + "abc"[i],
                                     TagSpecifications=spec("subnet", **{"convox:tier": "public", "convox:index": str(i)})
                                     )["Subnet"]["SubnetId"] for i in range(2)]
        igw = ec2.create_internet_gateway(TagSpecifications=spec("internet-gateway"))["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        groups = {role: ec2.create_security_group(GroupName="%s-%s" % (names.base, role), Description=role, VpcId=vpc,
                                                  TagSpecifications=spec("security-group", **{"convox:role": role}))["GroupId"]
                  for role in ("router", "instances")}
        ec2.create_launch_template(LaunchTemplateName=names.launch_template, TagSpecifications=spec("launch-template"),
                                   LaunchTemplateData={"ImageId": self.images[region], "InstanceType": "t3.small"})
        asg = c("autoscaling")
        asg.create_auto_scaling_group(AutoScalingGroupName=names.autoscaling_group, MinSize=1, MaxSize=1, DesiredCapacity=1,
                                      LaunchTemplate={"LaunchTemplateName": names.launch_template, "Version": "$Default"},
                                      VPCZoneIdentifier=",".join(subnets),
                                      Tags=[dict(t, PropagateAtLaunch=False) for t in tag_list])
        asg_arn = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[names.autoscaling_group]
                                                   )["AutoScalingGroups"][0]["AutoScalingGroupARN"]
        iam = c("iam")
        iam.create_role(RoleName=names.instance_role, Path="/convox/", Tags=tag_list, AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}))
        iam.create_instance_profile(InstanceProfileName=names.instance_role, Path="/convox/", Tags=tag_list)
        ecs = c("ecs")
        ecs_tags = [{"key": k, "value": v} for k, v in tags.items()]
        ecs.create_cluster(clusterName=names.cluster, tags=ecs_tags)
        ecs.create_capacity_provider(name=names.capacity_provider, tags=ecs_tags,
                                     autoScalingGroupProvider={"autoScalingGroupArn": asg_arn})
        elb = c("elbv2")
        lb = elb.create_load_balancer(Name=names.load_balancer, Subnets=subnets, SecurityGroups=[groups["router"]],
                                      Tags=tag_list)["LoadBalancers"][0]["LoadBalancerArn"]
        elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[{
            "Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])
        c("logs").create_log_group(logGroupName=names.log_group, tags=tags)

    def peer_instances(self, region, count):
        if count:
            self.client("ec2", region).run_instances(
                ImageId=self.images[region], MinCount=count, MaxCount=count, InstanceType="t3.small",
                TagSpecifications=[{"ResourceType": "instance", "Tags": [
                    {"Key": "System", "Value": "convox"}, {"Key": "Type", "Value": "bench-peer"}]}])

    def seed(self, count):
        racks = [("bench%04d" % i, REGIONS[i % len(REGIONS)]) for i in range(count)]
        with ThreadPoolExecutor(SEED_WORKERS) as pool:
            list(pool.map(lambda r: self.rack(*r), racks))
        for index, region in enumerate(REGIONS):
            self.peer_instances(region, len([r for r in racks if r[1] == region]))
        return racks


# -- measuring ------------------------------------------------------------------------------------------------------

def configs(workdir, count):
    cache = os.path.join(workdir, "cache-%d" % count)
    common = {"regions": list(REGIONS), "cache": True, "cache_plugin": "ansible.builtin.jsonfile",
              "cache_connection": cache, "cache_timeout": 3600}
    ours = os.path.join(workdir, "bench.racks.convox.yml")
    peer = os.path.join(workdir, "bench.aws_ec2.yml")
    with open(ours, "w", encoding="utf-8") as f:
        json.dump(dict({"plugin": "convox.rack.racks"}, **common), f)
    with open(peer, "w", encoding="utf-8") as f:
        filters = {"tag:Type": "bench-peer", "instance-state-name": "running"}
        json.dump(dict({"plugin": "amazon.aws.aws_ec2", "hostnames": ["instance-id"], "filters": filters}, **common), f)
    return {"convox.rack.racks": ours, "amazon.aws.aws_ec2": peer}


def measure_parse(aws, plugin, source, cached):
    proc = subprocess.run([os.path.join(VENV_BIN, "python"), "-c", MEASURE, COLLECTIONS, source,
                           "cached" if cached else "cold", plugin], env=aws.env, cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=900)
    if proc.returncode:
        raise RuntimeError("measuring %s failed:\n%s" % (source, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_cli(aws, source, cached):
    cmd = [os.path.join(VENV_BIN, "ansible-inventory"), "-i", source, "--list"] + ([] if cached else ["--flush-cache"])
    start, cpu = time.perf_counter(), children_cpu()
    proc = subprocess.run(cmd, env=aws.env, cwd=ROOT, capture_output=True, text=True, check=False, timeout=900)
    took, cpu = time.perf_counter() - start, children_cpu() - cpu
    if proc.returncode:
        raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), proc.stderr[-3000:]))
    hosts = len([h for h in json.loads(proc.stdout)["_meta"]["hostvars"] if h != "localhost"])
    return {"wall": took, "cpu": cpu, "hosts": hosts}


def run_count(aws, workdir, count, repeat):
    aws.reset()
    start = time.perf_counter()
    Seeder(aws).seed(count)
    seeded = time.perf_counter() - start
    print("  %d racks and %d peer instances made in %.1f s" % (count, count, seeded), flush=True)
    out = {"count": count, "seed_seconds": seeded, "sides": {}}
    sources = configs(workdir, count)
    runs = {side: {"cold": [], "cached": []} for side in sources}
    # The sides take turns (their order alternating), so that both run under the same machine load.
    for rep in range(repeat):
        for side in (list(sources) if rep % 2 == 0 else list(reversed(list(sources)))):
            for mode in ("cold", "cached"):
                parse = measure_parse(aws, side, sources[side], cached=mode == "cached")
                cli = measure_cli(aws, sources[side], cached=mode == "cached")
                if parse["hosts"] != count or cli["hosts"] != count:
                    raise RuntimeError("%s listed %d/%d hosts, expected %d" % (side, parse["hosts"], cli["hosts"], count))
                runs[side][mode].append(dict(parse, wall=cli["wall"], wall_cpu=cli["cpu"]))
    for side, results in runs.items():
        out["sides"][side] = {mode: {key: statistics.median(r[key] for r in rs) for key in rs[0] if key != "hosts"}
                              for mode, rs in results.items()}
        out["sides"][side]["runs"] = results
        cold, cached = out["sides"][side]["cold"], out["sides"][side]["cached"]
        print("  %-18s cold parse %.2f s (process %.2f s), cached parse %.2f s (process %.2f s), plugin load %.2f s" % (
            side, cold["parse"], cold["wall"], cached["parse"], cached["wall"], cached["plugin_load"]), flush=True)
    return out


def slope(points):
    """Seconds per 100 hosts, by least squares over (count, seconds)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 100 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


MEASURES = (("parse", "parse"), ("parse_cpu", "parse, CPU"), ("wall", "ansible-inventory --list"),
            ("wall_cpu", "ansible-inventory --list, CPU"))


def report(rows):
    ours, peer = "convox.rack.racks", "amazon.aws.aws_ec2"
    lines = ["| hosts | mode | measure | convox.rack.racks | amazon.aws.aws_ec2 | aws_ec2 / racks |",
             "|---:|---|---|---:|---:|---:|"]
    for row in rows:
        for mode in ("cold", "cached"):
            for key, label in MEASURES:
                a, b = row["sides"][ours][mode][key], row["sides"][peer][mode][key]
                lines.append("| %d | %s | %s | %.2f s | %.2f s | %.1f |" % (row["count"], mode, label, a, b, b / a))
    loads = [(row["sides"][ours]["cached"]["plugin_load"], row["sides"][peer]["cached"]["plugin_load"]) for row in rows]
    lines += ["", "Plugin load (imports, the same whatever the number of hosts), median: convox.rack.racks %.2f s, "
              "amazon.aws.aws_ec2 %.2f s." % (statistics.median(a for a, _b in loads), statistics.median(b for _a, b in loads)),
              "", "Growth (seconds per 100 more hosts, least squares over the counts):", "",
              "| mode | measure | convox.rack.racks | amazon.aws.aws_ec2 |", "|---|---|---:|---:|"]
    for mode in ("cold", "cached"):
        for key, label in MEASURES:
            growth = [slope([(r["count"], r["sides"][side][mode][key]) for r in rows]) for side in (ours, peer)]
            lines.append("| %s | %s | %.3f s | %.3f s |" % (mode, label, growth[0], growth[1]))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--counts", default="10,100,500")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = os.path.join(ROOT, "bench", "results", "inventory-" + stamp)
    os.makedirs(outdir)
    workdir = tempfile.mkdtemp(prefix="bench-inventory-")
    aws = LocalAws(outdir)
    rows = []
    try:
        for count in counts:
            print("%d racks over %d regions" % (count, len(REGIONS)), flush=True)
            rows.append(run_count(aws, workdir, count, args.repeat))
    finally:
        aws.stop()
    table = report(rows)
    print()
    print(table)
    meta = {"counts": counts, "repeat": args.repeat, "regions": REGIONS, "python": sys.version.split()[0],
            "cpus": os.cpu_count(), "load_average": os.getloadavg(), "rows": rows}
    with open(os.path.join(outdir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    with open(os.path.join(outdir, "summary.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    print("\nresults: %s" % outdir)


if __name__ == "__main__":
    main()
