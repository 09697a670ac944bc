# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Entry: the application load balancer convox-<rack> (the router: the only door from the
internet, or internal with internal_only) and its listeners: HTTP on 80 answering a fixed 404 until
apps route through it; with a certificate (certificate_arn) HTTPS on 443 answering so, and 80
redirecting to 443. Its attributes (delivery.load_balancer_attributes): invalid header fields
dropped, deletion protection on (turned off right before the load balancer is deleted), access logs
into the rack's log bucket. Found by name, confirmed by tags (one DescribeTags for the load balancer
and its listeners)."""

from __future__ import annotations

from .. import delivery as L
from ..errors import RackError
from ..plan import CHECK_MODE_ID
from ..tags import confirm, sync_tags, tag_dict, tag_list

NOT_FOUND = ("LoadBalancerNotFound",)
NO_LISTENER = ("ListenerNotFound",)


def read(aws, state):
    names = state.names
    name = names.load_balancer
    lbs = aws.call("elbv2", "describe_load_balancers", "load balancer %s" % name, ignore=NOT_FOUND, Names=[name])
    lb = next((x for x in (lbs or {}).get("LoadBalancers", []) if x.get("LoadBalancerName") == name), None)
    if lb is None:
        return
    listeners = aws.call("elbv2", "describe_listeners", "load balancer %s" % name,
                         LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    # One describe_tags for the load balancer and its listeners (20 ARNs a call at most).
    arns = [lb["LoadBalancerArn"]] + [x["ListenerArn"] for x in listeners][:19]
    descs = aws.call("elbv2", "describe_tags", "load balancer %s" % name, ResourceArns=arns)["TagDescriptions"]
    tags = {d["ResourceArn"]: tag_dict(d.get("Tags")) for d in descs}
    state.lb_tags = tags.get(lb["LoadBalancerArn"], {})
    confirm(state.lb_tags, "load balancer %s" % name, names.rack)
    for listener in listeners:
        listener["tags"] = tags.get(listener["ListenerArn"], {})
    attributes = aws.call("elbv2", "describe_load_balancer_attributes", "load balancer %s" % name,
                          LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]
    state.load_balancer = dict(lb, attributes=tag_dict(attributes))
    state.listeners = listeners


def gone(aws, name, arn=None):
    """Whether the load balancer no longer exists (by ARN when known, else by name)."""
    by = {"LoadBalancerArns": [arn]} if arn else {"Names": [name]}
    found = aws.call("elbv2", "describe_load_balancers", "load balancer %s" % name, ignore=NOT_FOUND, **by)
    return not (found or {}).get("LoadBalancers")


def delete(run, name, arn, waits=None):
    """Delete the load balancer (deletion protection off first: AWS refuses to delete a protected one,
    OperationNotPermitted, Elastic Load Balancing API reference, DeleteLoadBalancer) and wait until it
    is gone, or add that wait to `waits` (the uninstall waits for its slow deletes together)."""
    run.aws.call("elbv2", "modify_load_balancer_attributes", "load balancer %s" % name, ignore=NOT_FOUND,
                 LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}])
    run.aws.call("elbv2", "delete_load_balancer", "load balancer %s" % name, ignore=NOT_FOUND, LoadBalancerArn=arn)
    wait = ("load balancer %s to be deleted" % name, lambda: gone(run.aws, name, arn))
    if waits is None:
        run.deadline.wait_for(*wait)
    else:
        waits.append(wait)


def ensure(run, subnets, router_sg):
    """The load balancer in `subnets` behind `router_sg`, and its listener; sets run.out["load_balancer"]."""
    name, lb = run.names.load_balancer, run.state.load_balancer
    scheme = "internal" if run.wanted["internal_only"] else "internet-facing"
    if lb is not None and lb.get("Scheme") != scheme:
        arn = lb["LoadBalancerArn"]
        run.plan.change("load_balancer", name, "replace", lambda: delete(run, name, arn),
                        detail={"scheme": {"before": lb.get("Scheme"), "after": scheme}})
        lb, run.state.listeners = None, []
    if lb is None:
        arn = _create(run, name, subnets, router_sg, scheme)
    else:
        arn = lb["LoadBalancerArn"]
        run.out["load_balancer"] = _out(run, arn, lb.get("DNSName"))
        _converge(run, lb, subnets, router_sg)
    _ensure_listeners(run, arn)


def _attributes(run):
    return L.load_balancer_attributes(run.names.log_bucket)


def bucket_not_ready(error):
    """Whether ModifyLoadBalancerAttributes was refused because Elastic Load Balancing could not yet
    write to the access logs' bucket. It checks so when access logs are turned on, and a bucket policy
    just written takes up to a minute to count there: InvalidConfigurationRequest "Access Denied for
    bucket: <bucket>. Please check S3bucket permission", or "S3Bucket validation transient issue"
    (hashicorp/terraform-provider-aws#12010, where 30 s did not suffice and 60 s did;
    cn-terraform/terraform-aws-ecs-fargate#49). The same code for any other reason is a real mistake."""
    err = error.response.get("Error", {})
    message = err.get("Message", "")
    return err.get("Code") == "InvalidConfigurationRequest" and (
        "Access Denied for bucket" in message or "S3Bucket validation transient issue" in message)


# How long ELB's refusal of the access logs' bucket is retried: twice the minute reported above (the
# eight attempts of other errors wait about 35 s in all, their backoff being jittered).
BUCKET_NOT_READY_SECONDS = 120


def _set_attributes(aws, name, arn, attributes):
    aws.call("elbv2", "modify_load_balancer_attributes", "load balancer %s" % name, LoadBalancerArn=arn,
             Attributes=tag_list(attributes), retry_when=bucket_not_ready, retry_for=BUCKET_NOT_READY_SECONDS)


def _create(run, name, subnets, router_sg, scheme):
    """A new load balancer: its attributes at once, but the access logs at the end of the converge
    (run.later). ELB refuses them until the log bucket's policy, written at the start of the run,
    counts for it (bucket_not_ready: up to a minute on AWS); turned on last, that wait overlaps the
    rest of the converge instead of holding up the launch template and the group. A run killed in
    between leaves them off; the next run's attribute comparison turns them on."""
    def create():
        created = run.aws.call("elbv2", "create_load_balancer", "load balancer %s" % name, Name=name, Subnets=subnets,
                               SecurityGroups=[router_sg], Scheme=scheme, Type="application", IpAddressType="ipv4",
                               Tags=tag_list(run.tags))["LoadBalancers"][0]
        arn = created["LoadBalancerArn"]
        attributes = _attributes(run)
        logs = {k: v for k, v in attributes.items() if k.startswith("access_logs.")}
        _set_attributes(run.aws, name, arn, {k: v for k, v in attributes.items() if k not in logs})
        run.later.append(lambda: _set_attributes(run.aws, name, arn, logs))
        return created
    created = run.plan.change("load_balancer", name, "create", create)
    run.out["load_balancer"] = _out(run, created["LoadBalancerArn"] if created else CHECK_MODE_ID,
                                    created["DNSName"] if created else None)
    return run.out["load_balancer"]["arn"]


def _out(run, arn, dns_name):
    """The router as the run leaves it (the rack's `load_balancer`, as status.lb_dict reads it)."""
    attrs = _attributes(run)
    wanted = L.listeners(run.wanted.get("certificate_arn"))
    return {"arn": arn, "dns_name": dns_name,
            "access_logs": "s3://%s/%s" % (attrs["access_logs.s3.bucket"], attrs["access_logs.s3.prefix"]),
            "deletion_protection": True,
            "listeners": [{"port": port, "protocol": wanted[port][0], "action": wanted[port][1]["Type"]}
                          for port in sorted(wanted)]}


def _converge(run, lb, subnets, router_sg):
    name, arn, aws, plan = run.names.load_balancer, lb["LoadBalancerArn"], run.aws, run.plan
    current_subnets = {z["SubnetId"] for z in lb.get("AvailabilityZones", [])}
    if current_subnets != set(subnets):
        plan.change("load_balancer", name, "update", lambda: aws.call(
            "elbv2", "set_subnets", "load balancer %s" % name, LoadBalancerArn=arn, Subnets=subnets),
            detail={"subnets": {"before": sorted(current_subnets), "after": sorted(subnets)}})
    if set(lb.get("SecurityGroups", [])) != {router_sg}:
        plan.change("load_balancer", name, "update", lambda: aws.call(
            "elbv2", "set_security_groups", "load balancer %s" % name, LoadBalancerArn=arn,
            SecurityGroups=[router_sg]), detail={"security_groups": [router_sg]})
    sync_tags(plan, "load_balancer", name, run.state.lb_tags, run.tags,
              lambda s: aws.call("elbv2", "add_tags", "load balancer %s" % name, ResourceArns=[arn], Tags=tag_list(s)),
              lambda u: aws.call("elbv2", "remove_tags", "load balancer %s" % name, ResourceArns=[arn], TagKeys=u))
    current = lb.get("attributes") or {}
    differ = {k: v for k, v in _attributes(run).items() if current.get(k) != v}
    if differ:
        plan.change("load_balancer", name, "update", lambda: _set_attributes(aws, name, arn, differ),
                    detail={"attributes": differ})


def _ensure_listeners(run, lb_arn):
    """Each wanted listener created or put right (protocol, default action, certificate, TLS policy);
    a listener on another port (443 once the certificate is removed) deleted. Port 80 is put right
    before 443 is deleted, so that it never redirects to a door that is gone."""
    wanted = L.listeners(run.wanted.get("certificate_arn"))
    existing = {x.get("Port"): x for x in run.state.listeners if isinstance(x, dict)}
    for port in sorted(wanted, reverse=True):  # 443 made before 80 redirects to it
        _ensure_listener(run, lb_arn, port, wanted[port], existing.get(port))
    for port in sorted(set(existing) - set(wanted)):
        name, arn = "%s:%d" % (run.names.load_balancer, port), existing[port]["ListenerArn"]
        run.plan.change("listener", name, "delete", lambda name=name, arn=arn: run.aws.call(
            "elbv2", "delete_listener", "listener %s" % name, ignore=NO_LISTENER, ListenerArn=arn))


def _action_key(action):
    """What we compare of a default action (AWS adds defaults to what it was given)."""
    action = action or {}
    fixed = action.get("FixedResponseConfig") or {}
    redirect = action.get("RedirectConfig") or {}
    return (action.get("Type"), str(fixed.get("StatusCode") or ""), redirect.get("Protocol"),
            str(redirect.get("Port") or ""), redirect.get("StatusCode"))


def _ensure_listener(run, lb_arn, port, wanted, listener):
    protocol, action, tls = wanted
    name, aws, plan = "%s:%d" % (run.names.load_balancer, port), run.aws, run.plan
    settings = dict(Protocol=protocol, DefaultActions=[action], **(tls or {}))
    if listener is None:
        plan.change("listener", name, "create", lambda: aws.call(
            "elbv2", "create_listener", "listener %s" % name, LoadBalancerArn=lb_arn, Port=port,
            Tags=tag_list(run.tags), **settings), detail={"protocol": protocol} if tls else None)
        return
    arn = listener["ListenerArn"]
    sync_tags(plan, "listener", name, listener.get("tags", {}), run.tags,
              lambda s: aws.call("elbv2", "add_tags", "listener %s" % name, ResourceArns=[arn], Tags=tag_list(s)),
              lambda u: aws.call("elbv2", "remove_tags", "listener %s" % name, ResourceArns=[arn], TagKeys=u))
    current_action = (listener.get("DefaultActions") or [{}])[0]
    certificates = [c.get("CertificateArn") for c in listener.get("Certificates") or []]
    differ = {}
    if listener.get("Protocol") != protocol:
        differ["protocol"] = protocol
    if _action_key(current_action) != _action_key(action):
        differ["default_action"] = "redirect to HTTPS" if action["Type"] == "redirect" else "fixed 404"
    if tls and listener.get("SslPolicy") != tls["SslPolicy"]:
        differ["ssl_policy"] = tls["SslPolicy"]
    if tls and certificates[:1] != [tls["Certificates"][0]["CertificateArn"]]:
        differ["certificate"] = tls["Certificates"][0]["CertificateArn"]
    if differ:
        plan.change("listener", name, "update", lambda: aws.call(
            "elbv2", "modify_listener", "listener %s" % name, ListenerArn=arn, Port=port, **settings), detail=differ)


def active(run, arn):
    """Whether the load balancer is active; RackError when AWS says it failed."""
    return state(run, arn) == "active"


def state(run, arn):
    """The load balancer's state (provisioning, active, active_impaired); RackError when AWS says it failed."""
    lbs = run.aws.call("elbv2", "describe_load_balancers", "load balancer %s" % arn,
                       LoadBalancerArns=[arn])["LoadBalancers"]
    code = lbs[0]["State"]["Code"]
    if code == "failed":
        raise RackError("load balancer %s failed: %s" % (arn, lbs[0]["State"].get("Reason")),
                        resource="load balancer %s" % arn)
    return code


def remove(run, waits):
    lb = run.state.load_balancer
    if lb is None:
        return
    name, arn = lb["LoadBalancerName"], lb["LoadBalancerArn"]
    run.plan.change("load_balancer", name, "delete", lambda: delete(run, name, arn, waits))
