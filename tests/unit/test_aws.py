"""Aws.call / paginate: retries, error translation, ignored codes; Deadline.

Stubber stands in for AWS here because the local emulator (moto) never throttles and never
returns transient errors (Throttling, ThrottlingException, RequestLimitExceeded, SlowDown,
InternalError): no retry can be made to happen on it. The same stubbed clients serve the
error-translation tests, where they also fix the request id the message must carry (moto's is a
constant placeholder).
"""

from __future__ import annotations

import botocore.exceptions
import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack.aws import Aws, Deadline
from ansible_collections.convox.rack.plugins.module_utils._rack.errors import AWSCallError, WaitTimeout

VPCS = {"Vpcs": [{"VpcId": "vpc-0a", "CidrBlock": "10.0.0.0/16"}]}


@pytest.mark.parametrize("service, operation, code, params, response", [
    ("ec2", "describe_vpcs", "Throttling", {}, VPCS),
    ("ec2", "describe_vpcs", "RequestLimitExceeded", {}, VPCS),
    ("s3", "get_bucket_tagging", "SlowDown", {"Bucket": "b"}, {"TagSet": [{"Key": "System", "Value": "convox"}]}),
    ("iam", "get_role", "InternalError", {"RoleName": "r"},
     {"Role": {"Path": "/", "RoleName": "r", "RoleId": "AROAEXAMPLEID12345", "Arn": "arn:aws:iam::1:role/r",
               "CreateDate": "2026-01-01T00:00:00Z"}}),
])
def test_transient_error_then_success_is_retried(stubbed, retry_sleeps, service, operation, code, params, response):
    stubbed.error(service, operation, code, status=503, params=params)
    stubbed.ok(service, operation, response, params)
    result = stubbed.aws.call(service, operation, "the resource", **params)
    assert {k: result[k] for k in response} == response
    assert len(retry_sleeps) == 1 and 0 <= retry_sleeps[0] <= 1  # jittered, first delay 1 s
    assert stubbed.ops() == ["%s:%s" % (service, operation)] * 2
    assert stubbed.aws.calls == ["%s:%s" % (service, operation)]
    stubbed.assert_all_used()


def test_throttling_that_never_stops_gives_up_after_eight_attempts(stubbed, retry_sleeps):
    for attempt in range(8):
        stubbed.error("ec2", "describe_vpcs", "Throttling", message="Rate exceeded", request_id="req-%d" % attempt)
    with pytest.raises(AWSCallError) as e:
        stubbed.aws.call("ec2", "describe_vpcs", "VPC of rack prod")
    assert e.value.code == "Throttling"
    assert e.value.msg.endswith("(request id req-7); gave up after 8 attempts"), "the last attempt's error is reported"
    assert e.value.details["attempts"] == 8
    assert len(retry_sleeps) == 7
    assert stubbed.aws.retries == 7
    stubbed.assert_all_used()


def test_retries_stop_when_the_runs_wait_timeout_runs_out(stubbed, retry_sleeps):
    """With faults that never stop, the run's deadline (wait_timeout) ends the retries, not MAX_ATTEMPTS."""
    clock = {"now": 0.0}

    def sleep(seconds):
        retry_sleeps.append(seconds)
        clock["now"] += seconds
    stubbed.aws._sleep = sleep
    stubbed.aws.deadline = Deadline(5, clock=lambda: clock["now"])
    for attempt in range(8):
        stubbed.error("ec2", "describe_vpcs", "RequestLimitExceeded", message="Request limit exceeded.",
                      request_id="req-%d" % attempt)
    with pytest.raises(AWSCallError) as e:
        stubbed.aws.call("ec2", "describe_vpcs", "VPC of rack prod")
    attempts = e.value.details["attempts"]
    assert attempts < 8, "the deadline, not the attempt limit, ended it"
    assert sum(retry_sleeps) <= 5, "no sleep goes past the deadline"
    assert e.value.msg == ("VPC of rack prod: describe_vpcs failed with RequestLimitExceeded: Request limit exceeded."
                           " (request id req-%d); gave up after %d attempts: wait_timeout (5s) ran out"
                           % (attempts - 1, attempts))


def test_error_names_resource_operation_code_and_request_id(stubbed, retry_sleeps):
    stubbed.error("ec2", "delete_vpc", "UnauthorizedOperation", message="You are not authorized",
                  request_id="7a62c49f-347e-4fc4-9331-6e8eEXAMPLE", params={"VpcId": "vpc-0a"})
    with pytest.raises(AWSCallError) as e:
        stubbed.aws.call("ec2", "delete_vpc", "VPC vpc-0a", VpcId="vpc-0a")
    err = e.value
    assert err.msg == ("VPC vpc-0a: delete_vpc failed with UnauthorizedOperation: You are not authorized"
                       " (request id 7a62c49f-347e-4fc4-9331-6e8eEXAMPLE)")
    assert err.details == {"resource": "VPC vpc-0a", "operation": "delete_vpc", "error_code": "UnauthorizedOperation",
                           "request_id": "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE"}
    assert retry_sleeps == [], "a refusal is not retried"
    stubbed.assert_all_used()


def test_s3_request_id_is_taken_from_the_amz_header(stubbed):
    stubbed.client("s3")
    stubbed.stubbers["s3"].add_client_error(
        "delete_bucket", service_error_code="BucketNotEmpty", service_message="The bucket you tried to delete is not empty",
        http_status_code=409, response_meta={"HTTPHeaders": {"x-amz-request-id": "4442587FB7D0A2F9"}})
    with pytest.raises(AWSCallError) as e:
        stubbed.aws.call("s3", "delete_bucket", "bucket convox-prod-abc", Bucket="convox-prod-abc")
    assert e.value.msg == ("bucket convox-prod-abc: delete_bucket failed with BucketNotEmpty: The bucket you tried "
                           "to delete is not empty (request id 4442587FB7D0A2F9)")


def test_ignored_code_returns_none_without_retrying(stubbed, retry_sleeps):
    stubbed.error("iam", "get_role", "NoSuchEntity", status=404, params={"RoleName": "r"})
    assert stubbed.aws.call("iam", "get_role", "IAM role r", ignore=("NoSuchEntity",), RoleName="r") is None
    assert retry_sleeps == []
    stubbed.assert_all_used()


def test_ignore_does_not_hide_other_codes(stubbed):
    stubbed.error("iam", "get_role", "AccessDenied", status=403)
    with pytest.raises(AWSCallError) as e:
        stubbed.aws.call("iam", "get_role", "IAM role r", ignore=("NoSuchEntity",), RoleName="r")
    assert e.value.code == "AccessDenied"


def test_retry_on_adds_codes_for_one_call_only(stubbed, retry_sleeps):
    stubbed.error("ec2", "delete_subnet", "DependencyViolation")
    stubbed.ok("ec2", "delete_subnet")
    stubbed.aws.call("ec2", "delete_subnet", "subnet s", retry_on=("DependencyViolation",), SubnetId="subnet-1")
    assert len(retry_sleeps) == 1
    stubbed.error("ec2", "delete_subnet", "DependencyViolation", request_id="req-dv")
    with pytest.raises(AWSCallError) as e:
        stubbed.aws.call("ec2", "delete_subnet", "subnet subnet-1", SubnetId="subnet-1")
    assert "subnet subnet-1: delete_subnet failed with DependencyViolation" in e.value.msg
    assert len(retry_sleeps) == 1
    stubbed.assert_all_used()


def test_connection_failure_becomes_an_aws_call_error():
    class Unreachable:
        def describe_vpcs(self, **kw):
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="https://ec2.us-east-1.amazonaws.com/")

    aws = Aws(lambda service: Unreachable())
    with pytest.raises(AWSCallError) as e:
        aws.call("ec2", "describe_vpcs", "VPC of rack prod")
    assert e.value.code == "EndpointConnectionError"
    assert e.value.msg.startswith("VPC of rack prod: describe_vpcs failed with EndpointConnectionError: ")
    assert "https://ec2.us-east-1.amazonaws.com/" in e.value.msg


@pytest.mark.parametrize("service, operation, params, response", [
    ("ecs", "describe_clusters", {"clusters": ["convox-prod"]}, {"clusters": []}),
    ("logs", "describe_log_groups", {"logGroupNamePrefix": "/convox/prod"}, {"logGroups": []}),
])
def test_throttling_exception_of_ecs_and_logs_is_retried(stubbed, retry_sleeps, service, operation, params, response):
    stubbed.error(service, operation, "ThrottlingException", message="Rate exceeded", status=400, params=params)
    stubbed.ok(service, operation, response, params)
    result = stubbed.aws.call(service, operation, "the resource", **params)
    assert {k: result[k] for k in response} == response
    assert len(retry_sleeps) == 1
    assert stubbed.ops() == ["%s:%s" % (service, operation)] * 2
    stubbed.assert_all_used()


def test_paginate_retries_the_whole_listing(stubbed, retry_sleeps):
    cluster = "convox-prod"
    stubbed.ok("ecs", "list_container_instances", {"containerInstanceArns": ["a", "b"], "nextToken": "t1"},
               {"cluster": cluster})
    stubbed.error("ecs", "list_container_instances", "ServiceUnavailable", status=503)
    stubbed.ok("ecs", "list_container_instances", {"containerInstanceArns": ["a", "b"], "nextToken": "t1"},
               {"cluster": cluster})
    stubbed.ok("ecs", "list_container_instances", {"containerInstanceArns": ["c"]},
               {"cluster": cluster, "nextToken": "t1"})
    out = stubbed.aws.paginate("ecs", "list_container_instances", "ECS cluster %s" % cluster, cluster=cluster)
    assert out["containerInstanceArns"] == ["a", "b", "c"], "no page lost or counted twice"
    assert len(retry_sleeps) == 1
    stubbed.assert_all_used()


def test_paginate_returns_every_page(stubbed):
    stubbed.ok("ecs", "list_container_instances", {"containerInstanceArns": ["a", "b"], "nextToken": "t1"})
    stubbed.ok("ecs", "list_container_instances", {"containerInstanceArns": ["c"]},
               {"cluster": "c1", "nextToken": "t1"})
    out = stubbed.aws.paginate("ecs", "list_container_instances", "ECS cluster c1", cluster="c1")
    assert out["containerInstanceArns"] == ["a", "b", "c"]
    assert stubbed.aws.calls == ["ecs:list_container_instances"]
    stubbed.assert_all_used()


def test_paginate_ignore_returns_none(stubbed):
    stubbed.error("ecs", "list_container_instances", "ClusterNotFoundException")
    assert stubbed.aws.paginate("ecs", "list_container_instances", "ECS cluster c1",
                                ignore=("ClusterNotFoundException",), cluster="c1") is None


# -- Deadline --------------------------------------------------------------------------------------------

def test_wait_for_returns_the_probe_result_polling_with_growing_intervals(clock):
    answers = iter([None, [], {"State": "deleted"}])
    deadline = clock.deadline(900)
    assert deadline.wait_for("NAT gateway nat-1 to be deleted", lambda: next(answers)) == {"State": "deleted"}
    assert clock.sleeps == [2.0, 3.0]


def test_wait_for_caps_the_interval(clock):
    deadline = clock.deadline(900)
    polls = []
    deadline.wait_for("x", lambda: len(polls) == 10 or polls.append(1), interval=2.0, max_interval=15.0)
    assert max(clock.sleeps) == 15.0
    assert clock.sleeps == sorted(clock.sleeps)


def test_wait_for_times_out_naming_what_it_waited_for(clock):
    deadline = clock.deadline(60)
    with pytest.raises(WaitTimeout) as e:
        deadline.wait_for("load balancer convox-prod to be deleted", lambda: False)
    assert e.value.msg == "timed out after 60s waiting for load balancer convox-prod to be deleted"
    assert e.value.details == {"waiting_for": "load balancer convox-prod to be deleted"}
    assert clock.now == 60, "it waits the whole timeout, and not a second more"


def test_wait_for_probes_once_even_when_time_is_up(clock):
    deadline = clock.deadline(10)
    clock.now = 500
    assert deadline.wait_for("x", lambda: "ready") == "ready"
    with pytest.raises(WaitTimeout):
        deadline.wait_for("y", lambda: False)
    assert clock.sleeps == []


def test_one_deadline_is_shared_by_successive_waits(clock):
    deadline = clock.deadline(30)
    polls = []
    deadline.wait_for("first", lambda: len(polls) >= 3 or polls.append(1))
    spent = clock.now
    assert spent > 0
    with pytest.raises(WaitTimeout):
        deadline.wait_for("second", lambda: False)
    assert clock.now == 30
    assert deadline.remaining() == 0
