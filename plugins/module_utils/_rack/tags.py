# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tags: how every resource of a rack or app is recognised, and how its tags are converged.

AWS spells a tag list three ways ({"Key", "Value"}, {"key", "value"}, or a plain dict); these
helpers turn them into dicts and back. `confirm` is the one check made before adopting,
changing or deleting anything found: the resource must carry the owner's tags, whatever filter
found it (the local AWS ignores some server-side filters; a derived name may be taken)."""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

from .errors import RackError
from .naming import system_tags

# Tags the collection owns; users cannot set them through `tags`.
RESERVED_TAG_KEYS = ("System", "Rack", "Type", "App")
# The collection's own tags beyond the system ones (the rack's record, the parts' roles).
STATE_TAG_PREFIX = "convox:"


def tag_dict(tags, key="Key", value="Value"):
    return {t[key]: t.get(value, "") for t in tags or []}


def tag_list(tags, key="Key", value="Value"):
    return [{key: k, value: v} for k, v in sorted(tags.items())]


def ec2_filters(rack, extra=None):
    filters = [{"Name": "tag:%s" % k, "Values": [v]} for k, v in system_tags(rack).items()]
    return filters + list(extra or [])


def is_ours(tags, rack, kind="rack", app=None):
    return all((tags or {}).get(k) == v for k, v in system_tags(rack, kind, app).items())


def ours_only(items, rack, tags_key="Tags"):
    """The items (found by a tag filter) that really carry the rack's tags: AWS applies the
    filter, the local AWS may not (FIELD-NOTES: DescribeNatGateways ignores it)."""
    return [i for i in items if is_ours(tag_dict(i.get(tags_key)), rack)]


def confirm(tags, what, rack, kind="rack", app=None):
    """Refuse a resource found by its derived name that is not tagged as the rack's (or app's)."""
    if is_ours(tags, rack, kind, app):
        return
    if kind == "app":
        raise RackError(
            "%s exists but is not tagged as app %s of rack %s (System=convox, Rack=%s, Type=app, App=%s);"
            " refusing to adopt or delete it" % (what, app, rack, rack, app), resource=what)
    raise RackError(
        "%s exists but is not tagged as part of rack %s (System=convox, Rack=%s, Type=rack);"
        " refusing to adopt or delete it" % (what, rack, rack), resource=what)


def user_tags(tags):
    return {k: v for k, v in (tags or {}).items()
            if k not in RESERVED_TAG_KEYS and not k.startswith(STATE_TAG_PREFIX) and not k.startswith("aws:")}


def sync_tags(plan, kind, name, current, wanted, set_fn, unset_fn=None):
    """Converge one resource's tags (aws:* tags are left alone): one plan entry when they differ.
    set_fn(tags to set) and unset_fn(keys to remove); without unset_fn, set_fn(wanted) replaces
    the whole set (S3's tagging)."""
    to_set, to_unset = compare_aws_tags(current or {}, wanted, purge_tags=True)
    if not to_set and not to_unset:
        return

    def apply():
        if unset_fn is None:
            set_fn(wanted)
            return
        if to_unset:
            unset_fn(to_unset)
        if to_set:
            set_fn(to_set)
    detail = {"set": to_set, "unset": to_unset}
    changed = {k: current[k] for k in to_set if k in (current or {})}
    if changed:
        detail["before"] = changed  # the values it had (drift words them: "tag team: a, wanted b")
    plan.change(kind, name, "update", apply, detail={"tags": detail})


def sync_ec2_tags(aws, plan, kind, resource_id, current, wanted):
    """sync_tags for an EC2 resource (CreateTags / DeleteTags)."""
    what = "%s %s" % (kind, resource_id)
    sync_tags(plan, kind, resource_id, current, wanted,
              lambda s: aws.call("ec2", "create_tags", what, Resources=[resource_id], Tags=tag_list(s)),
              lambda u: aws.call("ec2", "delete_tags", what, Resources=[resource_id], Tags=[{"Key": k} for k in u]))


def ec2_tag_spec(resource_type, tags):
    return [{"ResourceType": resource_type, "Tags": tag_list(tags)}]
