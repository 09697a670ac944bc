"""The bulk read of a region (fleet.py) against what the full read of each rack (reading.read_rack)
says: the same `rack` dictionaries, status included, in a number of calls that does not grow with
the number of racks.

Racks are installed by the collection itself (RackService.present) into moto in-process
(mock_aws), once for the module; some are then broken, or marked as held by a run, by hand."""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest
from moto import mock_aws

from ansible_collections.convox.rack.plugins.module_utils._rack import clients as clients_module
from ansible_collections.convox.rack.plugins.module_utils._rack import fleet
from ansible_collections.convox.rack.plugins.module_utils._rack.aws import Aws, Deadline
from ansible_collections.convox.rack.plugins.module_utils._rack.errors import AWSCallError
from ansible_collections.convox.rack.plugins.module_utils._rack.naming import RackNames, system_tags
from ansible_collections.convox.rack.plugins.module_utils._rack.info import read_racks
from ansible_collections.convox.rack.plugins.module_utils._rack.record import STATUS_EXPIRES_TAG as LEASE_TAG
from ansible_collections.convox.rack.plugins.module_utils._rack.service import RackService
from ansible_collections.convox.rack.plugins.module_utils._rack.spec import RACK_ARGUMENT_SPEC

# The local AWS's fixes of moto's bugs (scripts/moto_server.py) apply to moto in-process too (tests/unit/conftest.py):
# fix 3 (PutBucketLogging's check of the target's policy crashes on a TLS-only statement), which the rack bucket's
# logging meets, and fix 9 (an ECS agent registers the instances).

ACCOUNT = "123456789012"
EAST, WEST = "us-east-1", "eu-west-1"


class Clients:
    """One boto3 session's clients, per (service, region)."""

    def __init__(self):
        self.session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
        self.clients = {}
        self.lock = threading.Lock()   # a session is not thread-safe (fleet makes some clients in its pool)

    def get(self, service, region=EAST):
        with self.lock:
            if (service, region) not in self.clients:
                self.clients[(service, region)] = self.session.client(service, region_name=region)
            return self.clients[(service, region)]

    def aws(self, region=EAST):
        return Aws(lambda service: self.get(service, region))


def install(clients, rack, region, **params):
    full = {k: v.get("default") for k, v in RACK_ARGUMENT_SPEC.items()}
    full.update(name=rack, high_availability=False, **params)
    aws = Aws(lambda service: clients.get(service, region), deadline=Deadline(full["wait_timeout"]))
    result = RackService(aws, region, full, check_mode=False).present()
    assert result["rack"]["status"] == "running", result


@pytest.fixture(scope="module")
def world():
    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        with mock_aws():
            clients = Clients()
            install(clients, "alpha", EAST)
            install(clients, "bravo", EAST, private=True, tags={"team": "web"})
            install(clients, "nolb", EAST)
            install(clients, "held", EAST)
            install(clients, "west", WEST)
            # nolb loses its load balancer; held is marked as held by an update run (lease not expired)
            elb = clients.get("elbv2")
            arn = elb.describe_load_balancers(Names=["convox-nolb"])["LoadBalancers"][0]["LoadBalancerArn"]
            elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
                {"Key": "deletion_protection.enabled", "Value": "false"}])  # AWS refuses to delete it otherwise
            elb.delete_load_balancer(LoadBalancerArn=arn)
            s3 = clients.get("s3")
            bucket = RackNames("held", EAST, ACCOUNT).bucket
            tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
            tags = [t for t in tags if t["Key"] not in ("convox:status", LEASE_TAG)]
            tags += [{"Key": "convox:status", "Value": "updating"}, {"Key": LEASE_TAG, "Value": str(int(time.time()) + 3600)}]
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
            # ... and that run holds the rack's run lock, from another host (a rack reads `updating` only
            # while a run holds its lock: holder.py)
            clients.get("ssm").put_parameter(Name="/convox/held/lock", Type="String", Value=json.dumps({
                "run": "r1", "host": "build-2.example", "pid": 4242, "operation": "install or update of rack held",
                "since": int(time.time()), "expires": int(time.time()) + 3600, "step": "updating load balancer"}))
            # west has a duplicate VPC and internet gateway, as a create sent twice leaves them
            # (parts/duplicates.py): empty, tagged as the rack's, listed after the real ones
            ec2 = clients.get("ec2", WEST)
            spec = [{"Key": k, "Value": v} for k, v in system_tags("west").items()]
            clients.west_duplicates = (
                ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": spec}]
                               )["Vpc"]["VpcId"],
                ec2.create_internet_gateway(TagSpecifications=[{"ResourceType": "internet-gateway", "Tags": spec}]
                                            )["InternetGateway"]["InternetGatewayId"])
            # an app of alpha
            clients.get("logs").create_log_group(logGroupName="/convox/alpha/apps/web", tags=system_tags("alpha", "app", "web"))
            yield clients


def test_bulk_read_equals_full_read(world):
    """Every key of every rack as the full read gives it (the listener aside: not read in bulk)."""
    for region in (EAST, WEST):
        bulk = fleet.read_regions(world.aws, [region], ACCOUNT)[region]
        assert bulk["error"] is None and bulk["warnings"] == []
        full = read_racks(world.aws(region), region)
        assert [r["name"] for r in bulk["racks"]] == [r["name"] for r in full]
        for got, want in zip(bulk["racks"], full):
            # Not read in bulk (a call per rack): the load balancer's attributes and listeners, the VPC's flow log.
            for key in ("access_logs", "deletion_protection", "listeners"):
                has_lb = want["load_balancer"]["arn"] is not None
                assert got["load_balancer"].pop(key) is None and (want["load_balancer"].pop(key) is not None) == has_lb
            assert got.pop("flow_log_id") is None and want.pop("flow_log_id"), got["name"]
            assert got == want, got["name"]


def test_statuses_and_missing_parts(world):
    racks = {r["name"]: r for r in fleet.read_regions(world.aws, [EAST], ACCOUNT)[EAST]["racks"]}
    assert sorted(racks) == ["alpha", "bravo", "held", "nolb"]
    assert racks["alpha"]["status"] == "running" and racks["alpha"]["apps"] == ["web"]
    assert racks["bravo"]["tags"] == {"team": "web"} and len(racks["bravo"]["private_subnet_ids"]) == 2
    assert racks["held"]["status"] == "updating"
    assert racks["nolb"]["status"] == "failed"
    assert racks["nolb"]["missing"] == ["listener", "load_balancer"]
    assert racks["alpha"]["instances"] == {"desired": 1, "in_service": 1, "registered": 1}
    assert racks["alpha"]["load_balancer"]["dns_name"].startswith("convox-alpha-")


def test_a_duplicate_vpc_and_gateway_do_not_fail_the_rack(world):
    """The VPC holding the subnets is the rack's, whatever the order AWS lists them in."""
    rack = fleet.read_regions(world.aws, [WEST], ACCOUNT)[WEST]["racks"][0]
    assert rack["status"] == "running" and rack["missing"] == [], rack
    assert rack["vpc_id"] not in world.west_duplicates
    subnets = world.get("ec2", WEST).describe_subnets(SubnetIds=rack["public_subnet_ids"])["Subnets"]
    assert {s["VpcId"] for s in subnets} == {rack["vpc_id"]}


def test_calls_do_not_grow_with_racks(world):
    """Two regions, one of four racks (one private) and one of one: the same calls in each, but
    the NAT gateways, read only where a rack is private; IAM once."""
    awss = {region: world.aws(region) for region in (EAST, WEST)}
    results = fleet.read_regions(awss.get, [EAST, WEST], ACCOUNT)
    assert len(results[EAST]["racks"]) == 4 and len(results[WEST]["racks"]) == 1
    east = sorted(c for c in awss[EAST].calls if not c.startswith("iam:"))
    west = sorted(c for c in awss[WEST].calls)
    # west's rack has a duplicate VPC: two EC2 reads of its own say which VPC is the rack's; east's rack
    # `held` records a run at work: the region's run locks are read (one call for up to ten such racks)
    duplicated = ["ec2:describe_internet_gateways", "ec2:describe_subnets"]
    assert sorted(east + duplicated) == sorted(west + ["ec2:describe_nat_gateways", "ssm:get_parameters"])
    assert west == ["autoscaling:describe_auto_scaling_groups"] + duplicated + [
        "ecs:describe_capacity_providers", "ecs:describe_clusters", "elbv2:describe_load_balancers", "kms:list_aliases",
        "logs:describe_log_groups", "resourcegroupstaggingapi:get_resources"]
    assert [c for c in awss[EAST].calls if c.startswith("iam:")] == ["iam:list_instance_profiles"]


def test_one_rack_by_name(world):
    read = fleet.read_regions(world.aws, [EAST], ACCOUNT, name="bravo")[EAST]
    assert [r["name"] for r in read["racks"]] == ["bravo"]


def test_buckets_not_ours_are_not_racks(world):
    """Tagged as a rack, but under a name not derived for this account and region, or recorded as
    uninstalled, or with a rack name that is not one: not listed."""
    s3 = world.get("s3")
    tags = [{"Key": k, "Value": v} for k, v in system_tags("stray").items()]
    s3.create_bucket(Bucket="convox-stray-000000000000")
    s3.put_bucket_tagging(Bucket="convox-stray-000000000000", Tagging={"TagSet": tags})
    gone = RackNames("gone", EAST, ACCOUNT).bucket
    s3.create_bucket(Bucket=gone)
    s3.put_bucket_tagging(Bucket=gone, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in system_tags("gone").items()]
                                                + [{"Key": "convox:status", "Value": "uninstalled"}]})
    s3.create_bucket(Bucket="convox-template-0000")
    s3.put_bucket_tagging(Bucket="convox-template-0000", Tagging={"TagSet": [
        {"Key": "System", "Value": "convox"}, {"Key": "Type", "Value": "rack"}, {"Key": "Rack", "Value": "{{ 7 * 7 }}"}]})
    names = [r["name"] for r in fleet.read_regions(world.aws, [EAST], ACCOUNT)[EAST]["racks"]]
    assert names == ["alpha", "bravo", "held", "nolb"]


class FailingAws(Aws):
    """Calls to the given services fail as in a region the account has not opted in to."""

    def __init__(self, factory, services, code="AuthFailure"):
        super().__init__(factory)
        self.services = services
        self.code = code

    def call(self, service, operation, resource, **kwargs):
        if service in self.services:
            raise AWSCallError(resource, operation, self.code, "not for you", "req-1")
        return super().call(service, operation, resource, **kwargs)

    def paginate(self, service, operation, resource, **kwargs):
        if service in self.services:
            raise AWSCallError(resource, operation, self.code, "not for you", "req-1")
        return super().paginate(service, operation, resource, **kwargs)


def test_a_region_that_fails_does_not_stop_the_others(world):
    west = FailingAws(lambda service: world.get(service, WEST), fleet.FLEET_SERVICES)
    east = world.aws(EAST)
    results = fleet.read_regions({EAST: east, WEST: west}.get, [EAST, WEST], ACCOUNT)
    assert len(results[EAST]["racks"]) == 4 and results[EAST]["error"] is None
    assert results[WEST]["racks"] == [] and "AuthFailure" in results[WEST]["error"]


def test_parts_that_cannot_be_read_leave_the_status_unknown(world):
    """The racks are listed (their buckets could be read), but not their Auto Scaling groups: unknown, not failed."""
    aws = FailingAws(lambda service: world.get(service, EAST), ("autoscaling",), code="AccessDenied")
    read = fleet.read_regions(lambda region: aws, [EAST], ACCOUNT)[EAST]
    assert read["error"] is None
    assert {r["name"]: (r["status"], r["missing"]) for r in read["racks"]} == {
        name: ("unknown", []) for name in ("alpha", "bravo", "held", "nolb")}
    assert len(read["warnings"]) == 1 and "AccessDenied" in read["warnings"][0]
    assert read["warnings"][0].endswith("status unknown")


class NoIamAws(Aws):
    def paginate(self, service, operation, resource, ignore=(), **kwargs):
        if service == "iam":
            if "AccessDenied" in ignore:
                return None
            raise AWSCallError(resource, operation, "AccessDenied", "no", "req-2")
        return super().paginate(service, operation, resource, ignore=ignore, **kwargs)


def test_iam_denied_is_a_warning(world):
    aws = NoIamAws(lambda service: world.get(service, EAST))
    read = fleet.read_regions(lambda region: aws, [EAST], ACCOUNT)[EAST]
    assert read["error"] is None and read["warnings"] == [fleet.IAM_WARNING]
    assert {r["name"]: r["status"] for r in read["racks"]}["alpha"] == "running"


def test_source_local_and_named(world):
    aws = world.aws(EAST)
    source = fleet.read_source(aws)
    assert source["account_id"] == ACCOUNT and source["local"] is False
    assert source["name"] == ACCOUNT          # no alias yet: the account id
    world.get("iam").create_account_alias(AccountAlias="acme")
    assert fleet.read_source(world.aws(EAST))["name"] == "acme"
    assert fleet.read_source(world.aws(EAST), name="ops")["name"] == "ops"


@pytest.mark.parametrize("url, loopback", [
    ("http://127.0.0.1:4566", True), ("http://127.9.9.9", True), ("http://localhost:5000/", True),
    ("http://[::1]:4566", True), ("https://sts.amazonaws.com", False), ("http://10.0.0.1:4566", False),
    (None, False), ("", False),
])
def test_is_loopback(url, loopback):
    assert fleet.is_loopback(url) is loopback


def test_session_clients_share_one_session():
    params = {"aws_access_key_id": "a", "aws_secret_access_key": "b", "verify": True}
    clients = clients_module.SessionClients(EAST, "http://127.0.0.1:1", params)
    assert clients.client("ec2") is clients.client("ec2", EAST)
    assert clients.client("ec2", WEST).meta.region_name == WEST
    assert clients.client("ec2").meta.endpoint_url == "http://127.0.0.1:1"
    assert "convox.rack/" in clients.client("ec2").meta.config.user_agent_extra


def test_the_launch_template_is_the_one_the_group_names(world):
    """A documented shortcut of the bulk read: the launch template the Auto Scaling group names
    stands for the template (describing launch templates would cost a third of a region's read on
    the local AWS). A template deleted by hand is seen by the full read only."""
    region = "us-west-2"
    install(world, "ltless", region)
    ec2 = world.get("ec2", region)
    ec2.delete_launch_template(LaunchTemplateName="convox-ltless")
    bulk = fleet.read_regions(world.aws, [region], ACCOUNT)[region]["racks"]
    assert [(r["name"], r["status"]) for r in bulk] == [("ltless", "running")]
    full = read_racks(world.aws(region), region)
    assert full[0]["status"] == "failed" and full[0]["missing"] == ["launch_template"]


class LaggingTagging(Aws):
    """The Resource Groups Tagging API as AWS documents it (GetResources is eventually consistent:
    "it can take several minutes" for a change to show, Resource Groups Tagging API reference):
    the rack `alpha`, just installed, is not listed yet; the rack `gone`, just uninstalled (its
    bucket deleted), is listed still. moto's listing is always current, so the lag is made here."""

    def paginate(self, service, operation, resource, **kwargs):
        found = super().paginate(service, operation, resource, **kwargs)
        if service != "resourcegroupstaggingapi":
            return found
        listed = [r for r in found["ResourceTagMappingList"]
                  if {"Key": "Rack", "Value": "alpha"} not in r.get("Tags", [])]
        ghost = RackNames("gone", EAST, ACCOUNT).bucket
        listed.append({"ResourceARN": "arn:aws:s3:::%s" % ghost, "Tags": [
            # its bucket's last tags: the uninstall's own mark, believed for a while yet
            {"Key": k, "Value": v} for k, v in dict(system_tags("gone"), **{
                "convox:status": "uninstalling", LEASE_TAG: str(int(time.time()) + 3600)}).items()]})
        return dict(found, ResourceTagMappingList=listed)


def test_racks_are_listed_as_they_are_whatever_the_tagging_api_lags(world):
    """Issue 12 fault 8: right after an install the rack was missing (or read failed), right after an
    uninstall a ghost lingered."""
    aws = LaggingTagging(lambda service: world.get(service, EAST))
    read = fleet.read_regions(lambda region: aws, [EAST], ACCOUNT)[EAST]
    full = {r["name"]: r for r in read_racks(world.aws(EAST), EAST)}
    assert read["error"] is None and [r["name"] for r in read["racks"]] == sorted(full)
    assert read["racks"][0] == full["alpha"], "the rack not listed yet is read in full"
    assert "gone" not in [r["name"] for r in read["racks"]]
