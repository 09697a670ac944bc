"""Integration fixtures: a local AWS (moto's server, through scripts/moto_server.py) of this
test session's own on a free loopback port, and helpers that run real ansible-playbook against it
and read AWS back through boto3."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scripts"))
from aws_proxy import AwsProxy  # noqa: E402  (scripts/aws_proxy.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# ansible-playbook, ansible-inventory and ansible-doc of the tests: .venv's, or those of an environment of the
# ansible-core matrix (scripts/matrix.py sets CONVOX_VENV_BIN). The local AWS always runs on .venv's Python.
VENV_BIN = os.environ.get("CONVOX_VENV_BIN") or os.path.join(ROOT, ".venv", "bin")
SERVER_PYTHON = os.path.join(ROOT, ".venv", "bin", "python")
PLAYBOOKS = os.path.join(ROOT, "tests", "integration", "playbooks")
REGION = "us-east-1"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalAws:
    def __init__(self, port, log_path):
        self.port = port
        self.endpoint = "http://127.0.0.1:%d" % port
        self.log_path = log_path
        self.temp = tempfile.mkdtemp(prefix="convox-rack-it-")

    @property
    def env(self):
        return self.env_via(self.endpoint)

    def env_via(self, endpoint):
        """The environment of a run whose AWS calls go to `endpoint` (a proxy in front of this AWS)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION, ANSIBLE_NOCOLOR="1",
                   ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                   ANSIBLE_LOCAL_TEMP=self.temp, ANSIBLE_REMOTE_TEMP=self.temp)
        return env

    def realism(self, enabled=True, **settings):
        """Switch the server's realism mode (POST /moto-api/realism); returns the settings in force."""
        req = urllib.request.Request(self.endpoint + "/moto-api/realism", method="POST",
                                     data=json.dumps(dict(settings, enabled=enabled)).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as answer:
            return json.load(answer)

    def reset(self):
        """Wipe every resource of the server (POST /moto-api/reset)."""
        urllib.request.urlopen(urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST"),
                               timeout=10).read()

    def client(self, service, region=REGION):
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def request_count(self):
        """AWS API requests the server has answered (moto logs one line per request)."""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            # werkzeug colours the lines of 4xx and 5xx answers (reads that find nothing): take the codes too.
            return sum(1 for line in f if re.search(r'"(?:\x1b\[[0-9;]*m)*(POST|GET|PUT|DELETE|HEAD) /(?!moto-api)', line))


def _start_local_aws(log_path):
    """moto's server (scripts/moto_server.py) on a free loopback port: (process, LocalAws, log file)."""
    port = _free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen([SERVER_PYTHON, os.path.join(ROOT, "scripts", "moto_server.py"),
                             "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    url = "http://127.0.0.1:%d/moto-api/data.json" % port
    for _attempt in range(150):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("the local AWS did not start; see %s" % log_path)
    return proc, LocalAws(port, log_path), log


def _stop_local_aws(proc, log):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory):
    proc, aws, log = _start_local_aws(str(tmp_path_factory.mktemp("local-aws") / "moto.log"))
    yield aws
    _stop_local_aws(proc, log)


@pytest.fixture(scope="module")
def realistic_aws(tmp_path_factory):
    """A local AWS of the test module's own, whose realism mode (scripts/realism.py) the tests switch
    on with `realistic_aws.realism(scale=..., timings={...})`; off again after each use of it."""
    proc, aws, log = _start_local_aws(str(tmp_path_factory.mktemp("realistic-aws") / "moto.log"))
    yield aws
    _stop_local_aws(proc, log)


@pytest.fixture()
def aws_proxy(local_aws):
    """A recording, fault-injecting proxy (scripts/aws_proxy.py) in front of the local AWS, with no
    faults until the test configures some; `Runner(local_aws, proxy=aws_proxy)` runs through it."""
    proxy = AwsProxy(local_aws.endpoint).start()
    yield proxy
    proxy.stop()


class Runner:
    """Runs ansible-playbook as a user would, from the repository root.

    With a proxy, every AWS call of the run goes through it (AWS_ENDPOINT_URL is the proxy)."""

    def __init__(self, aws, proxy=None):
        self.aws = aws
        self.proxy = proxy

    @property
    def env(self):
        return self.aws.env_via(self.proxy.url) if self.proxy else self.aws.env

    def playbook(self, playbook, extra_vars=None, check=False, diff=False, env=None, expect_rc=0):
        cmd = [os.path.join(VENV_BIN, "ansible-playbook"), playbook]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        run_env = self.env
        run_env.update(env or {})
        proc = subprocess.run(cmd, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=600, check=False)
        if expect_rc is not None and proc.returncode != expect_rc:
            raise AssertionError("%s exited %d (expected %d)\n%s\n%s" % (
                " ".join(cmd), proc.returncode, expect_rc, proc.stdout[-6000:], proc.stderr[-3000:]))
        return proc

    in_process = False

    def module(self, module_args, module_name="rack", check=False, diff=False, env=None):
        """Run one module through a real play; return its result dict (failed or not)."""
        fd, path = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        try:
            proc = self.playbook(os.path.join(PLAYBOOKS, "module.yml"),
                                 {"module_args": module_args, "module_name": module_name, "result_file": path},
                                 check=check, diff=diff, env=env)
            with open(path, encoding="utf-8") as f:
                result = json.load(f)
        finally:
            os.unlink(path)
        result["_stdout"] = proc.stdout
        return result


@pytest.fixture(scope="session")
def runner(local_aws):
    return Runner(local_aws)


class InProcess(Runner):
    """A Runner whose `module` runs the module's public main() in this process (inprocess.py) against
    the same local AWS, over HTTP through boto3: the result `Runner.module` gives, without the
    start-up of ansible-playbook and of the module's own process. For the many option and fault
    permutations; what a user runs (the playbooks, the roles, AWX, the inventory) stays real
    ansible-playbook runs. Its `playbook` is still one."""

    in_process = True

    def module(self, module_args, module_name="rack", check=False, diff=False, env=None):
        from inprocess import run_module

        result = run_module(module_name, module_args, dict(self.env, **(env or {})), check=check, diff=diff)
        result["_stdout"] = ""
        return result


@pytest.fixture(scope="session")
def direct(local_aws):
    """Module runs in this process (InProcess), against this session's local AWS."""
    return InProcess(local_aws)


@pytest.fixture()
def shared_dir(tmp_path_factory, worker_id):
    """A directory all workers of this test session share (pytest-xdist gives each its own basetemp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if worker_id != "master" else base


@pytest.fixture()
def base(local_aws, shared_dir):
    """The fault-free baseline of the reliability tests (reliability.baseline: the account pictured
    after each step of a rack's life, and each run's AWS actions), made once a session."""
    import reliability  # here, not at the top: reliability.py imports this module

    return reliability.baseline(local_aws, shared_dir)


def live_tagged(aws, rack):
    """Every live resource still tagged as part of `rack`, as 'kind id' strings."""
    ec2 = aws.client("ec2")
    flt = [{"Name": "tag:Rack", "Values": [rack]}, {"Name": "tag:System", "Values": ["convox"]}]
    left = []
    left += ["vpc " + v["VpcId"] for v in ec2.describe_vpcs(Filters=flt)["Vpcs"]]
    left += ["subnet " + s["SubnetId"] for s in ec2.describe_subnets(Filters=flt)["Subnets"]]
    left += ["igw " + g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=flt)["InternetGateways"]]
    left += ["route-table " + r["RouteTableId"] for r in ec2.describe_route_tables(Filters=flt)["RouteTables"]]
    left += ["sg " + g["GroupId"] for g in ec2.describe_security_groups(Filters=flt)["SecurityGroups"]]
    left += ["eip " + a["AllocationId"] for a in ec2.describe_addresses(Filters=flt)["Addresses"]]
    left += ["nat " + n["NatGatewayId"] for n in ec2.describe_nat_gateways(Filters=flt)["NatGateways"]
             if n["State"] not in ("deleted",)]
    left += ["flow-log " + f["FlowLogId"] for f in ec2.describe_flow_logs(Filters=flt)["FlowLogs"]]
    left += ["launch-template " + t["LaunchTemplateId"]
             for t in ec2.describe_launch_templates(Filters=flt)["LaunchTemplates"]]
    for r in ec2.describe_instances(Filters=flt)["Reservations"]:
        left += ["instance " + i["InstanceId"] for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    asg = aws.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    left += ["asg " + g["AutoScalingGroupName"] for g in asg
             if {"Key": "Rack", "Value": rack} in [{"Key": t["Key"], "Value": t["Value"]} for t in g["Tags"]]]
    ecs = aws.client("ecs")
    for c in ecs.describe_clusters(clusters=["convox-%s" % rack], include=["TAGS"])["clusters"]:
        if c["status"] != "INACTIVE":
            left.append("cluster " + c["clusterName"])
    elb = aws.client("elbv2")
    for lb in elb.describe_load_balancers()["LoadBalancers"]:
        tags = elb.describe_tags(ResourceArns=[lb["LoadBalancerArn"]])["TagDescriptions"][0]["Tags"]
        if {"Key": "Rack", "Value": rack} in tags:
            left.append("load-balancer " + lb["LoadBalancerName"])
    iam = aws.client("iam")
    for role in iam.list_roles(PathPrefix="/convox/")["Roles"]:
        if role["RoleName"].startswith("convox-%s-" % rack):
            left.append("role " + role["RoleName"])
    for prof in iam.list_instance_profiles(PathPrefix="/convox/")["InstanceProfiles"]:
        if prof["InstanceProfileName"].startswith("convox-%s-" % rack):
            left.append("instance-profile " + prof["InstanceProfileName"])
    logs = aws.client("logs")
    left += ["log-group " + g["logGroupName"] for g in logs.describe_log_groups(
        logGroupNamePrefix="/convox/%s" % rack)["logGroups"] if g["logGroupName"] == "/convox/%s" % rack]
    s3 = aws.client("s3")
    for b in s3.list_buckets()["Buckets"]:
        # The rack's bucket convox-<rack>-<12-character digest>. Not its log bucket (that name + "-logs"): it holds
        # the rack bucket's access logs (which the local AWS delivers at once, on every request), data that an
        # uninstall without purge_data keeps; tests that purge check it themselves (test_rack_security.py).
        if b["Name"].startswith("convox-%s-" % rack) and len(b["Name"]) == len("convox-%s-" % rack) + 12:
            left.append("bucket " + b["Name"])
    return left


def put_object(aws, bucket, key, body=b"data"):
    """Put an object into a rack bucket.

    The bucket's TLS-only policy denies every request over plain HTTP, and the local AWS is
    plain HTTP (moto also ignores the policy's condition), so the test lifts the policy for
    the write and puts it back: what the rack does with the data is what is tested."""
    s3 = aws.client("s3")
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)


sys.path.insert(0, os.path.join(ROOT, ".venv", "collections"))
