#!/usr/bin/env python
"""A recording, fault-injecting HTTP proxy between boto3 and an AWS endpoint (the local AWS).

Point boto3 at it (AWS_ENDPOINT_URL=<proxy url>) and it forwards every request to the upstream
endpoint, recording which AWS action passed (service and operation, the access key id that signed
it, whether a session token came with it). At the rate and seed it is given it answers instead:

  throttle  a throttling error in the service's own wire format: RequestLimitExceeded (EC2),
            Throttling (IAM, STS, ELB, Auto Scaling), TooManyRequestsException (JSON services:
            ECS, Logs, ECR, SSM), ThrottledException (the tagging API, JSON too), SlowDown (S3,
            with 503)
  500       InternalError / InternalFailure, status 500
  503       ServiceUnavailable, status 503
  slow      forwards the request after a delay (it succeeds, late)
  drop      closes the connection without an answer, before the request reaches AWS

Dropped connections happen *before* forwarding: the request never reaches AWS. A response lost
after AWS acted (kind ``lost``, not in the default mix) is available to tests that want it.

A hook (callable(Record)) sees every AWS request before it is answered; what it returns, when it
is a fault kind, is the fault of that request (whatever was drawn): a test can kill the client
after its Nth call and choose whether that call still reaches AWS ("drop": it does not, "lost": it
does and its answer is lost, None: it goes on as drawn). An `answered` callback
(callable(Record, request body, status, answer body)) sees each request that reached AWS with
AWS's answer, before the client gets it: a test can keep what AWS handed out.

Used in-process by the tests (``AwsProxy``) and standalone:
  python scripts/aws_proxy.py --upstream http://127.0.0.1:4566 --port 4599 \
      --fault-rate 0.1 --seed 7 --record /tmp/actions.jsonl
Only the standard library is needed.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import random
import re
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field

FAULT_KINDS = ("throttle", "500", "503", "slow", "drop")
JSON_SERVICES = {"ecs", "logs", "ecr", "ssm", "dynamodb", "kms", "secretsmanager", "tagging"}
# Where a JSON service names its throttling error otherwise (resourcegroupstaggingapi signs as "tagging").
JSON_THROTTLE = {"tagging": "ThrottledException"}
EC2_SERVICES = {"ec2"}
S3_SERVICES = {"s3"}
_CRED = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")

# S3 bucket sub-resources (query keys) and the operation each method maps to.
_S3_SUBRESOURCES = {
    "tagging": {"GET": "GetBucketTagging", "PUT": "PutBucketTagging", "DELETE": "DeleteBucketTagging"},
    "policy": {"GET": "GetBucketPolicy", "PUT": "PutBucketPolicy", "DELETE": "DeleteBucketPolicy"},
    "policyStatus": {"GET": "GetBucketPolicyStatus"},
    "encryption": {"GET": "GetBucketEncryption", "PUT": "PutBucketEncryption", "DELETE": "DeleteBucketEncryption"},
    "versioning": {"GET": "GetBucketVersioning", "PUT": "PutBucketVersioning"},
    "publicAccessBlock": {"GET": "GetPublicAccessBlock", "PUT": "PutPublicAccessBlock",
                          "DELETE": "DeletePublicAccessBlock"},
    "lifecycle": {"GET": "GetBucketLifecycleConfiguration", "PUT": "PutBucketLifecycleConfiguration",
                  "DELETE": "DeleteBucketLifecycle"},
    "logging": {"GET": "GetBucketLogging", "PUT": "PutBucketLogging"},
    "ownershipControls": {"GET": "GetBucketOwnershipControls", "PUT": "PutBucketOwnershipControls",
                          "DELETE": "DeleteBucketOwnershipControls"},
    "acl": {"GET": "GetBucketAcl", "PUT": "PutBucketAcl"},
    "location": {"GET": "GetBucketLocation"},
    "versions": {"GET": "ListObjectVersions"},
    "uploads": {"GET": "ListMultipartUploads"},
    "delete": {"POST": "DeleteObjects"},
    "notification": {"GET": "GetBucketNotificationConfiguration", "PUT": "PutBucketNotificationConfiguration"},
    "cors": {"GET": "GetBucketCors", "PUT": "PutBucketCors", "DELETE": "DeleteBucketCors"},
    "object-lock": {"GET": "GetObjectLockConfiguration", "PUT": "PutObjectLockConfiguration"},
    "replication": {"GET": "GetBucketReplication", "PUT": "PutBucketReplication", "DELETE": "DeleteBucketReplication"},
}
_S3_OBJECT_SUBRESOURCES = {
    "tagging": {"GET": "GetObjectTagging", "PUT": "PutObjectTagging", "DELETE": "DeleteObjectTagging"},
    "acl": {"GET": "GetObjectAcl", "PUT": "PutObjectAcl"},
    "uploads": {"POST": "CreateMultipartUpload"},
    "uploadId": {"PUT": "UploadPart", "POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload",
                 "GET": "ListParts"},
}
_S3_OBJECT = {"GET": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject", "HEAD": "HeadObject"}
_S3_BUCKET = {"GET": "ListObjects", "PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}


@dataclass
class Record:
    """One request the proxy saw."""

    seq: int
    service: str
    action: str
    method: str
    path: str
    access_key: str = ""
    has_token: bool = False
    fault: str | None = None      # the fault answered instead, or None
    status: int | None = None     # the status returned to the client (None: connection dropped)
    forwarded: bool = False       # the request reached the upstream endpoint
    started: float = 0.0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def name(self):
        """'service:Action', as IAM names it for most services (see iam_action in the tests for S3)."""
        return "%s:%s" % (self.service, self.action)


def s3_operation(method, path, query, headers):
    """The S3 API operation of a path-style request."""
    parts = path.lstrip("/").split("/", 1)
    bucket = parts[0]
    key = parts[1] if len(parts) > 1 else ""
    if not bucket:
        return "ListBuckets"
    if key:
        for sub, ops in _S3_OBJECT_SUBRESOURCES.items():
            if sub in query and method in ops:
                return ops[method]
        if method == "PUT" and headers.get("x-amz-copy-source"):
            return "CopyObject"
        return _S3_OBJECT.get(method, "Object" + method.title())
    for sub, ops in _S3_SUBRESOURCES.items():
        if sub in query and method in ops:
            return ops[method]
    if method == "GET" and query.get("list-type") == ["2"]:
        return "ListObjectsV2"
    return _S3_BUCKET.get(method, "Bucket" + method.title())


def request_parameters(headers, body):
    """The names (never the values) of the top-level parameters of a query-protocol request (IAM, EC2,
    STS, Auto Scaling, ELB: a form body), so that a test can tell how an action was called (CreateRole
    with or without PermissionsBoundary); [] for other protocols."""
    if not body or "x-www-form-urlencoded" not in headers.get("content-type", ""):
        return []
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return sorted({key.split(".")[0] for key in form} - {"Action", "Version"})


def identify(method, path, query, headers, body):
    """(service, action, access_key) of a SigV4-signed AWS request."""
    auth = headers.get("authorization", "")
    match = _CRED.search(auth)
    access_key, service = (match.group(1), match.group(3)) if match else ("", "")
    target = headers.get("x-amz-target", "")
    if target:
        return service or "unknown", target.rsplit(".", 1)[-1], access_key
    if service == "s3":
        return service, s3_operation(method, path, query, headers), access_key
    action = (query.get("Action") or [""])[0]
    if not action and body and "x-www-form-urlencoded" in headers.get("content-type", ""):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        action = (form.get("Action") or [""])[0]
    if not action and service in ("lambda", "apigateway"):
        action = method + " " + path
    return service or "unknown", action or (method + " " + path), access_key


def error_response(service, kind, request_id):
    """(status, headers, body) of a fault answer in the service's own wire format."""
    code, status, message = {
        "throttle": (None, 400, "Rate exceeded"),
        "500": ("InternalError", 500, "We encountered an internal error. Please try again."),
        "503": ("ServiceUnavailable", 503, "Service is unavailable. Please try again."),
    }[kind]
    if kind == "throttle":
        if service in EC2_SERVICES:
            code, status = "RequestLimitExceeded", 503
        elif service in S3_SERVICES:
            code, status, message = "SlowDown", 503, "Please reduce your request rate."
        elif service in JSON_SERVICES:
            code = JSON_THROTTLE.get(service, "TooManyRequestsException")
        else:
            code = "Throttling"
    if service in JSON_SERVICES:
        if kind == "500":
            code = "InternalFailure"
        body = json.dumps({"__type": code, "message": message}).encode()
        ctype = "application/x-amz-json-1.1"
    elif service in EC2_SERVICES:
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>%s</Code>"
                "<Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>"
                % (code, message, request_id)).encode()
        ctype = "text/xml"
    elif service in S3_SERVICES:
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code><Message>%s</Message>"
                "<RequestId>%s</RequestId></Error>" % (code, message, request_id)).encode()
        ctype = "application/xml"
    else:
        body = ("<ErrorResponse><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error>"
                "<RequestId>%s</RequestId></ErrorResponse>"
                % ("Receiver" if status >= 500 else "Sender", code, message, request_id)).encode()
        ctype = "text/xml"
    headers = {"Content-Type": ctype, "x-amzn-RequestId": request_id, "x-amz-request-id": request_id,
               "Content-Length": str(len(body))}
    return status, headers, body


class AwsProxy:
    """The proxy, run in threads of the calling process.

    fault_rate: share of AWS requests answered with a fault (0.0 to 1.0), drawn from a
    random.Random(seed), so that a run is repeatable for a given order of requests.
    faults: the kinds to draw from (FAULT_KINDS by default), uniformly.
    match: optional predicate(Record) -> bool; only matching requests may be faulted.
    hook: optional callable(Record), called for every AWS request before it is answered (a
    test can kill a process after the Nth call from it); a fault kind it returns replaces the
    drawn one for that request. An exception in the hook is kept in `hook_errors` and the request
    then goes on as drawn.
    answered: optional callable(Record, request body, status, answer body), called for every AWS
    request that reached the upstream, with its answer, before the client gets it (whether the
    answer is then lost or not). An exception in it is kept in `hook_errors` too.
    """

    def __init__(self, upstream, fault_rate=0.0, seed=0, faults=FAULT_KINDS, slow_seconds=(0.2, 1.0),
                 match=None, hook=None, host="127.0.0.1", port=0, record_file=None, answered=None):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.lock = threading.Lock()
        self.records = []
        self.host, self.port = host, port
        self.hook = hook
        self.answered = answered
        self.hook_errors = []
        self.record_file = record_file
        self._server = None
        self._thread = None
        self.configure(fault_rate=fault_rate, seed=seed, faults=faults, slow_seconds=slow_seconds, match=match)

    def configure(self, fault_rate=None, seed=None, faults=None, slow_seconds=None, match=None, hook=None):
        """Change the settings of the running proxy (None leaves a setting as it is; match=False
        and hook=False remove the predicate and the hook)."""
        with self.lock:
            if fault_rate is not None:
                if not 0.0 <= fault_rate <= 1.0:
                    raise ValueError("fault_rate must be between 0 and 1")
                self.fault_rate = fault_rate
            if seed is not None:
                self.random = random.Random(seed)
            if faults is not None:
                unknown = set(faults) - set(FAULT_KINDS) - {"lost"}
                if unknown:
                    raise ValueError("unknown fault kinds: %s" % ", ".join(sorted(unknown)))
                self.faults = tuple(faults)
            if slow_seconds is not None:
                self.slow_seconds = slow_seconds
            if match is not None:
                self.match = match if callable(match) else None
            elif not hasattr(self, "match"):
                self.match = None
            if hook is not None:
                self.hook = hook if callable(hook) else None

    # --- what passed ---------------------------------------------------------------------
    def clear(self):
        with self.lock:
            self.records = []

    def forwarded(self):
        """Records of the requests that reached AWS."""
        with self.lock:
            return [r for r in self.records if r.forwarded]

    def actions(self):
        """The set of 'service:Action' that reached AWS."""
        return {r.name for r in self.forwarded()}

    def fault_counts(self):
        """Faults answered, by kind."""
        with self.lock:
            return Counter(r.fault for r in self.records if r.fault)

    def faults_by_action(self):
        """Faults answered, by ('service:Action', kind)."""
        with self.lock:
            return Counter((r.name, r.fault) for r in self.records if r.fault)

    def summary(self):
        """What a run cost: requests seen, forwarded, faults by kind, and the requests the client
        had to send again (every fault but `slow`, which answers late but answers)."""
        with self.lock:
            records = list(self.records)
        faults = Counter(r.fault for r in records if r.fault)
        return {"requests": len(records), "forwarded": sum(1 for r in records if r.forwarded),
                "faults": dict(sorted(faults.items())),
                "resent": sum(n for kind, n in faults.items() if kind != "slow")}

    # --- life ------------------------------------------------------------------------------
    @property
    def url(self):
        return "http://%s:%d" % (self.host, self._server.server_address[1])

    def start(self):
        proxy = self

        class Handler(_Handler):
            owner = proxy
        self._server = _Server((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- per request -------------------------------------------------------------------------
    def _admit(self, record):
        """Number the record, draw its fault; returns the fault kind or None."""
        with self.lock:
            record.seq = len(self.records) + 1
            self.records.append(record)
            fault = None
            if self.fault_rate and (self.match is None or self.match(record)):
                if self.random.random() < self.fault_rate:
                    fault = self.random.choice(self.faults)
            record.fault = fault
            slow = self.random.uniform(*self.slow_seconds) if fault == "slow" else 0.0
        return fault, slow

    def _written(self, record):
        if self.record_file:
            with self.lock, open(self.record_file, "a", encoding="utf-8") as f:
                f.write(json.dumps(asdict(record)) + "\n")


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A client that went away (killed by a test, or gave up) is no error of the proxy's."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    owner = None  # the AwsProxy, set by a subclass
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if not size:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        proxy = self.owner
        body = self._body()
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        if split.path.startswith("/moto-api"):
            return self._forward(body, None)
        service, action, access_key = identify(self.command, split.path, query, headers, body)
        record = Record(seq=0, service=service, action=action, method=self.command, path=split.path,
                        access_key=access_key, has_token=bool(headers.get("x-amz-security-token")),
                        started=time.time())
        params = request_parameters(headers, body)
        if params:
            record.extra["params"] = params
        fault, slow = proxy._admit(record)
        hook = proxy.hook
        if hook:
            try:
                override = hook(record)
            except Exception as e:  # noqa: BLE001 - a test's hook must not leave the client unanswered
                proxy.hook_errors.append("%s: %r" % (record.name, e))
                override = None
            if override is not None:
                if override not in FAULT_KINDS and override != "lost":
                    proxy.hook_errors.append("%s: unknown fault kind %r" % (record.name, override))
                else:
                    with proxy.lock:
                        record.fault = fault = override
                        slow = proxy.random.uniform(*proxy.slow_seconds) if fault == "slow" else 0.0
        try:
            if fault in ("throttle", "500", "503"):
                status, hdrs, payload = error_response(service, fault, str(uuid.uuid4()))
                record.status = status
                self._send(status, hdrs.items(), payload)
            elif fault == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            else:
                if slow:
                    time.sleep(slow)
                self._forward(body, record, lose=(fault == "lost"))
        finally:
            record.seconds = time.time() - record.started
            proxy._written(record)
        return None

    def _forward(self, body, record, lose=False):
        up = self.owner.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=300)
        # Expect: 100-continue was answered by this server already (BaseHTTPRequestHandler), and
        # the body is whole: the upstream gets a plain request.
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("connection", "transfer-encoding", "keep-alive", "proxy-connection", "expect")}
        headers["Content-Length"] = str(len(body))
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            if record is not None:
                record.forwarded = True
                record.status = resp.status
                if self.owner.answered:
                    try:
                        self.owner.answered(record, body, resp.status, payload)
                    except Exception as e:  # noqa: BLE001 - as for the hook: the client still gets its answer
                        self.owner.hook_errors.append("%s: answered: %r" % (record.name, e))
            if lose:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:  # the client is gone already (a test killed it)
                    pass
                return
            head = self.command == "HEAD"
            # A HEAD answer has no body but tells the length of the one GET would return (S3's
            # HeadObject ContentLength): keep the upstream's Content-Length for it.
            out = [(k, v) for k, v in resp.getheaders()
                   if k.lower() not in ("transfer-encoding", "connection", "keep-alive")
                   and (head or k.lower() != "content-length")]
            if not head:
                out.append(("Content-Length", str(len(payload))))
            self._send(resp.status, out, b"" if self.command == "HEAD" else payload)
        finally:
            conn.close()

    def _send(self, status, headers, payload):
        self.send_response_only(status)
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--upstream", required=True, help="the AWS endpoint to forward to")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults", default=",".join(FAULT_KINDS), help="comma-separated kinds")
    parser.add_argument("--record", help="append one JSON line per request to this file")
    args = parser.parse_args(argv)
    proxy = AwsProxy(args.upstream, fault_rate=args.fault_rate, seed=args.seed, faults=args.faults.split(","),
                     host=args.host, port=args.port, record_file=args.record).start()
    print(proxy.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
