# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rack_info: one rack (by name: the full reading of reading.read_rack, listener included) or
every rack of the region (the bulk read of fleet.py), and the source the racks are listed under
(`local` for the local AWS). Parts that cannot be read leave a rack's status unknown, with a
warning; racks that cannot be listed at all fail the module."""

from __future__ import annotations

from . import drift as words
from .context import Identity
from .errors import AWSCallError, RackError
from .fleet import read_regions, read_source
from .install import checked_update
from .naming import RackNames
from .parts import compute, refresh
from .reading import read_rack
from .record import RUN_STATUSES, recorded_status, status_current
from .status import rack_dict
from .tags import tag_dict


def list_rack_names(aws, region, identity):
    """Every rack in a region, found by its bucket's tags (System=convox, Type=rack), one by one.

    A bucket counts only under the name derived for this account and region, so a listing that
    reaches other regions' buckets does not show their racks twice."""
    found = aws.paginate("resourcegroupstaggingapi", "get_resources", "racks in %s" % region,
                         TagFilters=[{"Key": "System", "Values": ["convox"]}, {"Key": "Type", "Values": ["rack"]}],
                         ResourceTypeFilters=["s3"])
    names = []
    for res in found.get("ResourceTagMappingList", []):
        tags = tag_dict(res.get("Tags"))
        rack = tags.get("Rack")
        if recorded_status(tags) == "uninstalled" or not rack or rack in names:
            continue
        if res["ResourceARN"].split(":")[-1] == RackNames(rack, region, identity.account).bucket:
            names.append(rack)
    return sorted(names)


def read_racks(aws, region, name=None):
    """The rack dicts of one rack (by name, a full reading) or of every rack in the region (a full
    reading each: what the bulk read of fleet.py is checked against)."""
    return [rack for rack, _state in _read_states(aws, region, Identity(aws), name)]


def _read_states(aws, region, identity, name=None):
    out = []
    for rack in [name] if name else list_rack_names(aws, region, identity):
        state = read_rack(aws, rack, region, identity)
        if state.exists:
            out.append((rack_dict(state, region), state))
    return out


def rack_drift(aws, region, identity, name, state=None):
    """The drift of one rack: {"rack", "items" (drift.describe) or None, "reason" when there are none}.

    What an update with the rack's recorded parameters would change (install.checked_update: the
    check-mode plan, reads only). A rack that a run is installing, updating or uninstalling (its
    recorded status not yet expired) is not compared: items None, with the reason. A rack whose last
    run failed is compared: its drift is what that run left undone, which an update finishes."""
    try:
        state = state if state is not None else read_rack(aws, name, region, identity)
    except RackError as e:
        return {"rack": name, "items": None, "reason": "its drift could not be read: %s" % e.msg, "error": True}
    if not state.exists:
        return {"rack": name, "items": None, "reason": "no rack %s in %s" % (name, region)}
    status = state.recorded_status
    if status in RUN_STATUSES and status_current(state.tags):
        return {"rack": name, "items": None,
                "reason": "a run is %s the rack; its drift is read once the run ends" % status}
    try:
        run = checked_update(aws, region, identity, state)
    except RackError as e:
        return {"rack": name, "items": None, "reason": "its drift could not be read: %s" % e.msg, "error": True}
    found = {"rack": name, "items": [dict(item, rack=name) for item in words.describe(run.plan.changes, state)]}
    if status == "failed":
        found["reason"] = "its last run failed: the drift includes what that run left undone"
    return found


def _drift_result(drifts):
    """The module's drift keys from each rack's rack_drift."""
    items = [item for d in drifts for item in d["items"] or []]
    return {"drift": items, "drift_count": len(items),
            "drift_racks": [dict({k: d[k] for k in ("rack", "reason") if k in d},
                                 count=None if d["items"] is None else len(d["items"]), error=bool(d.get("error")))
                            for d in drifts]}


def serve(aws, region, params, _check_mode):
    """The rack_info module's run: (result, warnings)."""
    name = params.get("name")
    source = read_source(aws)
    warnings = []
    racks = None
    states = {}
    identity = image = refreshing = None
    if name is not None:
        try:
            identity = Identity(aws)
            read = _read_states(aws, region, identity, name)
            racks = [rack for rack, _state in read]
            states = {rack["name"]: state for rack, state in read}
            if read:
                # whether AWS published a newer ECS-optimised AMI than the rack's (one rack only: two calls)
                image = compute.image_status(aws, read[0][1])
                # an instance refresh replacing the instances now (a run with wait: false, a killed run,
                # or one started outside the collection): one call
                asg = read[0][1].asg
                if asg:
                    active = refresh.active(aws, asg["AutoScalingGroupName"])
                    refreshing = refresh.summary(active) if active else None
        except AWSCallError as e:
            warnings.append("rack %s could not be read in full (%s); its status is from a partial read" % (name, e.msg))
    if racks is None:
        read = read_regions(lambda r: aws, [region], source["account_id"], name=name)[region]
        if read["error"]:
            raise RackError(read["error"])
        warnings += read["warnings"]
        racks = read["racks"]
    result = {"changed": False, "racks": racks, "source": source}
    if image:
        result["image"] = image
    if name is not None and racks:
        result["instance_refresh"] = refreshing
    if params.get("drift"):
        identity = identity or Identity(aws)
        result.update(_drift_result([rack_drift(aws, region, identity, r["name"], states.get(r["name"]))
                                     for r in racks]))
    result["aws_calls"] = len(aws.calls)
    return result, warnings
