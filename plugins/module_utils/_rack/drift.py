# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift in words: the changes of an update's check-mode plan (install.checked_update), each said as
what differs in AWS from what the rack records, one item per difference, for instance
`security group sg-0abc (rack router): ingress 0.0.0.0/0 port 22 added outside the rack` or
`Auto Scaling group convox-production: desired 5, recorded 3`.

Pure: the plan's changes and the rack's state (RackState, for the ids' roles and zones) in, a list
of dicts out. What the plan finds is what an update repairs: the report and the repair are one code."""

from __future__ import annotations

import ast

from .plan import CHECK_MODE_ID, KIND_WORDS
from .record import ERROR_TAG, STATUS_EXPIRES_TAG, STATUS_TAG, VERSION_TAG
from .tags import tag_dict

# The run's own bookkeeping on the rack's bucket (record.py): an update rewrites it, yet nothing
# outside the rack changed it. A recorded version older than the collection's is an upgrade, not drift.
RECORD_ONLY = (STATUS_TAG, STATUS_EXPIRES_TAG, ERROR_TAG, VERSION_TAG)
WORDS = dict(KIND_WORDS, security_group="security group", route_table="route table", subnet="subnet",
             internet_gateway="internet gateway", launch_template="launch template", load_balancer="load balancer",
             log_group="log group", kms_key="KMS key", capacity_provider="capacity provider", bucket="bucket",
             instance_profile="instance profile", listener="listener", instances="instances of")
GROUP_SIZES = {"DesiredCapacity": "desired", "MinSize": "minimum", "MaxSize": "maximum"}
BUCKET_SETTINGS = {"versioning": "versioning", "encryption": "default encryption", "ownership": "object ownership",
                   "public_access_block": "public access block", "logging": "access logging"}


def describe(changes, state):
    """[{"resource", "id", "name", "what", "message", "action"}, ...] for the plan's changes."""
    out = []
    for change in changes:
        for what, words, extra in _differences(change, state):
            label = _label(change, state)
            item = {"resource": change["resource"], "action": change["action"], "what": what,
                    "message": "%s: %s" % (label, words)}
            item.update(_ids(change, state))
            item.update(extra)
            out.append(item)
    return out


# -- which resource -------------------------------------------------------------------------------------------------
def _ids(change, state):
    """{"id": the AWS id when the plan names the resource by it, "name": the rack's name for it}."""
    name = change["name"]
    if change["action"] == "create" or name == CHECK_MODE_ID:
        return {"id": None, "name": name}
    kind = change["resource"]
    if kind == "security_group":
        role = _sg_role(state, name)
        return {"id": name, "name": "%s-%s" % (state.names.base, role) if role else None}
    if kind in ("vpc", "route_table", "subnet", "internet_gateway", "nat_gateway", "elastic_ip"):
        return {"id": name, "name": _ec2_name(state, kind, name)}
    return {"id": None, "name": name}


def _label(change, state):
    kind, name = change["resource"], change["name"]
    words = WORDS.get(kind, kind.replace("_", " "))
    if kind == "nat_gateway" and change["action"] == "create":
        zone = _nat_zone(state, name)
        return "NAT gateway for %s" % zone if zone else "NAT gateway %s" % name
    if kind == "security_group" and change["action"] != "create":
        role = _sg_role(state, name)
        return "security group %s%s" % (name, " (rack %s)" % role if role else "")
    if kind == "route_table" and change["action"] != "create":
        tags = tag_dict((_by_id(state.route_tables, "RouteTableId", name) or {}).get("Tags"))
        where = " ".join(filter(None, (tags.get("convox:tier"), tags.get("convox:index"))))
        return "route table %s%s" % (name, " (%s)" % where if where else "")
    return "%s %s" % (words, name)


def _sg_role(state, group_id):
    for role, group in (state.security_groups or {}).items():
        if group.get("GroupId") == group_id:
            return role
    return None


def _by_id(items, key, value):
    for item in items or []:
        if item.get(key) == value:
            return item
    return None


def _ec2_name(state, kind, rid):
    items = {"vpc": (state.vpcs, "VpcId"), "route_table": (state.route_tables, "RouteTableId"),
             "subnet": (state.subnets, "SubnetId"), "internet_gateway": (state.igws, "InternetGatewayId"),
             "nat_gateway": (state.nat_gateways, "NatGatewayId"), "elastic_ip": (state.addresses, "AllocationId")}
    found = _by_id(*items[kind], value=rid) if kind in items else None
    return tag_dict((found or {}).get("Tags")).get("Name")


def _nat_zone(state, name):
    """The zone of the NAT gateway `<base>-nat-<i>`: that of public subnet i."""
    try:
        index = int(name.rsplit("-", 1)[1])
        return state.subnets_of("public")[index]["AvailabilityZone"]
    except (ValueError, IndexError, KeyError):
        return None


# -- what differs ---------------------------------------------------------------------------------------------------
def _differences(change, state):
    """[(what, words, extra keys)] of one plan change."""
    action, detail = change["action"], change.get("changes") or {}
    reason = detail.get("reason")
    if action == "create":
        return [("missing", "missing", {})]
    if action == "delete":
        return [("extra", "not the rack's (%s); an update deletes it" % reason if reason else
                 "not the rack's; an update deletes it", {})]
    if action == "replace":
        return [("outdated", "%s; an update replaces %s" % (
            reason or "of an older type or image", "them" if change["resource"] == "instances" else "it"), {})]
    out = []
    for key, value in detail.items():
        if key == "reason":
            continue
        out += _update(change, state, key, value)
    if reason:
        out = [(what, "%s (%s)" % (words, reason), extra) for what, words, extra in out] or [("other", reason, {})]
    return out


def _update(change, state, key, value):
    if key == "tags":
        return _tags(change, value)
    if key in ("ingress_remove", "ingress_add"):
        return [("ingress", _rule(state, rule) + (" added outside the rack" if key == "ingress_remove" else
                                                  " removed outside the rack"), {"rule": _rule(state, rule)})
                for rule in value]
    if key in GROUP_SIZES and isinstance(value, dict):
        return [(key, "%s %s, recorded %s" % (GROUP_SIZES[key], value.get("before"), value.get("after")),
                 {"before": value.get("before"), "after": value.get("after")})]
    if change["resource"] == "bucket" and key in BUCKET_SETTINGS and isinstance(value, dict) and "after" in value:
        before, after = value.get("before"), value.get("after")
        return [(key, "%s %s, wanted %s" % (BUCKET_SETTINGS[key], _setting(key, before), _setting(key, after)),
                 {"before": before, "after": after})]
    if key == "route":
        return [("route", _route(change, state, value), {})]
    if key in ("default_ingress", "default_egress"):
        return [("rules", "%s rule %s of the VPC's default group (a rack's has none)" % (key.split("_")[1], rule),
                 {"rule": rule}) for rule in value]
    if change["resource"] == "network_acl" and key == "ingress":
        return [("ingress", "inbound %s (the rack's default network ACL rules)" % value, {})]
    if key == "associate":
        return [("association", "subnet %s not associated" % value, {})]
    if key == "attributes":
        return [("attributes", "%s set again" % ", ".join(sorted(value)), {})]
    if isinstance(value, dict) and "after" in value:
        return [(key, "%s %s, wanted %s" % (key, _short(value.get("before")), _short(value.get("after"))),
                 {"before": value.get("before"), "after": value.get("after")})]
    return [(key, "%s differs, wanted %s" % (key.replace("_", " "), _short(value)), {})]


def _tags(change, detail):
    out = []
    before = detail.get("before") or {}
    for key in sorted(detail.get("unset") or []):
        if change["resource"] == "bucket" and key in RECORD_ONLY:
            continue
        out.append(("tag", "tag %s added outside the rack" % key, {"tag": key}))
    for key, wanted in sorted((detail.get("set") or {}).items()):
        if change["resource"] == "bucket" and key in RECORD_ONLY:
            continue
        if key in before:
            out.append(("tag", "tag %s=%s, wanted %s" % (key, before[key], wanted), {"tag": key}))
        else:
            out.append(("tag", "tag %s removed" % key, {"tag": key}))
    return out


def _rule(state, rule):
    """('tcp', 22, 22, 'cidr', '0.0.0.0/0') -> "ingress 0.0.0.0/0 port 22"."""
    try:
        proto, low, high, kind, source = ast.literal_eval(rule) if isinstance(rule, str) else rule
    except (ValueError, SyntaxError, TypeError):
        return "ingress %s" % (rule,)
    if kind == "sg":
        role = _sg_role(state, source)
        source = "%s%s" % (source, " (rack %s)" % role if role else "")
    if str(proto) == "-1":
        ports = "all traffic"
    else:
        ports = ("port %s" % low) if low == high else ("ports %s-%s" % (low, high))
        if str(proto) not in ("tcp", "6"):
            ports = "%s %s" % (proto, ports)
    return "ingress %s %s" % (source, ports)


def _setting(key, value):
    if value in (None, "", {}):
        return "none"
    if key == "public_access_block" and isinstance(value, dict):
        off = sorted(k for k, v in value.items() if not v)
        return ("%s off" % ", ".join(off)) if off else "all four flags on"
    if isinstance(value, dict) and key == "encryption":
        return value.get("sse", "on")
    return _short(value)


def _route(change, state, route):
    table = _by_id(state.route_tables, "RouteTableId", change["name"]) or {}
    dest = route.get("DestinationCidrBlock", "0.0.0.0/0")
    target = [v for k, v in route.items() if k != "DestinationCidrBlock"]
    wanted = target[0] if target else "?"
    wanted = "a NAT gateway an update makes" if wanted == CHECK_MODE_ID else wanted
    current = [r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == dest]
    if not current:
        return "route %s missing, wanted to %s" % (dest, wanted)
    now = current[0]
    if now.get("State") == "blackhole":
        gone = now.get("NatGatewayId") or now.get("GatewayId") or "its target"
        return "route %s to %s goes nowhere (blackhole), wanted to %s" % (dest, gone, wanted)
    now_target = now.get("NatGatewayId") or now.get("GatewayId") or "?"
    if now.get("NatGatewayId") and now["NatGatewayId"] not in {n.get("NatGatewayId") for n in state.nat_gateways}:
        now_target += " (deleted)"
    return "route %s to %s, wanted to %s" % (dest, now_target, wanted)


def _short(value, limit=120):
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
