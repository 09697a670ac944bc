"""The collection's whole lifecycle, run once through the recording proxy (scripts/aws_proxy.py)
with distinctive credentials, for test_security_policy.py (which AWS actions it takes) and
test_secrets.py (what every run leaves behind).

Everything a run can write goes under one work directory: HOME, the XDG directories, TMPDIR,
ANSIBLE_HOME, ANSIBLE_LOCAL_TEMP, ANSIBLE_REMOTE_TEMP, ANSIBLE_ASYNC_DIR, ANSIBLE_LOG_PATH, the
inventory cache, ansible-runner's artifacts. The files that hand the credentials *in* (a wrapper
playbook's module_defaults, an inventory file with keys, ansible-runner's env/envvars) are kept
under ``inputs/``, apart. Async job files are deleted by the role once read (async_status
cleanup): a watcher thread copies every version of them into ``captured/`` while the runs go.

Credentials: two sets, both temporary keys of an assumed role in an account of its own
(ACCOUNT; moto keeps one world per account, so no other test sees these racks): `env`, given as
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (or AWS_SECURITY_TOKEN, as AWX
injects it), and `options`, given as the modules' access_key / secret_key / session_token through
module_defaults or in the inventory file. One run also assumes a role through the rack role's
rack_assume_role_arn, whose keys moto makes up.

The recording is made once per test session. Under pytest-xdist the first worker to need it
makes it (a file lock in the session's shared temporary directory) and the others read it back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from aws_proxy import AwsProxy  # noqa: E402  (scripts/aws_proxy.py)

REGION = "us-east-1"
ACCOUNT = "575757575757"  # an account of its own: test_awx.py uses 565656565656
PUBLIC = "secpub"        # public rack, one availability zone pair, updated in every parameter
PRIVATE = "secpriv"      # private rack (NAT gateways), high availability, uninstalled with force + purge
ASSUMED_ROLE = "arn:aws:iam::%s:role/convox-operator" % ACCOUNT
# The permissions boundary both racks' instance roles carry, as docs/policies/operator-roles.json requires:
# created once by the administrator (here straight in the local AWS, not recorded) from the shipped document.
BOUNDARY_NAME = "convox-rack-instance-boundary"
BOUNDARY = "arn:aws:iam::%s:policy/%s" % (ACCOUNT, BOUNDARY_NAME)
BOUNDARY_DOCUMENT = os.path.join(ROOT, "docs", "policies", "instance-boundary.json")


@dataclasses.dataclass
class Step:
    name: str
    argv: list
    creds: str            # env | options | awx | assumed: how the credentials were handed over
    rc: int
    stdout: str
    stderr: str
    seconds: float
    first_record: int     # proxy records [first_record, last_record) belong to this step
    last_record: int


@dataclasses.dataclass
class Lifecycle:
    work: str
    secrets: dict         # label -> value: secret keys and session tokens given to the runs
    access_keys: dict     # label -> access key id
    steps: list
    records: list         # the proxy's records, as dicts (scripts/aws_proxy.py Record)
    seconds: float
    observed: dict        # read straight from the local AWS during the lifecycle (see Recorder.observe)

    def outputs(self):
        """(where, text) of everything the runs printed."""
        for step in self.steps:
            yield "%s: stdout" % step.name, step.stdout
            yield "%s: stderr" % step.name, step.stderr

    def step(self, name):
        return [s for s in self.steps if s.name == name][0]


# -- the shared recording ------------------------------------------------------------------------------------------

def load(path):
    data = json.loads(Path(path).read_text())
    data["steps"] = [Step(**s) for s in data["steps"]]
    return Lifecycle(**data)


def shared_lifecycle(tmp_path_factory, local_aws):
    """The session's Lifecycle: recorded here, or read from the worker that recorded it (or, by hand,
    from SECURITY_LIFECYCLE_JSON: a lifecycle.json that `python security_lifecycle.py OUT` wrote)."""
    from filelock import FileLock

    if os.environ.get("SECURITY_LIFECYCLE_JSON"):
        return load(os.environ["SECURITY_LIFECYCLE_JSON"])
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER") and base.name.startswith("popen-gw"):
        base = base.parent  # pytest-<n>/: this session's directory, which its workers share
    root = base / "security-lifecycle"
    done = root / "lifecycle.json"
    with FileLock(str(base / "security-lifecycle.lock")):
        if not done.exists():
            if root.exists():
                shutil.rmtree(root)  # a recording that failed half-way
            root.mkdir()
            lifecycle = record(local_aws, str(root / "work"))
            done.write_text(json.dumps(dataclasses.asdict(lifecycle)))
    return load(done)


# -- credentials ----------------------------------------------------------------------------------------------------

def assumed_keys(local_aws, session):
    creds = local_aws.client("sts").assume_role(RoleArn=ASSUMED_ROLE, RoleSessionName=session)["Credentials"]
    return creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]


def account_client(local_aws, keys, service):
    """A client of ACCOUNT straight to the local AWS (not through the proxy: not recorded)."""
    return boto3.client(service, region_name=REGION, endpoint_url=local_aws.endpoint, aws_access_key_id=keys[0],
                        aws_secret_access_key=keys[1], aws_session_token=keys[2])


def rack_bucket(rack):
    return "convox-%s-%s" % (rack, hashlib.sha256(("%s:%s:%s" % (ACCOUNT, REGION, rack)).encode()).hexdigest()[:12])


def app_bucket(rack, app):
    seed = "%s:%s:%s:%s" % (ACCOUNT, REGION, rack, app)
    return "convox-%s-%s-%s" % (rack, app, hashlib.sha256(seed.encode()).hexdigest()[:12])


def put_object(s3, bucket, key, body=b"data"):
    """An object in a bucket whose TLS-only policy the plain-HTTP local AWS enforces without its
    condition: the policy is lifted for the write and put back (as conftest.put_object does)."""
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)


def put_image(ecr, repository):
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                           "digest": "sha256:" + "a" * 64},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                            "digest": "sha256:" + "b" * 64}]}
    ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag="v1")


# -- drift: what someone changes by hand, for the runs to repair (every repair path is an AWS action) ------

def _tags(items, key="Key", value="Value"):
    return {t[key]: t.get(value, "") for t in items or []}


def _rack_filters(rack, **tags):
    tags = dict({"System": "convox", "Rack": rack, "Type": "rack"}, **tags)
    return [{"Name": "tag:%s" % k, "Values": [v]} for k, v in tags.items()]


def drift(client, rack, apps):
    """Change rack `rack` (private by now) and its `apps` behind the collection's back."""
    ec2, elb = client("ec2"), client("elbv2")
    groups = {_tags(g["Tags"])["convox:role"]: g["GroupId"] for g in ec2.describe_security_groups(
        Filters=_rack_filters(rack))["SecurityGroups"]}
    ec2.authorize_security_group_ingress(GroupId=groups["router"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    client("iam").update_assume_role_policy(
        RoleName="convox-%s-%s-instance" % (rack, REGION), PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}))
    # An administrator's doing (the operator policy denies it): the repair puts the boundary back.
    client("iam").delete_role_permissions_boundary(RoleName="convox-%s-%s-instance" % (rack, REGION))
    nat = ec2.describe_nat_gateways(Filter=_rack_filters(rack))["NatGateways"][0]["NatGatewayId"]
    public_rt = ec2.describe_route_tables(Filters=_rack_filters(rack, **{"convox:tier": "public"}))["RouteTables"][0]
    ec2.replace_route(RouteTableId=public_rt["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    lb = elb.describe_load_balancers(Names=["convox-%s" % rack])["LoadBalancers"][0]
    private = ec2.describe_subnets(Filters=_rack_filters(rack, **{"convox:tier": "private"}))["Subnets"]
    elb.set_security_groups(LoadBalancerArn=lb["LoadBalancerArn"], SecurityGroups=list(groups.values()))
    elb.set_subnets(LoadBalancerArn=lb["LoadBalancerArn"], Subnets=[s["SubnetId"] for s in private])
    listener = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"][0]
    elb.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=[{
        "Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain"}}])
    s3 = client("s3")
    for bucket in [rack_bucket(rack)] + [app_bucket(rack, app) for app in apps]:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    for app in apps:
        client("ecr").put_image_scanning_configuration(repositoryName="convox/%s/%s" % (rack, app),
                                                       imageScanningConfiguration={"scanOnPush": False})


def before_uninstall(client, rack):
    """What an uninstall must clear besides the rack's own: a managed policy attached to its role by
    hand, a container instance registered in its cluster, an instance of its own outside its group."""
    iam, ec2 = client("iam"), client("ec2")
    policy = iam.create_policy(PolicyName="convox-%s-extra" % rack, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}))
    iam.attach_role_policy(RoleName="convox-%s-%s-instance" % (rack, REGION), PolicyArn=policy["Policy"]["Arn"])
    group = client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["convox-%s" % rack])
    instance = group["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    client("ecs").register_container_instance(cluster="convox-%s" % rack,
                                              instanceIdentityDocument=json.dumps({"instanceId": instance}))
    template = ec2.describe_launch_template_versions(LaunchTemplateName="convox-%s" % rack, Versions=["$Default"])
    subnet = ec2.describe_subnets(Filters=_rack_filters(rack))["Subnets"][0]["SubnetId"]
    tags = [{"Key": "System", "Value": "convox"}, {"Key": "Rack", "Value": rack}, {"Key": "Type", "Value": "rack"}]
    ec2.run_instances(ImageId=template["LaunchTemplateVersions"][0]["LaunchTemplateData"]["ImageId"], MinCount=1,
                      MaxCount=1, InstanceType="t3.small", SubnetId=subnet,
                      TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])


# -- watching files that do not outlive a run --------------------------------------------------------------------

class Watcher:
    """Copies every version of every file under `paths` into `dest` while the runs go (async job
    files are deleted by async_status cleanup a moment after they are written)."""

    def __init__(self, paths, dest, interval=0.05):
        self.paths, self.dest, self.interval = paths, dest, interval
        self.seen = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="security-watcher", daemon=True)

    def start(self):
        os.makedirs(self.dest, exist_ok=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self._scan()

    def _loop(self):
        while not self._stop.wait(self.interval):
            self._scan()

    def _scan(self):
        for top in self.paths:
            for dirpath, _dirs, files in os.walk(top):
                for name in files:
                    path = os.path.join(dirpath, name)
                    try:
                        with open(path, "rb") as f:
                            data = f.read()
                    except OSError:
                        continue
                    digest = hashlib.sha256(data).hexdigest()
                    if self.seen.get(path) == digest:
                        continue
                    self.seen[path] = digest
                    rel = os.path.relpath(path, os.path.dirname(top)).replace(os.sep, "__")
                    with open(os.path.join(self.dest, "%s.%s" % (rel, digest[:12])), "wb") as out:
                        out.write(data)


# -- the runs --------------------------------------------------------------------------------------------------------

def _task(title, module, args, **keywords):
    return dict({"name": title, module: args}, **keywords)


def rack_task(title, register, check=False, fails=False, **args):
    keywords = {"ignore_errors": True} if fails else {}
    return _task(title, "convox.rack.rack", args, register=register, check_mode=check, diff=True, **keywords)


def app_task(title, register, check=False, **args):
    return _task(title, "convox.rack.app", args, register=register, check_mode=check, diff=True)


def save_results(path, names):
    """A task writing the registered results `names` (failed ones too) to `path`."""
    content = "{{ {%s} | to_json }}" % ", ".join("'%s': %s" % (n, n) for n in names)
    return _task("Keep the results", "ansible.builtin.copy", {"content": content, "dest": path, "mode": "0600"},
                 check_mode=False, diff=False)


def play(name, tasks=None, roles=None, module_defaults=None):
    out = {"name": name, "hosts": "localhost", "connection": "local", "gather_facts": False}
    if module_defaults:
        out["module_defaults"] = {"group/convox.rack.aws": module_defaults}
    if roles:
        out["roles"] = roles
    if tasks:
        out["tasks"] = tasks
    return out


class Recorder:
    def __init__(self, local_aws, work):
        self.local_aws = local_aws
        self.work = work
        self.inputs = os.path.join(work, "inputs")
        self.dirs = {name: os.path.join(work, name) for name in (
            "home", "xdg-config", "xdg-cache", "xdg-data", "xdg-state", "tmp", "ansible-home", "local-temp",
            "remote-temp", "async", "inventory-cache", "results", "runner")}
        for path in list(self.dirs.values()) + [self.inputs]:
            os.makedirs(path, exist_ok=True)
        self.proxy = AwsProxy(local_aws.endpoint).start()
        self.env_keys = assumed_keys(local_aws, "security-env")
        self.opt_keys = assumed_keys(local_aws, "security-options")
        self.steps = []
        self.observed = {}

    def observe(self):
        """The public rack's instance role as installed (after the drift was repaired): its inline
        policy, trust policy, attached policies and instance profile, read back through IAM."""
        iam = account_client(self.local_aws, self.env_keys, "iam")
        name = "convox-%s-%s-instance" % (PUBLIC, REGION)
        self.observed["boundaries"] = {
            rack: iam.get_role(RoleName="convox-%s-%s-instance" % (rack, REGION))["Role"].get("PermissionsBoundary")
            for rack in (PUBLIC, PRIVATE)}
        self.observed["instance_role"] = {
            "policy_names": iam.list_role_policies(RoleName=name)["PolicyNames"],
            "policy": iam.get_role_policy(RoleName=name, PolicyName="ecs-container-instance")["PolicyDocument"],
            "trust": iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"],
            "attached": iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"],
            "profile_roles": [r["RoleName"] for r in iam.get_instance_profile(InstanceProfileName=name)[
                "InstanceProfile"]["Roles"]],
        }

    def base_env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "ANSIBLE_", "CONVOX_", "XDG_")) and k not in ("HOME", "TMPDIR")}
        d = self.dirs
        env.update(
            AWS_ENDPOINT_URL=self.proxy.url, AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION,
            AWS_ACCESS_KEY_ID=self.env_keys[0], AWS_SECRET_ACCESS_KEY=self.env_keys[1],
            AWS_SESSION_TOKEN=self.env_keys[2],
            HOME=d["home"], XDG_CONFIG_HOME=d["xdg-config"], XDG_CACHE_HOME=d["xdg-cache"],
            XDG_DATA_HOME=d["xdg-data"], XDG_STATE_HOME=d["xdg-state"], TMPDIR=d["tmp"],
            ANSIBLE_HOME=d["ansible-home"], ANSIBLE_LOCAL_TEMP=d["local-temp"], ANSIBLE_REMOTE_TEMP=d["remote-temp"],
            ANSIBLE_ASYNC_DIR=d["async"], ANSIBLE_LOG_PATH=os.path.join(self.work, "ansible.log"),
            ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0", PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
        return env

    def run(self, name, argv, creds="env", env=None, expect_rc=0, cwd=ROOT, replace_env=False):
        run_env = dict(env) if replace_env else dict(self.base_env(), **(env or {}))
        first = len(self.proxy.records)
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=cwd, env=run_env, capture_output=True, text=True, timeout=600, check=False)
        seconds = time.monotonic() - started
        self.steps.append(Step(name=name, argv=argv, creds=creds, rc=proc.returncode, stdout=proc.stdout,
                               stderr=proc.stderr, seconds=round(seconds, 2), first_record=first,
                               last_record=len(self.proxy.records)))
        if os.environ.get("SECURITY_LIFECYCLE_TRACE"):
            print("%-20s rc=%d %6.1fs calls=%d" % (name, proc.returncode, seconds, len(self.proxy.records) - first),
                  file=sys.stderr, flush=True)
        if expect_rc is not None and proc.returncode != expect_rc:
            raise AssertionError("step %s: %s exited %d (expected %d)\n%s\n%s" % (
                name, " ".join(argv), proc.returncode, expect_rc, proc.stdout[-6000:], proc.stderr[-3000:]))
        return proc

    def playbook(self, name, playbook, extra=None, flags=(), **kw):
        argv = [os.path.join(VENV_BIN, "ansible-playbook"), playbook] + list(flags)
        if extra:
            argv += ["-e", json.dumps(extra)]
        return self.run(name, argv, **kw)

    def plays(self, name, plays, flags=(), creds="options", **kw):
        """A playbook of our own; with creds="options", its convox.rack modules get the `options`
        credentials through module_defaults (the environment still has the `env` ones)."""
        if creds == "options":
            defaults = {"access_key": self.opt_keys[0], "secret_key": self.opt_keys[1],
                        "session_token": self.opt_keys[2]}
            plays = [dict(p, module_defaults={"group/convox.rack.aws": defaults}) for p in plays]
        path = os.path.join(self.inputs, "%s.yml" % name)
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(plays, f, sort_keys=False)
        return self.playbook(name, path, flags=flags, creds=creds, **kw)

    def results(self, name):
        return os.path.join(self.dirs["results"], "%s.json" % name)

    def inventory(self, name, config, flags=(), creds="env"):
        path = os.path.join(self.inputs, "%s.racks.convox.yml" % name)
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(dict({"plugin": "convox.rack.racks", "regions": [REGION], "cache": True,
                                 "cache_plugin": "ansible.builtin.jsonfile",
                                 "cache_connection": self.dirs["inventory-cache"]}, **config), f)
        return self.run(name, [os.path.join(VENV_BIN, "ansible-inventory"), "-i", path, "--list"] + list(flags),
                        creds=creds)

    def runner(self, name, playbook, extravars):
        """ansible-runner, as AWX runs a job template: keys and AWS_SECURITY_TOKEN in env/envvars."""
        private = os.path.join(self.dirs["runner"], name)
        env_dir = os.path.join(self.inputs, "runner-%s-env" % name)
        os.makedirs(os.path.join(private, "inventory"), exist_ok=True)
        os.makedirs(env_dir, exist_ok=True)
        os.symlink(env_dir, os.path.join(private, "env"))
        os.symlink(ROOT, os.path.join(private, "project"))
        with open(os.path.join(private, "inventory", "hosts"), "w", encoding="utf-8") as f:
            f.write("localhost ansible_connection=local ansible_python_interpreter=%s\n"
                    % os.path.join(VENV_BIN, "python"))
        envvars = {"AWS_ACCESS_KEY_ID": self.env_keys[0], "AWS_SECRET_ACCESS_KEY": self.env_keys[1],
                   "AWS_SECURITY_TOKEN": self.env_keys[2]}
        with open(os.path.join(env_dir, "envvars"), "w", encoding="utf-8") as f:
            yaml.safe_dump(envvars, f)
        with open(os.path.join(env_dir, "extravars"), "w", encoding="utf-8") as f:
            yaml.safe_dump(dict(extravars, awx_job_id=42), f)
        # The job's environment has the keys and AWS_SECURITY_TOKEN only, as AWX injects them.
        env = self.base_env()
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.pop(key)
        return self.run(name, [os.path.join(VENV_BIN, "ansible-runner"), "run", private, "-p", playbook, "-v"],
                        creds="awx", env=env, replace_env=True)

    def lifecycle(self):
        def pb(name):
            return os.path.join(ROOT, "playbooks", name)
        s3 = account_client(self.local_aws, self.env_keys, "s3")
        ecr = account_client(self.local_aws, self.env_keys, "ecr")
        with open(BOUNDARY_DOCUMENT, encoding="utf-8") as f:
            account_client(self.local_aws, self.env_keys, "iam").create_policy(PolicyName=BOUNDARY_NAME,
                                                                               PolicyDocument=f.read())
        # The router's certificate, requested by whoever owns the domain (not recorded: not the operator's doing).
        certificate = account_client(self.local_aws, self.env_keys, "acm").request_certificate(
            DomainName="secpub.example.com", ValidationMethod="DNS")["CertificateArn"]
        first = dict(name=PUBLIC, high_availability=False, instance_count=1, tags={"team": "platform", "owner": "ops"},
                     permissions_boundary=BOUNDARY)
        # The update also gives the router HTTPS (a listener made, the HTTP one changed) and turns flow logs off
        # (the flow log deleted); making it private takes the certificate away again (the listener deleted) and
        # turns flow logs back on.
        update = dict(name=PUBLIC, instance_type="t3.medium", instance_count=2, tags={"team": "platform", "cost": "cc-9"},
                      log_retention=14, certificate_arn=certificate, flow_logs=False)
        # 1. Modules, credentials as module options, -vvv and diffs: install (planned first, then
        #    rerun: no change), update every parameter that can change (tags dropped and added), public
        #    -> private, a private rack with high availability, apps; then what someone changed by hand
        #    (drift) repaired, an app converged to new settings, every rack read, two refusals after
        #    reading (the other reads are the playbooks' of step 2). Both racks' instance roles are
        #    created with the permissions boundary (CreateRole with PermissionsBoundary); the drift
        #    removes the public rack's, which the repair puts back (PutRolePermissionsBoundary).
        drift_cmd = [os.path.join(VENV_BIN, "python"), os.path.abspath(__file__), "drift", self.local_aws.endpoint,
                     PUBLIC, "web"]
        self.plays("modules", [play("The rack lifecycle through the modules", tasks=[
            rack_task("Plan the install", "planned", check=True, **first),
            rack_task("Install", "installed", **first),
            rack_task("Install again", "rerun", **first),
            rack_task("Update", "updated", **update),
            rack_task("Make it private", "privatised", name=PUBLIC, private=True, certificate_arn="", flow_logs=True),
            rack_task("Install a private rack with high availability", "private", name=PRIVATE, private=True,
                      high_availability=True, instance_count=3, permissions_boundary=BOUNDARY),
            app_task("Create app web", "web", name="web", rack=PUBLIC, tags={"owner": "web"}),
            app_task("Create app api", "api", name="api", rack=PUBLIC),
            app_task("Create app svc", "svc", name="svc", rack=PRIVATE),
            _task("Change things by hand (straight to the local AWS, not recorded)", "ansible.builtin.command",
                  {"argv": drift_cmd}, changed_when=False),
            rack_task("Repair the rack", "repaired", name=PUBLIC),
            app_task("Converge app web to new settings", "web_changed", name="web", rack=PUBLIC,
                     tags={"tier": "front"}, immutable_tags=False, log_retention=30),
            _task("Read every rack", "convox.rack.rack_info", {}, register="info_all"),
            rack_task("Change what cannot change", "refused", name=PUBLIC, vpc_cidr="10.9.0.0/16", fails=True),
            rack_task("Uninstall a rack with apps, without force", "refused_absent", name=PRIVATE, state="absent",
                      fails=True),
            save_results(self.results("modules"), ["planned", "installed", "rerun", "updated", "privatised",
                                                   "private", "web", "api", "svc", "repaired", "web_changed",
                                                   "info_all", "refused", "refused_absent"]),
        ])], flags=["-vvv"])
        self.observe()
        for bucket in (app_bucket(PUBLIC, "web"), app_bucket(PUBLIC, "api"), app_bucket(PRIVATE, "svc"),
                       rack_bucket(PUBLIC)):
            put_object(s3, bucket, "release/1.json")
        put_image(ecr, "convox/%s/api" % PUBLIC)
        # 2. The reading playbooks, environment credentials: status, racks, switch, apps.
        self.plays("status", [{"ansible.builtin.import_playbook": pb(name)}
                              for name in ("rack_status.yml", "racks.yml", "switch.yml", "apps.yml")],
                   flags=["-v", "-e", "rack=%s" % PUBLIC], creds="env")
        # 3. The inventory, keys in its file.
        self.inventory("inventory", {"access_key": self.opt_keys[0], "secret_key": self.opt_keys[1],
                                     "session_token": self.opt_keys[2]}, flags=["-vvv"], creds="options")
        # 4. Apps deleted: planned, kept (it holds data), purged; the role, options credentials.
        self.plays("apps-delete", [
            play("Plan deleting app web", tasks=[app_task("Plan", "web_planned", check=True, name="web", rack=PUBLIC,
                                                          state="absent"),
                                                 save_results(self.results("apps-delete"), ["web_planned"])]),
            play("Delete app web", roles=[{"role": "convox.rack.app", "vars": {
                "rack": PUBLIC, "app": "web", "app_state": "absent"}}]),
            play("Delete app api and its data", roles=[{"role": "convox.rack.app", "vars": {
                "rack": PUBLIC, "app": "api", "app_state": "absent", "app_purge_data": True}}]),
        ], flags=["--diff", "-vvv"])
        # 5. The rack role, failing after reading AWS (its async job file stays), through a role to
        #    assume (rack_assume_role_arn): keys the local AWS makes up.
        self.playbook("refused", pb("install_rack.yml"), {"rack": PUBLIC, "rack_vpc_cidr": "10.9.0.0/16"},
                      flags=["-vvv"], creds="assumed", expect_rc=2,
                      env={"CONVOX_ASSUME_ROLE_ARN": ASSUMED_ROLE, "CONVOX_ASSUME_ROLE_EXTERNAL_ID": "x-1234"})
        # 6. Uninstall planned (--check --diff), then run as AWX does (ansible-runner, AWS_SECURITY_TOKEN,
        #    the name typed again): the bucket holding data is kept.
        before_uninstall(lambda service: account_client(self.local_aws, self.env_keys, service), PUBLIC)
        self.playbook("uninstall-check", pb("uninstall_rack.yml"), {"rack": PUBLIC}, flags=["--check", "--diff", "-v"])
        # (rack_poll_interval: the role looks at the run every second, not every 15 s, once 8 s are past)
        self.runner("uninstall-awx", "playbooks/uninstall_rack.yml", {"rack": PUBLIC, "rack_confirm": PUBLIC,
                                                                      "rack_poll_interval": 1})
        # 7. Uninstall with force and purge_data: its app and every bucket go.
        self.playbook("uninstall-purge", pb("uninstall_rack.yml"),
                      {"rack": PRIVATE, "rack_force": True, "rack_purge_data": True, "rack_poll_interval": 1},
                      flags=["--diff", "-v"])


def record(local_aws, work):
    """Run the lifecycle into `work`; the Lifecycle."""
    os.makedirs(work)
    started = time.monotonic()
    recorder = Recorder(local_aws, work)
    watcher = Watcher([recorder.dirs[d] for d in ("async", "local-temp", "remote-temp")],
                      os.path.join(work, "captured")).start()
    try:
        recorder.lifecycle()
    finally:
        watcher.stop()
        recorder.proxy.stop()
    env, opt = recorder.env_keys, recorder.opt_keys
    return Lifecycle(
        work=work,
        secrets={"env secret key": env[1], "env session token": env[2],
                 "options secret key": opt[1], "options session token": opt[2]},
        access_keys={"env": env[0], "options": opt[0]},
        steps=recorder.steps,
        records=[dataclasses.asdict(r) for r in recorder.proxy.records],
        seconds=round(time.monotonic() - started, 1),
        observed=recorder.observed)


def main(argv):  # pragma: no cover - by hand
    if argv[1] == "drift":  # drift ENDPOINT RACK APP...: from a task of the lifecycle, with its credentials
        drift(lambda service: boto3.client(service, region_name=REGION, endpoint_url=argv[2]), argv[3], argv[4:])
        return
    # OUT: the whole lifecycle against a local AWS of its own, its recording in OUT/lifecycle.json
    import socket
    import urllib.request

    class _LocalAws:
        def __init__(self, port):
            self.endpoint = "http://127.0.0.1:%d" % port

        def client(self, service):
            return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint,
                                aws_access_key_id="testing", aws_secret_access_key="testing")

    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([os.path.join(VENV_BIN, "python"), os.path.join(ROOT, "scripts", "moto_server.py"),
                               "-H", "127.0.0.1", "-p", str(port)], stdout=open(out / "moto.log", "w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _attempt in range(150):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/moto-api/data.json" % port, timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        lc = record(_LocalAws(port), str(out / "work"))
        (out / "lifecycle.json").write_text(json.dumps(dataclasses.asdict(lc)))
        for s in lc.steps:
            print("%-20s rc=%d %6.1fs calls=%d" % (s.name, s.rc, s.seconds, s.last_record - s.first_record))
        print("total %.1fs" % lc.seconds)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv)
