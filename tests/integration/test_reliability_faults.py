"""Faults: every playbook of a rack's life, run through a proxy (scripts/aws_proxy.py) that answers
10% of AWS calls with throttling errors, 500s, 503s, slow answers and dropped connections, still
succeeds, and leaves AWS exactly as a fault-free run does: the account is pictured after each step
(every VPC, subnet, NAT gateway, elastic IP, load balancer, bucket, group, role, log group... with
its settings; see reliability.Picture) and compared with a fault-free run in another account.
With faults that never stop, a run fails within wait_timeout naming the call that kept failing.
A response lost after AWS acted (the proxy's `lost`) is tested separately: see the tests below.

The retries each run took are printed (pytest -rA, or RELIABILITY_REPORT=<file> keeps them as
JSON lines) and summarised in docs/reliability.md."""

from __future__ import annotations

import time
from collections import Counter

import boto3
import botocore
import pytest
from botocore import xform_name

import reliability as R
from conftest import REGION

SEED = 20266


# -- the proxy itself ---------------------------------------------------------------------------------------------
def _client(proxy, service, attempts=1):
    return boto3.client(service, region_name=REGION, endpoint_url=proxy.url, aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                        config=botocore.config.Config(retries={"total_max_attempts": attempts, "mode": "standard"},
                                                      connect_timeout=5, read_timeout=10))


@pytest.mark.parametrize("service,call,throttle_code", [
    ("ec2", lambda c: c.describe_vpcs(), "RequestLimitExceeded"),
    ("iam", lambda c: c.list_roles(), "Throttling"),
    ("elbv2", lambda c: c.describe_load_balancers(), "Throttling"),
    ("autoscaling", lambda c: c.describe_auto_scaling_groups(), "Throttling"),
    ("ecs", lambda c: c.list_clusters(), "TooManyRequestsException"),
    ("logs", lambda c: c.describe_log_groups(), "TooManyRequestsException"),
    ("ssm", lambda c: c.describe_parameters(), "TooManyRequestsException"),
    ("resourcegroupstaggingapi", lambda c: c.get_resources(), "ThrottledException"),
    ("s3", lambda c: c.list_buckets(), "SlowDown"),
])
def test_proxy_speaks_each_service_wire_format(local_aws, aws_proxy, service, call, throttle_code):
    """botocore reads each injected fault as the error AWS itself sends, and retries it by itself."""
    client = _client(aws_proxy, service)
    expected = {"throttle": throttle_code, "500": ("InternalFailure" if service in ("ecs", "logs", "ssm", "resourcegroupstaggingapi")
                                                   else "InternalError"), "503": "ServiceUnavailable"}
    for kind, code in expected.items():
        aws_proxy.configure(fault_rate=1.0, faults=[kind])
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(client)
        assert e.value.response["Error"]["Code"] == code, (kind, e.value.response)
    aws_proxy.configure(faults=["drop"])
    with pytest.raises((botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)):
        call(client)
    # botocore's default (legacy) retries absorb one fault of any kind
    aws_proxy.configure(fault_rate=0.0)
    for kind in ("throttle", "500", "503", "drop"):
        aws_proxy.clear()
        aws_proxy.configure(hook=lambda r, kind=kind: kind if r.seq == 1 else None)
        call(boto3.client(service, region_name=REGION, endpoint_url=aws_proxy.url, aws_access_key_id="testing",
                          aws_secret_access_key="testing"))
        assert [r.fault for r in aws_proxy.records] == [kind, None], (kind, aws_proxy.records)
        assert aws_proxy.records[0].name == aws_proxy.records[1].name
    aws_proxy.configure(hook=False)
    assert not aws_proxy.hook_errors


def test_proxy_slow_lost_head_and_records(local_aws, aws_proxy):
    s3 = _client(aws_proxy, "s3")
    s3.create_bucket(Bucket="proxy-check")
    s3.put_object(Bucket="proxy-check", Key="k", Body=b"12345")
    assert s3.head_object(Bucket="proxy-check", Key="k")["ContentLength"] == 5
    aws_proxy.configure(fault_rate=1.0, faults=["slow"], slow_seconds=(0.3, 0.3))
    started = time.monotonic()
    assert s3.get_object(Bucket="proxy-check", Key="k")["Body"].read() == b"12345"
    assert time.monotonic() - started >= 0.3
    aws_proxy.configure(faults=["lost"])
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        s3.put_object(Bucket="proxy-check", Key="lost", Body=b"acted upon")
    aws_proxy.configure(fault_rate=0.0)
    assert s3.get_object(Bucket="proxy-check", Key="lost")["Body"].read() == b"acted upon"
    names = [(r.name, r.fault, r.forwarded) for r in aws_proxy.records]
    assert names[:4] == [("s3:CreateBucket", None, True), ("s3:PutObject", None, True),
                         ("s3:HeadObject", None, True), ("s3:GetObject", "slow", True)]
    assert ("s3:PutObject", "lost", True) in names
    assert aws_proxy.records[0].access_key == "testing" and not aws_proxy.records[0].has_token
    assert aws_proxy.summary()["faults"] == {"lost": 1, "slow": 1}


# -- 10% faults over a rack's whole life --------------------------------------------------------------------------
def test_ten_percent_faults_change_nothing_but_time(local_aws, aws_proxy, base, tmp_path):
    account = R.Account(local_aws, "faults-10")
    aws_proxy.configure(fault_rate=0.10, seed=SEED, slow_seconds=(0.2, 0.6))
    driver = R.Driver(local_aws, account, aws_proxy)
    pictures = {}
    runs = R.lifecycle(driver, tmp_path, snap=lambda step: pictures.__setitem__(step, R.picture(account, [R.RACK])))

    summary = aws_proxy.summary()
    by_run = {step: {"requests": run.calls, "baseline_requests": len(base["runs"][step]["actions"]),
                     "faults": dict(sorted(Counter(r.fault for r in run.records if r.fault).items())),
                     "seconds": round(run.seconds, 1), "baseline_seconds": round(base["runs"][step]["seconds"], 1)}
              for step, run in runs.items()}
    by_action = {}
    for (action, kind), n in sorted(aws_proxy.faults_by_action().items()):
        by_action.setdefault(action, {})[kind] = n
    # A call the collection's own loop had to try again is one botocore gave up on: five faults in
    # a row on one action (its default mode makes five attempts).
    streak, longest = {}, 0
    with aws_proxy.lock:
        for r in aws_proxy.records:
            streak[r.name] = streak.get(r.name, 0) + 1 if r.fault not in (None, "slow") else 0
            longest = max(longest, streak[r.name])
    summary["longest_run_of_faults_on_one_action"] = longest
    R.report("10% faults: totals", summary)
    R.report("10% faults: by run", by_run)
    R.report("10% faults: by action", by_action)
    for step, expected in base["pictures"].items():
        R.assert_same(pictures[step], expected, "the account after %s under 10%% faults" % step)
    assert R.without_log_bucket(pictures["uninstall"].as_dict()) == {}, "uninstall left %s" % pictures["uninstall"].as_dict()
    after_install = pictures["install"]
    assert after_install.count("vpc") == 1 and after_install.count("nat_gateway") == 2
    assert after_install.count("elastic_ip") == 2 and after_install.count("load_balancer") == 1
    # the rack bucket and its log bucket (the rack bucket's S3 access logs)
    assert after_install.count("bucket") == 2 and after_install.count("autoscaling_group") == 1

    assert "rack %s is running" % R.RACK in runs["install"].stdout
    assert "Status      running" in runs["status"].stdout
    assert "local/%s" % R.RACK in runs["racks"].stdout
    assert R.listed_racks(runs["inventory"]) == {"local/%s" % R.RACK: "running"}

    assert summary["resent"] >= 0.05 * summary["requests"], "too few faults were injected to prove anything"
    assert set(summary["faults"]) == {"throttle", "500", "503", "slow", "drop"}, summary


# -- faults that never stop ------------------------------------------------------------------------------------
def test_faults_that_never_stop_fail_within_wait_timeout_naming_the_call(local_aws, aws_proxy, base):
    account = R.Account(local_aws, "faults-forever")
    wait_timeout = 12
    aws_proxy.configure(fault_rate=1.0, seed=SEED, faults=["throttle", "500", "503", "drop"],
                        match=lambda r: r.name == "ec2:CreateNatGateway")
    driver = R.Driver(local_aws, account, aws_proxy)
    run = driver.playbook("install_rack.yml", dict(R.RACK_VARS, rack=R.RACK, rack_wait_timeout=wait_timeout, **R.POLL),
                          expect_rc=2)
    attempts = [r for r in run.records if r.name == "ec2:CreateNatGateway"]
    first = min(r.started for r in run.records)
    last = max(r.started + r.seconds for r in run.records)
    R.report("faults that never stop", {"wait_timeout": wait_timeout, "attempts": len(attempts),
                                        "aws_seconds": round(last - first, 1),
                                        "playbook_seconds": round(run.seconds, 1)})
    assert "NAT gateway" in run.stdout and "create_nat_gateway" in run.stdout, run.stdout[-3000:]
    assert "wait_timeout (%ds) ran out" % wait_timeout in run.stdout, run.stdout[-3000:]
    assert not any(r.forwarded for r in attempts), "a faulted request reached AWS"
    # The module's own time, from its first call to its last: wait_timeout, and one attempt of
    # botocore's (its own retries, at most a few seconds) past it at most.
    assert last - first <= wait_timeout + 10, "the run went on %.0fs past wait_timeout" % (last - first - wait_timeout)
    assert R.picture(account).count("nat_gateway") == 0

    # The failed run is finished by a clean rerun: exactly the fault-free rack.
    aws_proxy.configure(fault_rate=0.0, match=False)
    driver.playbook("install_rack.yml", dict(R.RACK_VARS, rack=R.RACK, **R.POLL))
    R.assert_same(R.picture(account, [R.RACK]), base["pictures"]["install"], "the rack rerun after the failed install")
    driver.playbook("uninstall_rack.yml", dict(R.POLL, rack=R.RACK, rack_purge_data=True))
    assert R.picture(account).as_dict() == {}


# -- one fault on each call of the inventory ----------------------------------------------------------------------
# The 10% run faults whichever calls its seed and the threads' order give; here each call of the
# racks inventory (ansible-inventory, its reads spread over threads) meets each kind of fault in
# turn. Found by it: the proxy answered the tagging API's throttling as a query service (XML
# `Throttling`), which botocore cannot read from a JSON service, so the inventory came out empty;
# AWS answers ThrottledException in JSON, which botocore and the collection retry.
@pytest.mark.parametrize("kind", ["throttle", "503", "drop"])
def test_one_fault_on_any_inventory_call_still_lists_the_rack(local_aws, aws_proxy, tmp_path, kind):
    account = R.Account(local_aws, "inventory-" + kind)
    assert R.service_run(account, aws_proxy.url)[0] == "ok"
    driver = R.Driver(local_aws, account, aws_proxy)
    clean = driver.inventory(tmp_path, expect_rc=0)
    assert R.listed_racks(clean) == {"local/%s" % R.RACK: "running"}
    actions = sorted({r.name for r in clean.records})
    assert "tagging:GetResources" in actions and "sts:GetCallerIdentity" in actions, actions
    lost = {}
    for action in actions:
        hit = []

        def hook(record, action=action):
            if record.name == action and not hit:
                hit.append(record.seq)
                return kind
            return None
        aws_proxy.configure(hook=hook)
        run = driver.inventory(tmp_path, expect_rc=0)
        aws_proxy.configure(hook=False)
        assert hit, "the inventory did not call %s again" % action
        if R.listed_racks(run) != {"local/%s" % R.RACK: "running"}:
            lost[action] = (R.listed_racks(run), run.stderr[-600:])
    assert not lost, lost
    assert R.service_run(account, aws_proxy.url, state="absent")[0] == "ok"


# -- answers lost after AWS acted -------------------------------------------------------------------------------
# One create whose answer is lost (the proxy forwards it, AWS acts, the connection drops before
# the answer): botocore sends it again by itself. Calls with a name or a client token fail or
# return the first result. EC2 creates with neither (CreateVpc, CreateInternetGateway,
# AllocateAddress; and CreateRouteTable here, where the local AWS ignores the client token the code
# passes) make a second resource tagged as the rack's: the run still succeeds, and the next run
# keeps the one in use and deletes the duplicate (observe.resolve_duplicates, build.remove_extras).
# The contract tested: the run succeeds or fails naming the call; one rerun then converges to
# exactly the fault-free rack, its plan naming each duplicate it deleted (and its check mode
# showing the same, changing nothing); an uninstall leaves the account empty. Run in-process
# (reliability.service_run) for speed.
DUPLICATED = {"ec2:CreateVpc": "vpc", "ec2:CreateInternetGateway": "internet_gateway",
              "ec2:AllocateAddress": "elastic_ip", "ec2:CreateRouteTable": "route_table"}
# The retry of CreateSecurityGroup fails (InvalidGroup.Duplicate) naming the call; the rerun adopts
# the group. Creates by name elsewhere behave alike (IAM's EntityAlreadyExists, Logs'
# ResourceAlreadyExistsException, launch templates, subnets' CIDR conflicts).
LOST = sorted(DUPLICATED) + ["ec2:CreateSecurityGroup"]


def _lose_first(aws_proxy, action):
    lost = []

    def hook(record):
        if record.name == action and not lost:
            lost.append(record.seq)
            return "lost"
        return None
    aws_proxy.configure(hook=hook)
    return lost


def _duplicate_deletions(result):
    return sorted((c["resource"], c["name"]) for c in result["plan"]
                  if c["action"] == "delete" and "duplicate" in c.get("changes", {}).get("reason", ""))


@pytest.mark.parametrize("action", LOST)
def test_a_lost_answer_to_a_create_is_finished_by_one_rerun(local_aws, aws_proxy, base, action):
    account = R.Account(local_aws, "lost-" + action)
    lost = _lose_first(aws_proxy, action)
    first = R.service_run(account, aws_proxy.url, wait_timeout=60)
    aws_proxy.configure(hook=False)
    assert lost, "the install never called %s" % action
    if first[0] == "failed":
        assert xform_name(action.split(":")[1]) in first[1], "the failure does not name the call: " + first[1]
    after_first = R.picture(account, [R.RACK])
    duplicates = after_first.differences(base["pictures"]["install"])
    kind = DUPLICATED.get(action)
    if kind:
        # What the lost answer left: the rack, and one more of the thing whose create was sent twice.
        assert first[0] == "ok", first[1]
        # (a VPC comes with its main route table and default security group, untagged)
        own = [d for d in duplicates if d.startswith("+ %s " % kind)]
        comes_with = [d for d in duplicates if d not in own]
        assert len(own) == 1, duplicates
        with_it = ["route_table", "security_group"] if kind == "vpc" else []
        assert sorted(d.split(" ", 2)[1] for d in comes_with) == with_it, duplicates
        checked = R.service_run(account, aws_proxy.url, check_mode=True, wait_timeout=60)
        assert checked[0] == "ok", checked[1]
        assert [d[0] for d in _duplicate_deletions(checked[1])] == [kind], checked[1]["plan"]
        assert R.picture(account, [R.RACK]).as_dict() == after_first.as_dict(), "check mode changed the account"
    rerun = R.service_run(account, aws_proxy.url, wait_timeout=60)
    R.report("lost answer of %s" % action, {"first run": first[0] if first[0] == "ok" else first[1][:160],
                                            "rerun": rerun[0] if rerun[0] == "ok" else rerun[1][:160]})
    assert rerun[0] == "ok", rerun[1]
    if kind:
        assert _duplicate_deletions(rerun[1]) == _duplicate_deletions(checked[1]), rerun[1]["plan"]
    diff = R.picture(account, [R.RACK]).differences(base["pictures"]["install"])
    assert not diff, "the account after a lost answer to %s and one rerun differs:\n%s" % (action, "\n".join(diff))
    again = R.service_run(account, aws_proxy.url, wait_timeout=60)
    assert again[0] == "ok" and not again[1]["changed"], again
    gone = R.service_run(account, aws_proxy.url, state="absent", wait_timeout=60)
    assert gone[0] == "ok", gone[1]
    assert R.left(account) == {}


# An uninstall straight after the duplicate was made removes it with the rest (it used to refuse
# a rack with two VPCs).
@pytest.mark.parametrize("action", ["ec2:CreateVpc", "ec2:CreateInternetGateway"])
def test_an_uninstall_removes_the_duplicate_of_a_lost_answer(local_aws, aws_proxy, action):
    account = R.Account(local_aws, "lost-gone-" + action)
    lost = _lose_first(aws_proxy, action)
    first = R.service_run(account, aws_proxy.url, wait_timeout=60)
    aws_proxy.configure(hook=False)
    assert lost and first[0] == "ok", first
    assert len(R.picture(account, [R.RACK]).as_dict()[DUPLICATED[action]]) == 2
    gone = R.service_run(account, aws_proxy.url, state="absent", wait_timeout=60)
    assert gone[0] == "ok", gone[1]
    assert R.left(account) == {}


# Taking the run lock: AWS takes the PutParameter, its answer is lost and botocore sends it again,
# which AWS refuses (ParameterAlreadyExists). The lock then names this very run: it is ours.
def test_a_lost_answer_to_taking_the_run_lock(local_aws, aws_proxy):
    account = R.Account(local_aws, "lost-lock")
    lost = _lose_first(aws_proxy, "ssm:PutParameter")
    try:
        first = R.service_run(account, aws_proxy.url, wait_timeout=8)
    finally:
        aws_proxy.configure(hook=False)
        # In this process a lock's holder stays alive: a lock left is removed by hand (a rerun, in
        # another process, would take it over at once), and the rack uninstalled.
        ssm = account.client("ssm")
        R.ignoring(lambda: ssm.delete_parameter(Name="/convox/%s/lock" % R.RACK), "ParameterNotFound")
        gone = R.service_run(account, aws_proxy.url, state="absent", purge_data=True)
    assert lost, "the install never took the lock"
    assert gone[0] == "ok", gone[1]
    assert R.picture(account).as_dict() == {}
    assert first[0] == "ok", first[1]
