# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rack_info: one rack (by name: the full reading of reading.read_rack, listener included) or
every rack of the region (the bulk read of fleet.py), and the source the racks are listed under
(`local` for the local AWS). Parts that cannot be read leave a rack's status unknown, with a
warning; racks that cannot be listed at all fail the module."""

from __future__ import annotations

from .context import Identity
from .errors import AWSCallError, RackError
from .fleet import read_regions, read_source
from .naming import RackNames
from .parts import compute
from .reading import read_rack
from .record import recorded_status
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


def read_racks(aws, region, name=None, images=None):
    """The rack dicts of one rack (by name, a full reading) or of every rack in the region (a full
    reading each: what the bulk read of fleet.py is checked against). With a name, `images` (a dict)
    receives the rack's image status (compute.image_status)."""
    identity = Identity(aws)
    racks = []
    images = {} if images is None else images
    for rack in [name] if name else list_rack_names(aws, region, identity):
        state = read_rack(aws, rack, region, identity)
        if state.exists:
            racks.append(rack_dict(state, region))
            if name:
                # whether AWS published a newer ECS-optimised AMI than the rack's (one rack only: two calls)
                images[rack] = compute.image_status(aws, state)
    return racks


def serve(aws, region, params, _check_mode):
    """The rack_info module's run: (result, warnings)."""
    name = params.get("name")
    source = read_source(aws)
    warnings = []
    racks = None
    images = {}
    if name is not None:
        try:
            racks = read_racks(aws, region, name, images)
        except AWSCallError as e:
            warnings.append("rack %s could not be read in full (%s); its status is from a partial read" % (name, e.msg))
    if racks is None:
        read = read_regions(lambda r: aws, [region], source["account_id"], name=name)[region]
        if read["error"]:
            raise RackError(read["error"])
        warnings += read["warnings"]
        racks = read["racks"]
    result = {"changed": False, "racks": racks, "source": source, "aws_calls": len(aws.calls)}
    if images.get(name):
        result["image"] = images[name]
    return result, warnings
