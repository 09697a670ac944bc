"""A realism mode for the local AWS: moto answering in AWS's time, with AWS's transient refusals.

moto does everything at once: a NAT gateway is `available` the moment it is created, a load
balancer `active` at its first describe, an Auto Scaling group's instances `InService` as they
launch, a deleted group gone before DeleteAutoScalingGroup answers. Code that is wrong about AWS's
time (no wait, a wait on the wrong state, no retry of an eventual-consistency error) therefore
passes against moto and fails on AWS. In realism mode the server behaves as AWS does in time, with
every timing multiplied by one `scale` (a test runs at 1/20 of AWS's time, a benchmark at 1 or 1/2).

It is OFF by default: nothing below changes an answer until it is switched on, per server,

  * at run time:  POST /moto-api/realism  {"enabled": true, "scale": 0.05, "timings": {...}}
                  GET  /moto-api/realism  (the settings in force)
                  POST /moto-api/realism  {"enabled": false}
  * at start:     MOTO_REALISM='{"scale": 0.05}' (a JSON object of the same settings; "1" = defaults)

POST /moto-api/reset forgets what the mode tracks (its timers), not its settings.

What is modelled (timings in seconds of AWS's time, before `scale`; each names its source):

  latency             every AWS call answers this much later
  nat_pending         CreateNatGateway: `pending`, then `available`
  nat_deleting        DeleteNatGateway: `deleting`, then `deleted`
  lb_provisioning     CreateLoadBalancer (elbv2): `provisioning`, then `active`
  instance_pending    an Auto Scaling group's new instance: `Pending`, then `InService`
  agent_registration  an instance in service: its ECS agent registers it in the cluster this much
                      later (the agent itself is scripts/moto_server.py's fix 9, on in every mode)
  asg_delete          DeleteAutoScalingGroup: Status `Delete in progress`, instances `Terminating`,
                      then the group is gone
  lb_eni_linger       after DeleteLoadBalancer its network interfaces stay: DependencyViolation on
                      DeleteSubnet, DeleteSecurityGroup and DeleteVpc of what it used
  profile_propagation CreateInstanceProfile: refused by Auto Scaling and EC2 (ValidationError /
                      InvalidParameterValue "... Invalid IAM Instance Profile ...")
  s3_consistency      CreateBucket: the bucket answers NoSuchBucket to other calls
  ec2_consistency     an EC2 create: the new id answers Invalid*.NotFound to other calls
  tagging_lag         the Resource Groups Tagging API shows creates, tag changes and deletes late
  bucket_policy_propagation
                      PutBucketPolicy: Elastic Load Balancing's check of the access logs' bucket
                      (ModifyLoadBalancerAttributes) refuses it for a while; and always refuses a
                      bucket whose policy does not let Elastic Load Balancing write the logs
  ecs_managed_tag     (on/off) CreateCapacityProvider adds the tag AmazonECSManaged to its group
  failed_launches     (on/off) a launch whose image's architecture the instance type cannot run
                      fails: no instance, a Failed scaling activity with AWS's StatusMessage

Only the standard library and moto are used; scripts/moto_server.py calls install() before it
starts moto's server.
"""

from __future__ import annotations

import datetime
import fnmatch
import io
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aws_proxy import identify  # noqa: E402  (scripts/aws_proxy.py: which service and action a request is)

# AWS's own times, in seconds (FIELD-NOTES section 2, and the sources named at each behaviour).
DEFAULT_TIMINGS = {
    "latency": 0.1,
    "nat_pending": 120.0,
    "nat_deleting": 60.0,
    "lb_provisioning": 180.0,
    "instance_pending": 90.0,
    # the agent starts after the instance boots and cloud-init writes /etc/ecs/ecs.config (ECS Developer
    # Guide, "Amazon ECS container agent"); tens of seconds after the group counts the instance in service
    "agent_registration": 30.0,
    "asg_delete": 120.0,
    "lb_eni_linger": 300.0,
    "profile_propagation": 15.0,
    "s3_consistency": 3.0,
    "ec2_consistency": 3.0,
    "tagging_lag": 120.0,
    # hashicorp/terraform-provider-aws#12010: after the bucket policy was written, 30 s were not enough
    # for ModifyLoadBalancerAttributes to accept the bucket, 60 s were
    "bucket_policy_propagation": 45.0,
    # AWS KMS developer guide, "AWS KMS eventual consistency": "typically ... less than a few seconds"
    "kms_consistency": 5.0,
}
DEFAULT_SWITCHES = {"ecs_managed_tag": True, "failed_launches": True, "log_delivery_policy": True}


class Realism:
    """The settings and the timers of the mode; one per server process."""

    def __init__(self):
        self.lock = threading.RLock()
        self.enabled = False
        self.scale = 1.0
        self.timings = dict(DEFAULT_TIMINGS)
        self.switches = dict(DEFAULT_SWITCHES)
        self.forget()

    def forget(self):
        with self.lock:
            self.due = []                 # [(monotonic time, callable)]: state changes to make
            self.fresh_ec2 = {}           # EC2 id -> time after which other calls see it
            self.fresh_buckets = {}       # bucket -> time after which it answers
            self.fresh_policies = {}      # bucket -> time after which Elastic Load Balancing sees its policy
            self.fresh_profiles = {}      # (account, profile name) -> time after which EC2 sees it
            self.fresh_keys = {}          # KMS key id or ARN -> time after which KMS and CloudWatch Logs see it
            self.lingering = {}           # subnet/sg/vpc id -> (until, load balancer name)
            self.activities = {}          # (account, region, group) -> [scaling activity dicts]
            self.tag_history = {}         # (account, region) -> {arn: [(time, tags or None, type)]}
            self.tag_snapshot = {}        # (account, region, service) -> {arn: (tags, type, extra)}

    # -- settings -------------------------------------------------------------------------------
    def configure(self, settings):
        unknown = set(settings) - {"enabled", "scale", "timings"} - set(DEFAULT_SWITCHES)
        unknown |= set(settings.get("timings") or {}) - set(DEFAULT_TIMINGS)
        if unknown:
            raise ValueError("unknown realism settings: %s" % ", ".join(sorted(unknown)))
        with self.lock:
            if settings.get("enabled", True) and not self.enabled:
                self.forget()
            self.enabled = bool(settings.get("enabled", True))
            if "scale" in settings:
                if float(settings["scale"]) <= 0:
                    raise ValueError("scale must be positive")
                self.scale = float(settings["scale"])
            self.timings = dict(DEFAULT_TIMINGS, **{k: float(v) for k, v in (settings.get("timings") or {}).items()})
            for name, default in DEFAULT_SWITCHES.items():
                self.switches[name] = bool(settings.get(name, default))
        return self.settings()

    def settings(self):
        return {"enabled": self.enabled, "scale": self.scale, "timings": self.timings, **self.switches}

    def seconds(self, name):
        """A timing, scaled."""
        return self.timings[name] * self.scale

    def on(self, switch=None):
        return self.enabled and (switch is None or self.switches[switch])

    # -- timers ---------------------------------------------------------------------------------
    def after(self, name, fn):
        """Run fn() once `name` (scaled) has passed (at the next request, or at once when 0)."""
        with self.lock:
            self.due.append((time.monotonic() + self.seconds(name), fn))

    def tick(self):
        now = time.monotonic()
        with self.lock:
            ready = [fn for at, fn in self.due if at <= now]
            self.due = [(at, fn) for at, fn in self.due if at > now]
        for fn in ready:
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - a state change must never fail the request that ran it
                print("realism: a timed state change failed: %r" % e, file=sys.stderr)


REALISM = Realism()


def _now():
    return time.monotonic()


# --- answers in AWS's wire formats ------------------------------------------------------------
QUERY_SERVICES = {"autoscaling", "iam", "elasticloadbalancing", "sts", "cloudformation", "rds", "sns", "sqs"}


def error_answer(service, code, message, status=400, extra=""):
    """(status, headers, body) of an AWS error answer, as the service's protocol writes it."""
    request_id = str(uuid.uuid4())
    if service == "ec2":
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>%s</Code>"
                "<Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>"
                % (code, _xml(message), request_id))
        ctype = "text/xml;charset=UTF-8"
    elif service == "s3":
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message>%s"
                "<RequestId>%s</RequestId></Error>" % (code, _xml(message), extra, request_id))
        ctype = "application/xml"
    elif service in QUERY_SERVICES:
        body = ("<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
                "<RequestId>%s</RequestId></ErrorResponse>" % (code, _xml(message), request_id))
        ctype = "text/xml"
    else:
        body = json.dumps({"__type": code, "message": message})
        ctype = "application/x-amz-json-1.1"
    body = body.encode()
    return status, [("Content-Type", ctype), ("x-amzn-RequestId", request_id), ("x-amz-request-id", request_id),
                    ("Content-Length", str(len(body)))], body


def _xml(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- EC2 eventual consistency -----------------------------------------------------------------
# "If you run a command to modify or describe the resource immediately after you create it, its ID
# might not have propagated throughout the system, and you will get an error responding that the
# resource does not exist." -- Amazon EC2 Developer Guide, "Eventual consistency in the Amazon EC2
# API" (https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html).
# terraform-provider-aws retries reads and follow-up calls after each create on these codes for
# ec2PropagationTimeout (internal/service/ec2/errors.go: errCodeInvalidVPCIDNotFound, ...).
CREATED_ID = {  # create action -> the element of its answer holding the new id
    "CreateVpc": "vpcId", "CreateSubnet": "subnetId", "CreateInternetGateway": "internetGatewayId",
    "CreateRouteTable": "routeTableId", "CreateSecurityGroup": "groupId", "AllocateAddress": "allocationId",
    "CreateNatGateway": "natGatewayId", "CreateLaunchTemplate": "launchTemplateId",
}
# id prefix -> (error code, message format), as EC2 sends them.
NOT_FOUND = {
    "vpc-": ("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist"),
    "subnet-": ("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist"),
    "igw-": ("InvalidInternetGatewayID.NotFound", "The internetGateway ID '%s' does not exist"),
    "rtb-": ("InvalidRouteTableID.NotFound", "The routeTable ID '%s' does not exist"),
    "sg-": ("InvalidGroup.NotFound", "The security group '%s' does not exist"),
    "eipalloc-": ("InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist"),
    "nat-": ("NatGatewayNotFound", "The Nat Gateway %s was not found"),
    "lt-": ("InvalidLaunchTemplateId.NotFound",
            "The specified launch template, with template ID %s, does not exist."),
}
# Parameters that never name an existing resource (filters match nothing yet rather than fail).
_NOT_REFERENCES = re.compile(r"^(Action|Version|Filter|TagSpecification|ClientToken|Description|DryRun)")


def _ec2_not_found(action, form):
    now = _now()
    with REALISM.lock:
        fresh = {k: v for k, v in REALISM.fresh_ec2.items() if v > now}
        REALISM.fresh_ec2 = fresh
    if not fresh:
        return None
    for key, values in form.items():
        if _NOT_REFERENCES.match(key):
            continue
        for value in values:
            if value in fresh:
                for prefix, (code, message) in NOT_FOUND.items():
                    if value.startswith(prefix):
                        return error_answer("ec2", code, message % value)
    return None


def _remember_ec2_create(action, answer):
    element = CREATED_ID.get(action)
    if not element:
        return
    match = re.search(r"<%s>([^<]+)</%s>" % (element, element), answer.decode("utf-8", "replace"))
    if match:
        with REALISM.lock:
            REALISM.fresh_ec2[match.group(1)] = _now() + REALISM.seconds("ec2_consistency")


# --- S3: a new bucket answers NoSuchBucket for a moment -------------------------------------------
# terraform-provider-aws internal/service/s3/bucket.go: after CreateBucket it retries while S3 answers
# NoSuchBucket (tfresource.RetryWhenNotFound, bucketPropagationTimeout = 2 min), and every
# aws_s3_bucket_* resource retries errCodeNoSuchBucket for that time; the S3 User Guide, "Amazon S3
# data consistency model": bucket configurations are eventually consistent.
def _s3_bucket(path):
    return urllib.parse.unquote(path.lstrip("/").split("/", 1)[0])


def _s3_no_such_bucket(action, path):
    bucket = _s3_bucket(path)
    with REALISM.lock:
        until = REALISM.fresh_buckets.get(bucket)
    if not bucket or action == "CreateBucket" or until is None or until <= _now():
        return None
    return error_answer("s3", "NoSuchBucket", "The specified bucket does not exist", status=404,
                        extra="<BucketName>%s</BucketName>" % _xml(bucket))


# --- load balancer network interfaces linger after DeleteLoadBalancer ---------------------------------
# An ALB's network interfaces (description "ELB app/<name>/<id>") are released minutes after
# DeleteLoadBalancer: until then DeleteSubnet and DeleteSecurityGroup answer DependencyViolation.
# Sources: Elastic Load Balancing User Guide, "Delete an Application Load Balancer" (the network
# interfaces are deleted asynchronously); terraform-provider-aws internal/service/elbv2/load_balancer.go
# (cleanupALBNetworkInterfaces / waitForALBNetworkInterfacesToDetach after delete) and
# internal/service/ec2/vpc_subnet.go, vpc_security_group.go (retry DependencyViolation on delete).
LINGER_MESSAGES = {
    "DeleteSubnet": ("SubnetId", "The subnet '%s' has dependencies and cannot be deleted."),
    "DeleteSecurityGroup": ("GroupId", "resource %s has a dependent object"),
    "DeleteVpc": ("VpcId", "The vpc '%s' has dependencies and cannot be deleted."),
}


def _lingering(action, form):
    if action not in LINGER_MESSAGES:
        return None
    key, message = LINGER_MESSAGES[action]
    target = (form.get(key) or [""])[0]
    with REALISM.lock:
        until = REALISM.lingering.get(target, (0, None))[0]
    if until > _now():
        return error_answer("ec2", "DependencyViolation", message % target)
    return None


# --- Elastic Load Balancing's check of the access logs' bucket ------------------------------------------
# ModifyLoadBalancerAttributes turning access logs on makes Elastic Load Balancing check that it may
# write to the bucket, under <prefix>/AWSLogs/<account>/ ("Enable access logs for your Application Load
# Balancer", step 2: the bucket policy lets its account of the Region, or in newer Regions the service
# logdelivery.elasticloadbalancing.amazonaws.com, s3:PutObject there). It refuses with
# InvalidConfigurationRequest "Access Denied for bucket: <bucket>. Please check S3bucket permission"
# when the policy does not, and for a while after the policy was written (hashicorp/terraform-provider-aws
# #12010). Conditions of a statement are not evaluated (taken as met); Deny statements are not read
# (the rack's only one denies requests without TLS, and Elastic Load Balancing writes with TLS).
ELB_LOG_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"


def _listed(value):
    return [value] if isinstance(value, str) else list(value or [])


def _elb_may_write(policy_text, bucket, key, account):
    """Whether the bucket policy lets Elastic Load Balancing PutObject the key."""
    try:
        doc = json.loads(policy_text or "{}")
    except ValueError:
        return False
    statements = doc.get("Statement")
    for statement in statements if isinstance(statements, list) else [statements or {}]:
        if statement.get("Effect") != "Allow":
            continue
        if not any(fnmatch.fnmatchcase("s3:PutObject", a) for a in _listed(statement.get("Action"))):
            continue
        principal = statement.get("Principal") or {}
        principal = {} if principal == "*" else principal
        elb = ELB_LOG_SERVICE in _listed(principal.get("Service")) or any(
            re.match(r"^arn:[\w-]+:iam::\d{12}:root$", p) and (":%s:" % account) not in p
            for p in _listed(principal.get("AWS")))
        if elb and any(fnmatch.fnmatchcase("arn:aws:s3:::%s/%s" % (bucket, key), r) for r in _listed(statement.get("Resource"))):
            return True
    return False


def _elb_bucket_refusal(action, form, account):
    if action != "ModifyLoadBalancerAttributes":
        return None
    attributes, index = {}, 1
    while "Attributes.member.%d.Key" % index in form:
        attributes[form["Attributes.member.%d.Key" % index][0]] = (form.get("Attributes.member.%d.Value" % index) or [""])[0]
        index += 1
    if attributes.get("access_logs.s3.enabled") != "true" or not attributes.get("access_logs.s3.bucket"):
        return None
    bucket, prefix = attributes["access_logs.s3.bucket"], attributes.get("access_logs.s3.prefix", "")
    with REALISM.lock:
        fresh = REALISM.fresh_policies.get(bucket, 0) > _now()
    if not fresh:
        from moto.s3.models import s3_backends
        try:
            policy = s3_backends[account]["aws"].get_bucket(bucket).policy
        except Exception:  # noqa: BLE001 - no such bucket: AWS answers the same refusal
            policy = None
        key = "%sAWSLogs/%s/ELBAccessLogTestFile" % (prefix + "/" if prefix else "", account)
        text = policy.decode("utf-8", "replace") if isinstance(policy, bytes) else policy
        if _elb_may_write(text, bucket, key, account):
            return None
    return error_answer("elasticloadbalancing", "InvalidConfigurationRequest",
                        "Access Denied for bucket: %s. Please check S3bucket permission" % bucket)


# --- KMS: a key just made ------------------------------------------------------------------------
# AWS KMS developer guide, "AWS KMS eventual consistency" (docs.aws.amazon.com/kms/latest/developerguide/
# programming-eventual-consistency.html): "You might get unexpected errors, such as a NotFoundException ...
# For example, AWS KMS might return a NotFoundException if you call GetParametersForImport immediately after
# calling CreateKey." CloudWatch Logs, given such a key (CreateLogGroup kmsKeyId, AssociateKmsKey), answers as
# for a key it may not use: AccessDeniedException "The specified KMS key does not exist or is not allowed to be
# used with Arn '<log group ARN>'" (the words of hashicorp/terraform-provider-aws#29282).
def _json_body(body):
    try:
        return json.loads(body.decode("utf-8")) if body else {}
    except ValueError:
        return {}


def _fresh_key(key):
    with REALISM.lock:
        return bool(key) and REALISM.fresh_keys.get(key, 0) > _now()


def _kms_refusal(service, action, body, account, region):
    params = _json_body(body)
    if service == "kms" and action != "CreateKey":
        key = params.get("KeyId") or params.get("TargetKeyId")
        if _fresh_key(key):
            return error_answer("kms", "NotFoundException", "Key '%s' does not exist" % key)
    elif service == "logs" and action in ("CreateLogGroup", "AssociateKmsKey") and _fresh_key(params.get("kmsKeyId")):
        return error_answer("logs", "AccessDeniedException",
                            "The specified KMS key does not exist or is not allowed to be used with Arn "
                            "'arn:aws:logs:%s:%s:log-group:%s'" % (region, account, params.get("logGroupName")))
    return None


def _remember_key(answer):
    meta = _json_body(answer).get("KeyMetadata") or {}
    until = _now() + REALISM.seconds("kms_consistency")
    with REALISM.lock:
        for key in (meta.get("KeyId"), meta.get("Arn")):
            if key:
                REALISM.fresh_keys[key] = until


# --- the middleware -------------------------------------------------------------------------------
_MUTATING = re.compile(r"^(Describe|Get|List|Head|Lookup|Search|Check|Validate)")
_CRED = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


def _account(environ, access_key):
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from
    return get_account_id_from(access_key)


def _endpoint(environ, start_response):
    """GET/POST /moto-api/realism."""
    status, payload = "200 OK", None
    if environ.get("REQUEST_METHOD") == "POST":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(size) if size else b"{}"
        try:
            payload = REALISM.configure(json.loads(raw or b"{}"))
        except (ValueError, TypeError) as e:
            status, payload = "400 Bad Request", {"error": str(e)}
    else:
        payload = REALISM.settings()
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def middleware(app_call):
    """Wrap DomainDispatcherApplication.__call__: the endpoint, timers, latency and transient errors."""

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/moto-api/realism":
            return _endpoint(environ, start_response)
        if path == "/moto-api/reset":
            REALISM.forget()
        if not REALISM.enabled or path.startswith("/moto-api") or path.startswith("/latest/"):
            return app_call(self, environ, start_response)
        REALISM.tick()
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        service, action, access_key = identify(environ.get("REQUEST_METHOD", "GET"), path, query, headers, body)
        match = _CRED.search(headers.get("authorization", ""))
        region = match.group(2) if match else "us-east-1"
        form = {}
        if "x-www-form-urlencoded" in headers["content-type"]:
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        form.update({k: v for k, v in query.items() if k not in form})
        time.sleep(REALISM.seconds("latency"))
        refused = None
        if service == "ec2":
            refused = _lingering(action, form) or (None if action in CREATED_ID else _ec2_not_found(action, form))
            refused = refused or _run_instances_profile(action, form, _account(environ, access_key))
        elif service == "s3":
            refused = _s3_no_such_bucket(action, path)
        elif service == "elasticloadbalancing":
            refused = _elb_bucket_refusal(action, form, _account(environ, access_key))
        elif service in ("kms", "logs"):
            refused = _kms_refusal(service, action, body, _account(environ, access_key), region)
        tag_service = service  # the signing name is the SERVICE_NAMESPACE of moto's backend (s3, ec2, ...)
        mutating = not _MUTATING.match(action) and REALISM.seconds("tagging_lag") > 0 and tag_service != "tagging"
        if mutating and not refused:
            _tag_baseline(_account(environ, access_key), region, tag_service)
        if refused:
            status, out_headers, payload = refused
            start_response("%d %s" % (status, "Error"), out_headers)
            return [payload]

        seen = {}

        def capture(status, response_headers, exc_info=None):
            seen["status"] = int(status.split()[0])
            return start_response(status, response_headers, exc_info)
        chunks = app_call(self, environ, capture)
        try:
            answer = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        if seen.get("status", 500) < 300:
            if service == "ec2":
                _remember_ec2_create(action, answer)
            elif service == "s3" and action == "CreateBucket":
                with REALISM.lock:
                    REALISM.fresh_buckets[_s3_bucket(path)] = _now() + REALISM.seconds("s3_consistency")
            elif service == "kms" and action == "CreateKey":
                _remember_key(answer)
            elif service == "s3" and action == "PutBucketPolicy":
                with REALISM.lock:
                    REALISM.fresh_policies[_s3_bucket(path)] = _now() + REALISM.seconds("bucket_policy_propagation")
            if mutating:
                _tag_snapshot(_account(environ, access_key), region, tag_service, _now())
        return [answer]

    return __call__


# --- instance profiles: refused by EC2 and Auto Scaling for a while after creation ---------------------
# IAM is eventually consistent: "an instance profile ... might not be immediately visible to EC2"
# (IAM User Guide, "Troubleshoot IAM": "Changes that I make are not always immediately visible",
# https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html). AWS's answers, as
# seen in terraform-provider-aws issues #4769 and #29866 and its retry in
# internal/service/autoscaling/group.go (RetryWhen ... errCodeValidationError, "Invalid IAM Instance
# Profile") and internal/service/ec2/ec2_instance.go ("Invalid IAM Instance Profile"):
#   CreateAutoScalingGroup: ValidationError "You must use a valid fully-formed launch template. Value
#     (<arn>) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN"
#     (".name" ... "Invalid IAM Instance Profile name" when the template names the profile);
#   RunInstances: InvalidParameterValue "Value (<name>) for parameter iamInstanceProfile.name is
#     invalid. Invalid IAM Instance Profile name".
def _profile_refusal(account, profile):
    """AWS's words for a profile ({"Arn": ...} or {"Name": ...}) EC2 cannot see yet, else None."""
    if not profile:
        return None
    if profile.get("Arn"):
        value, name, field, what = profile["Arn"], profile["Arn"].rsplit("/", 1)[-1], "arn", "ARN"
    elif profile.get("Name"):
        value, name, field, what = profile["Name"], profile["Name"], "name", "name"
    else:
        return None
    with REALISM.lock:
        until = REALISM.fresh_profiles.get((account, name), 0)
    if until <= _now():
        return None
    return "Value (%s) for parameter iamInstanceProfile.%s is invalid. Invalid IAM Instance Profile %s" % (
        value, field, what)


def _run_instances_profile(action, form, account):
    if action != "RunInstances":
        return None
    profile = {"Arn": (form.get("IamInstanceProfile.Arn") or [""])[0],
               "Name": (form.get("IamInstanceProfile.Name") or [""])[0]}
    message = _profile_refusal(account, profile)
    return error_answer("ec2", "InvalidParameterValue", message) if message else None


def _template_profile(ec2_backend, spec):
    """The IamInstanceProfile of the launch template version an Auto Scaling group names."""
    if not spec:
        return None
    try:
        if spec.get("LaunchTemplateId"):
            template = ec2_backend.get_launch_template(spec["LaunchTemplateId"])
        else:
            template = ec2_backend.get_launch_template_by_name(spec.get("LaunchTemplateName"))
    except Exception:  # noqa: BLE001 - moto's own error follows in the original call
        return None
    version = str(spec.get("Version") or "$Default")
    if version == "$Latest":
        data = template.latest_version().data
    elif version == "$Default":
        data = template.default_version().data
    else:
        data = template.get_version(version).data
    return data.get("IamInstanceProfile")


# --- the tagging API lags --------------------------------------------------------------------------
# "... it can take several minutes for changes to tags to be reflected in the results of
# GetResources" and deleted resources can still be returned for a while: Resource Groups Tagging API
# Reference, GetResources; FIELD-NOTES section 2 ("the tagging API lags creates and deletes by
# minutes"). The view of GetResources is the account as it was `tagging_lag` ago, kept as a history
# of what each mutating call changed.
def _live_tags(account, region, service):
    """{arn: (tags, type, extra)} of the service's taggable resources (only that service's: a call
    changes its own service's tags, and reading every service's after each call costs seconds)."""
    from moto.core.resource_tagging import iter_taggable_backends
    for _attempt in range(5):
        live = {}
        try:
            for backend in iter_taggable_backends(account, region):
                if getattr(backend, "SERVICE_NAMESPACE", None) != service:
                    continue
                for res in backend.iter_tagged_resources():
                    live[res.arn] = (dict(res.tags), res.resource_type, res.extra)
            return live
        except RuntimeError:  # another request changed moto's dicts while they were read: read again
            time.sleep(0.01)
    return None


def _tag_baseline(account, region, service):
    """What the service had before the mode first saw it change: listed at once."""
    key = (account, region, service)
    if key in REALISM.tag_snapshot:
        return
    live = _live_tags(account, region, service)
    if live is None:
        return
    with REALISM.lock:
        if key not in REALISM.tag_snapshot:
            REALISM.tag_snapshot[key] = live
            history = REALISM.tag_history.setdefault((account, region), {})
            for arn, (tags, rtype, _x) in live.items():
                history.setdefault(arn, []).insert(0, (float("-inf"), tags, rtype))


def _tag_snapshot(account, region, service, at):
    key = (account, region, service)
    live = _live_tags(account, region, service)
    if live is None:  # not read this time: the next change's snapshot records it, a little late
        return
    with REALISM.lock:
        before = REALISM.tag_snapshot.get(key, {})
        history = REALISM.tag_history.setdefault((account, region), {})
        for arn, (tags, rtype, _x) in live.items():
            if arn not in before or before[arn][0] != tags:
                history.setdefault(arn, []).append((at, tags, rtype))
        for arn in set(before) - set(live):
            history.setdefault(arn, []).append((at, None, before[arn][1]))
        REALISM.tag_snapshot[key] = live


def _tags_as_of(entries, cutoff):
    """(tags, type) the tagging API shows at cutoff; None: not (yet, or any more) listed."""
    shown = None
    for at, tags, rtype in entries:
        if at <= cutoff:
            shown = None if tags is None else (tags, rtype)
    return shown


# --- the backend patches ------------------------------------------------------------------------------
def _patch_nat_gateways():
    # NAT gateways: "pending" then "available" (1-5 minutes), "deleting" then "deleted" (stays listed
    # about an hour). Amazon VPC User Guide, "NAT gateway basics"/"Delete a NAT gateway"; the botocore
    # model's NatGatewayState enum (pending | failed | available | deleting | deleted) and its waiters
    # NatGatewayAvailable / NatGatewayDeleted (botocore/data/ec2/2016-11-15/waiters-2.json).
    from moto.ec2.models.nat_gateways import NatGatewayBackend
    original_create, original_delete = NatGatewayBackend.create_nat_gateway, NatGatewayBackend.delete_nat_gateway

    def create_nat_gateway(self, *args, **kwargs):
        nat = original_create(self, *args, **kwargs)
        if REALISM.on():
            nat.state = "pending"

            def available():
                if nat.state == "pending":
                    nat.state = "available"
            REALISM.after("nat_pending", available)
        return nat

    def delete_nat_gateway(self, nat_gateway_id):
        if not REALISM.on():
            return original_delete(self, nat_gateway_id)
        nat = self.nat_gateways.get(nat_gateway_id)
        if nat is None:
            return original_delete(self, nat_gateway_id)
        if nat.state in ("deleting", "deleted"):
            return nat
        nat.state = "deleting"

        def deleted():
            original_delete(self, nat_gateway_id)  # "deleted", its address disassociated (moto_server.py, 8)
        REALISM.after("nat_deleting", deleted)
        return nat

    NatGatewayBackend.create_nat_gateway = create_nat_gateway
    NatGatewayBackend.delete_nat_gateway = delete_nat_gateway


def _patch_load_balancers():
    # Application Load Balancers: "provisioning" then "active" (botocore model LoadBalancerStateEnum,
    # waiter LoadBalancerAvailable in botocore/data/elbv2/2015-12-01/waiters-2.json; typically a few
    # minutes). moto makes a balancer active at its first describe; here only once its time has passed.
    from moto.elbv2.models import ELBv2Backend, FakeLoadBalancer
    original_create, original_activate = ELBv2Backend.create_load_balancer, FakeLoadBalancer.activate
    original_delete = ELBv2Backend.delete_load_balancer

    def create_load_balancer(self, *args, **kwargs):
        lb = original_create(self, *args, **kwargs)
        lb.realism_active_at = _now() + REALISM.seconds("lb_provisioning") if REALISM.on() else 0
        return lb

    def activate(self):
        if REALISM.on() and getattr(self, "realism_active_at", 0) > _now():
            return
        original_activate(self)

    def delete_load_balancer(self, arn):
        lb = self.load_balancers.get(arn)
        if lb is not None and REALISM.on():
            until = _now() + REALISM.seconds("lb_eni_linger")
            with REALISM.lock:
                for item in [s.id for s in lb.subnets] + list(lb.security_groups or []) + [lb.vpc_id]:
                    REALISM.lingering[item] = (until, lb.name)
        return original_delete(self, arn)

    ELBv2Backend.create_load_balancer = create_load_balancer
    FakeLoadBalancer.activate = activate
    ELBv2Backend.delete_load_balancer = delete_load_balancer


_ARCH_MESSAGE = ("The architecture '%s' of the specified instance type does not match the architecture '%s' of the "
                 "specified AMI. Specify an instance type and an AMI that have matching architectures, and try again. "
                 "You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the "
                 "instance type or AMI. Launching EC2 instance failed.")


def _arch_mismatch(group):
    """AWS's StatusMessage when the group's image cannot run on its instance type, else None."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES
    try:
        image = group.ec2_backend.describe_images(ami_ids=[group.image_id])[0]
    except Exception:  # noqa: BLE001 - an unknown image: moto decides
        return None
    archs = ((INSTANCE_TYPES.get(group.instance_type) or {}).get("ProcessorInfo") or {}).get("SupportedArchitectures")
    if not archs or image.architecture in archs:
        return None
    return _ARCH_MESSAGE % (archs[0], image.architecture)


def agent_registered(instance_state):
    """Whether an in-service instance of a group has been registered by its ECS agent by now: always
    outside realism mode; `agent_registration` after it came in service otherwise."""
    if not REALISM.on():
        return True
    return getattr(instance_state, "realism_in_service_at", 0) + REALISM.seconds("agent_registration") <= _now()


def _patch_autoscaling():
    from moto.autoscaling import models as asm
    from moto.autoscaling.exceptions import ValidationError
    from moto.autoscaling.responses import AutoScalingResponse

    # Instances of a group: "Pending" then "InService" (Amazon EC2 Auto Scaling User Guide, "Amazon EC2
    # Auto Scaling instance lifecycle"; LifecycleState enum in botocore/data/autoscaling/2011-01-01/
    # service-2.json). moto counts only InService instances when it sizes a group, so it keeps its own
    # state and only the answers say Pending.
    original_init = asm.InstanceState.__init__

    def init(self, *args, **kwargs):
        self.realism_in_service_at = _now() + REALISM.seconds("instance_pending") if REALISM.on() else 0
        original_init(self, *args, **kwargs)

    def get_state(self):
        state = self.__dict__.get("_lifecycle_state")
        if state == "InService" and REALISM.on() and getattr(self, "realism_in_service_at", 0) > _now():
            return "Pending"
        return state

    def set_state(self, value):
        self.__dict__["_lifecycle_state"] = value

    asm.InstanceState.__init__ = init
    asm.InstanceState.lifecycle_state = property(get_state, set_state)
    asm.FakeAutoScalingGroup.active_instances = lambda self: [
        x for x in self.instance_states if x.__dict__.get("_lifecycle_state") == "InService"]
    asm.FakeAutoScalingGroup.status = None

    # A failed launch is a scaling activity, not an error of any call: CreateAutoScalingGroup succeeds
    # and DescribeScalingActivities shows StatusCode "Failed" with EC2's reason in StatusMessage
    # (Amazon EC2 Auto Scaling User Guide, "Troubleshoot Amazon EC2 Auto Scaling: EC2 instance launch
    # failures"; the Activity shape in the botocore model). The architecture message is RunInstances'.
    original_launch = asm.FakeAutoScalingGroup.replace_autoscaling_group_instances

    def replace_autoscaling_group_instances(self, count_needed, propagated_tags):
        message = _arch_mismatch(self) if REALISM.on("failed_launches") else None
        if message is None:
            return original_launch(self, count_needed, propagated_tags)
        now = datetime.datetime.now(datetime.timezone.utc)
        activity = {
            "ActivityId": str(uuid.uuid4()), "AutoScalingGroupName": self.name,
            "Description": "Launching a new EC2 instance.  Status Reason: %s" % message,
            "Cause": "At %s an instance was started in response to a difference between desired and actual "
                     "capacity, increasing the capacity from %d to %d." % (
                         now.strftime("%Y-%m-%dT%H:%M:%SZ"), len(self.instance_states),
                         len(self.instance_states) + count_needed),
            "StartTime": now, "EndTime": now, "StatusCode": "Failed", "StatusMessage": message, "Progress": 100,
            "Details": json.dumps({"Subnet ID": (self.vpc_zone_identifier or "").split(",")[0]}),
            "AutoScalingGroupARN": self.arn,
        }
        with REALISM.lock:
            REALISM.activities.setdefault((self.account_id, self.region, self.name), []).insert(0, activity)
        return None

    asm.FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances
    original_activities = AutoScalingResponse.describe_scaling_activities

    def describe_scaling_activities(self):
        from moto.core.responses import ActionResult
        if not REALISM.on():
            return original_activities(self)
        name = self._get_param("AutoScalingGroupName")
        backend = self.autoscaling_backend
        with REALISM.lock:
            found = [a for (acct, region, group), acts in REALISM.activities.items() for a in acts
                     if acct == backend.account_id and region == backend.region_name and (not name or group == name)]
        return ActionResult({"Activities": found})

    AutoScalingResponse.describe_scaling_activities = describe_scaling_activities

    # A launch template whose instance profile EC2 cannot see yet (see _profile_refusal).
    original_create, original_update = (asm.AutoScalingBackend.create_auto_scaling_group,
                                        asm.AutoScalingBackend.update_auto_scaling_group)

    def refuse_fresh_profile(backend, launch_template):
        if REALISM.on() and launch_template:
            message = _profile_refusal(backend.account_id, _template_profile(backend.ec2_backend, launch_template))
            if message:
                raise ValidationError("You must use a valid fully-formed launch template. " + message)

    def create_auto_scaling_group(self, name, *args, **kwargs):
        refuse_fresh_profile(self, kwargs.get("launch_template"))
        return original_create(self, name, *args, **kwargs)

    def update_auto_scaling_group(self, name, *args, **kwargs):
        refuse_fresh_profile(self, kwargs.get("launch_template"))
        return original_update(self, name, *args, **kwargs)

    asm.AutoScalingBackend.create_auto_scaling_group = create_auto_scaling_group
    asm.AutoScalingBackend.update_auto_scaling_group = update_auto_scaling_group

    # DeleteAutoScalingGroup: the group stays, Status "Delete in progress", while its instances
    # terminate (the botocore model, AutoScalingGroup.Status: "The current state of the group when the
    # DeleteAutoScalingGroup operation is in progress"; terraform-provider-aws
    # internal/service/autoscaling/group.go waits in waitGroupDeleted until the group is gone).
    original_delete = asm.AutoScalingBackend.delete_auto_scaling_group

    def delete_auto_scaling_group(self, group_name):
        group = self.autoscaling_groups.get(group_name)
        if not REALISM.on() or group is None:
            return original_delete(self, group_name)
        if group.status == "Delete in progress":
            return None
        group.status = "Delete in progress"
        for state in group.instance_states:
            state.lifecycle_state = "Terminating"
            state.instance._state.name, state.instance._state.code = "shutting-down", 32

        def gone():
            ids = [s.instance.id for s in group.instance_states]
            if ids:
                self.ec2_backend.terminate_instances(ids)
            group.instance_states = []
            if self.autoscaling_groups.get(group_name) is group:
                self.autoscaling_groups.pop(group_name, None)
        REALISM.after("asg_delete", gone)
        return None

    asm.AutoScalingBackend.delete_auto_scaling_group = delete_auto_scaling_group


def _patch_iam():
    from moto.iam.models import IAMBackend
    original = IAMBackend.create_instance_profile

    def create_instance_profile(self, name, *args, **kwargs):
        profile = original(self, name, *args, **kwargs)
        if REALISM.on():
            with REALISM.lock:
                REALISM.fresh_profiles[(self.account_id, name)] = _now() + REALISM.seconds("profile_propagation")
        return profile

    IAMBackend.create_instance_profile = create_instance_profile


def _patch_ecs():
    # "Associating an ECS Capacity Provider to an Auto Scaling Group will automatically add the
    # AmazonECSManaged tag to the Auto Scaling Group" (terraform-provider-aws, website/docs/r/
    # ecs_capacity_provider.html.markdown; its #12582 and #14069); Amazon ECS Developer Guide,
    # "Amazon ECS cluster auto scaling". AWS adds it with an empty value, propagated at launch.
    from moto.autoscaling.models import autoscaling_backends
    from moto.ecs.models import EC2ContainerServiceBackend
    original = EC2ContainerServiceBackend.create_capacity_provider

    def create_capacity_provider(self, name, asg_details, tags):
        provider = original(self, name, asg_details, tags)
        if REALISM.on("ecs_managed_tag"):
            arn = (asg_details or {}).get("autoScalingGroupArn")
            backend = autoscaling_backends[self.account_id][self.region_name]
            for group in list(backend.autoscaling_groups.values()):
                if group.arn == arn:
                    backend.create_or_update_tags([{
                        "ResourceId": group.name, "ResourceType": "auto-scaling-group", "Key": "AmazonECSManaged",
                        "Value": "", "PropagateAtLaunch": True}])
        return provider

    EC2ContainerServiceBackend.create_capacity_provider = create_capacity_provider


# CreateFlowLogs to a bucket whose policy lacks the log delivery's statements appends them (CloudWatch Logs user
# guide, "Logs sent to Amazon S3": "If the bucket has a resource policy but that policy doesn't contain the statement
# shown in the previous policy, and the user setting up the logging has the S3:GetBucketPolicy and
# S3:PutBucketPolicy permissions for the bucket, that statement is appended to the bucket's resource policy";
# Amazon VPC user guide, "Amazon S3 bucket permissions for flow logs", for the statements). Modelled at its worst
# for a caller that compares its policy: AWS knows its statements by their Sids, so a policy whose own
# statements allow the same under other Sids still gets AWS's two.
AWS_LOG_DELIVERY = "delivery.logs.amazonaws.com"


def aws_log_delivery_statements(bucket, folder, account, region):
    condition = {"StringEquals": {"aws:SourceAccount": account},
                 "ArnLike": {"aws:SourceArn": "arn:aws:logs:%s:%s:*" % (region, account)}}
    return [
        {"Sid": "AWSLogDeliveryWrite", "Effect": "Allow", "Principal": {"Service": AWS_LOG_DELIVERY},
         "Action": "s3:PutObject", "Resource": "arn:aws:s3:::%s/%sAWSLogs/%s/*" % (bucket, folder, account),
         "Condition": {"StringEquals": dict(condition["StringEquals"], **{"s3:x-amz-acl": "bucket-owner-full-control"}),
                       "ArnLike": condition["ArnLike"]}},
        {"Sid": "AWSLogDeliveryAclCheck", "Effect": "Allow", "Principal": {"Service": AWS_LOG_DELIVERY},
         "Action": ["s3:GetBucketAcl", "s3:ListBucket"], "Resource": "arn:aws:s3:::%s" % bucket,
         "Condition": condition},
    ]


def _patch_flow_logs():
    from moto.ec2.models import flow_logs
    from moto.s3.models import s3_backends
    original = flow_logs.FlowLogsBackend.create_flow_logs

    def create_flow_logs(self, resource_type, resource_ids, traffic_type, deliver_logs_permission_arn,
                         log_destination_type, log_destination, *args, **kwargs):
        made, failed = original(self, resource_type, resource_ids, traffic_type, deliver_logs_permission_arn,
                                log_destination_type, log_destination, *args, **kwargs)
        if made and REALISM.on("log_delivery_policy") and log_destination_type == "s3" and log_destination:
            path = log_destination.split(":::", 1)[-1]
            bucket_name, _sep, folder = path.partition("/")
            folder = folder + "/" if folder and not folder.endswith("/") else folder
            try:
                bucket = s3_backends[self.account_id]["aws"].get_bucket(bucket_name)
                text = bucket.policy.decode("utf-8") if isinstance(bucket.policy, bytes) else bucket.policy
                policy = json.loads(text) if text else {"Version": "2012-10-17", "Statement": []}
            except Exception:  # noqa: BLE001 - no bucket, or no readable policy: nothing to append to
                return made, failed
            sids = {st.get("Sid") for st in policy.get("Statement", [])}
            added = [st for st in aws_log_delivery_statements(bucket_name, folder, self.account_id, self.region_name)
                     if st["Sid"] not in sids]
            if added:
                policy["Statement"] = list(policy.get("Statement", [])) + added
                bucket.policy = json.dumps(policy).encode("utf-8")
        return made, failed

    flow_logs.FlowLogsBackend.create_flow_logs = create_flow_logs


def _patch_tagging():
    from moto.core.resource_tagging import TaggedResource, make_tag_matcher, match_resource_type
    from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend
    original = ResourceGroupsTaggingAPIBackend._get_resources_generator

    def generator(self, tag_filters=None, resource_type_filters=None, resource_arn_list=None):
        key = (self.account_id, self.region_name)
        with REALISM.lock:
            history = dict(REALISM.tag_history.get(key) or {})
        if not REALISM.on() or REALISM.seconds("tagging_lag") <= 0 or not history:
            yield from original(self, tag_filters, resource_type_filters, resource_arn_list)
            return
        cutoff = _now() - REALISM.seconds("tagging_lag")
        matcher = make_tag_matcher(tag_filters)
        live = {r.arn: r for r in original(self, None, None, None)}
        for arn in list(live) + [a for a in history if a not in live]:
            if arn in history:
                shown = _tags_as_of(history[arn], cutoff)
                if shown is None:
                    continue
                res = TaggedResource(arn=arn, tags=shown[0], resource_type=shown[1])
            else:
                res = live[arn]
            if not match_resource_type(res.resource_type, resource_type_filters) or not matcher(res.tags):
                continue
            if resource_arn_list and arn not in resource_arn_list:
                continue
            yield res

    ResourceGroupsTaggingAPIBackend._get_resources_generator = generator


def install():
    """Patch moto: every behaviour above, each inert until the mode is switched on."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    _patch_nat_gateways()
    _patch_load_balancers()
    _patch_autoscaling()
    _patch_iam()
    _patch_ecs()
    _patch_flow_logs()
    _patch_tagging()
    DomainDispatcherApplication.__call__ = middleware(DomainDispatcherApplication.__call__)
    setting = os.environ.get("MOTO_REALISM", "").strip()
    if setting and setting not in ("0", "false", "off"):
        REALISM.configure({} if setting in ("1", "true", "on") else json.loads(setting))
