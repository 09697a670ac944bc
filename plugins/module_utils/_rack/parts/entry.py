# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Entry: the application load balancer convox-<rack> (the router: the only door from the
internet, or internal with internal_only) and its HTTP listener, whose default action is a fixed
404 until apps route through it. Found by name, confirmed by tags (one DescribeTags for the
load balancer and its listeners)."""

from __future__ import annotations

from ..errors import RackError
from ..plan import CHECK_MODE_ID
from ..tags import confirm, sync_tags, tag_dict, tag_list

LISTENER_PORT = 80
# Set right after the load balancer is created (AWS takes no attributes at creation).
LB_ATTRIBUTES = {"routing.http.drop_invalid_header_fields.enabled": "true"}
NOT_FOUND_404 = {
    "Type": "fixed-response",
    "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no such app"},
}
NOT_FOUND = ("LoadBalancerNotFound",)


def read(aws, state):
    names = state.names
    name = names.load_balancer
    lbs = aws.call("elbv2", "describe_load_balancers", "load balancer %s" % name, ignore=NOT_FOUND, Names=[name])
    if not (lbs and lbs.get("LoadBalancers")):
        return
    lb = lbs["LoadBalancers"][0]
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
    state.load_balancer = lb
    state.listeners = listeners


def gone(aws, name, arn=None):
    """Whether the load balancer no longer exists (by ARN when known, else by name)."""
    by = {"LoadBalancerArns": [arn]} if arn else {"Names": [name]}
    found = aws.call("elbv2", "describe_load_balancers", "load balancer %s" % name, ignore=NOT_FOUND, **by)
    return not (found or {}).get("LoadBalancers")


def delete(run, name, arn, waits=None):
    """Delete the load balancer (deletion protection off first) and wait until it is gone, or add
    that wait to `waits` (the uninstall waits for its slow deletes together)."""
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
        run.out["load_balancer"] = {"arn": arn, "dns_name": lb.get("DNSName")}
        _converge(run, lb, subnets, router_sg)
    _ensure_listener(run, arn)


def _set_attributes(aws, name, arn):
    aws.call("elbv2", "modify_load_balancer_attributes", "load balancer %s" % name, LoadBalancerArn=arn,
             Attributes=tag_list(LB_ATTRIBUTES))


def _create(run, name, subnets, router_sg, scheme):
    def create():
        created = run.aws.call("elbv2", "create_load_balancer", "load balancer %s" % name, Name=name, Subnets=subnets,
                               SecurityGroups=[router_sg], Scheme=scheme, Type="application", IpAddressType="ipv4",
                               Tags=tag_list(run.tags))["LoadBalancers"][0]
        _set_attributes(run.aws, name, created["LoadBalancerArn"])
        return created
    created = run.plan.change("load_balancer", name, "create", create)
    run.out["load_balancer"] = {"arn": created["LoadBalancerArn"] if created else CHECK_MODE_ID,
                                "dns_name": created["DNSName"] if created else None}
    return run.out["load_balancer"]["arn"]


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
    if run.last_run_unfinished():
        plan.change("load_balancer", name, "update", lambda: _set_attributes(aws, name, arn),
                    detail={"attributes": LB_ATTRIBUTES, "reason": "last run unfinished"})


def _ensure_listener(run, lb_arn):
    name, aws, plan = "%s:%d" % (run.names.load_balancer, LISTENER_PORT), run.aws, run.plan
    listener = [x for x in run.state.listeners if x.get("Port") == LISTENER_PORT]
    if not listener:
        plan.change("listener", name, "create", lambda: aws.call(
            "elbv2", "create_listener", "listener %s" % name, LoadBalancerArn=lb_arn, Protocol="HTTP",
            Port=LISTENER_PORT, DefaultActions=[NOT_FOUND_404], Tags=tag_list(run.tags)))
        return
    current = listener[0].get("DefaultActions") or [{}]
    cfg = current[0].get("FixedResponseConfig") or {}
    arn = listener[0]["ListenerArn"]
    sync_tags(plan, "listener", name, listener[0].get("tags", {}), run.tags,
              lambda s: aws.call("elbv2", "add_tags", "listener %s" % name, ResourceArns=[arn], Tags=tag_list(s)),
              lambda u: aws.call("elbv2", "remove_tags", "listener %s" % name, ResourceArns=[arn], TagKeys=u))
    if current[0].get("Type") != "fixed-response" or str(cfg.get("StatusCode")) != "404":
        plan.change("listener", name, "update", lambda: aws.call(
            "elbv2", "modify_listener", "listener %s" % name, ListenerArn=arn, DefaultActions=[NOT_FOUND_404]),
            detail={"default_action": "fixed 404"})


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
