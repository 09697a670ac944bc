# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rack's record: what a rack remembers about itself, as tags of its bucket.

- its parameters (`convox:instance_type`, `convox:instance_count`, ...), so that an option left
  unset keeps the recorded value;
- the collection version that last converged it (`convox:version`);
- its run status (`convox:status`: installing, updating, uninstalling while a run works on it;
  running after a run finished; uninstalled on a bucket kept by an uninstall);
- while a run works on it, when that status stops being believed (`convox:lease`: an epoch
  second, the run's wait_timeout plus a margin). A run that dies leaves its status behind; past
  that second the status is stale and the rack's status is read from what exists. This is not
  the run lock (lock.py), which serialises runs; it only tells readers how long to believe the
  recorded status.

Why tags and not an object: the bucket's TLS-only policy refuses every object call over plain
HTTP (the local AWS); tags are bucket-level, and the tagging API lists every rack of a region in
one call by them."""

from __future__ import annotations

import re
import time

from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

from .errors import RackError
from .params import PARAMETER_KINDS
from .tags import STATE_TAG_PREFIX, tag_list
from .version import COLLECTION_VERSION, compare_versions

STATUS_TAG = STATE_TAG_PREFIX + "status"
VERSION_TAG = STATE_TAG_PREFIX + "version"
# The tag key is kept from the first release (racks carry it); in code it is the status expiry.
STATUS_EXPIRES_TAG = STATE_TAG_PREFIX + "lease"
STATUS_EXPIRY_MARGIN = 300
RUN_STATUSES = ("installing", "updating", "uninstalling")
# What the last run was doing when it failed, and its error (cleared by the next run that finishes).
ERROR_TAG = STATE_TAG_PREFIX + "error"
TAG_VALUE_RE = re.compile(r"[^\w .:/=+\-@]")


def status_expires(wait_timeout, now=None):
    """The epoch second (a tag value) until which a run that starts now may still be working."""
    return str(int((now if now is not None else time.time()) + wait_timeout + STATUS_EXPIRY_MARGIN))


def status_current(tags, now=None):
    """Whether a recorded run status is still believed (its run may still be working)."""
    try:
        until = int((tags or {}).get(STATUS_EXPIRES_TAG, "0"))
    except ValueError:
        return False
    return until > (now if now is not None else time.time())


def recorded_status(tags):
    return (tags or {}).get(STATUS_TAG)


def recorded_version(tags):
    return (tags or {}).get(VERSION_TAG)


def check_version(rack, tags, allow_downgrade):
    """The version recorded on the rack's bucket (None for a rack with no bucket), refused before any write
    when this collection is older than it, or when it is missing or not a version (then nobody can tell
    whether this collection is older), unless `allow_downgrade`. An older recorded version is an upgrade."""
    if tags is None:
        return None
    recorded = recorded_version(tags)
    if recorded == COLLECTION_VERSION:
        return recorded
    try:
        if recorded is not None and compare_versions(recorded, COLLECTION_VERSION) < 0:
            return recorded
        why = "was last converged by convox.rack %s, newer than this collection (convox.rack %s)" % (
            recorded, COLLECTION_VERSION)
    except ValueError:
        why = ("records version %r (tag %s of its bucket), which is not a semantic version: whether it is newer than"
               " this collection (convox.rack %s) cannot be told" % (recorded, VERSION_TAG, COLLECTION_VERSION))
    if recorded is None:
        why = ("records no version (tag %s of its bucket): whether a newer release than this collection (convox.rack"
               " %s) converged it cannot be told" % (VERSION_TAG, COLLECTION_VERSION))
    if not allow_downgrade:
        raise RackError(
            "rack %s %s. Converging it with an older release could undo what the newer one changed: run a release at"
            " least as new as the rack's, or set allow_downgrade: true to converge it with convox.rack %s anyway;"
            " nothing was changed" % (rack, why, COLLECTION_VERSION))
    return recorded


def version_change(previous):
    """The plan's action for a rack recorded at `previous` and converged by this collection:
    upgrade, downgrade (allowed by allow_downgrade), or None when the versions are the same."""
    if previous == COLLECTION_VERSION:
        return None
    try:
        return "downgrade" if previous is not None and compare_versions(previous, COLLECTION_VERSION) > 0 else "upgrade"
    except ValueError:
        return "upgrade"


def parameters_to_tags(params):
    """Encode parameters as bucket tags (values restricted to AWS tag characters)."""
    tags = {}
    for key, kind in PARAMETER_KINDS.items():
        value = params[key]
        if value == "":
            continue  # an empty tag value is not kept by every S3 implementation: absent means default
        if kind is bool:
            value = "true" if value else "false"
        tags[STATE_TAG_PREFIX + key] = str(value)
    return tags


def parameters_from_tags(tags):
    out = {}
    for key, kind in PARAMETER_KINDS.items():
        raw = (tags or {}).get(STATE_TAG_PREFIX + key)
        if raw is None:
            continue
        if kind is bool:
            out[key] = raw == "true"
        elif kind is int:
            try:
                out[key] = int(raw)
            except ValueError:
                continue
        else:
            out[key] = raw
    return out


def record_tags(base_tags, wanted, status, wait_timeout):
    """Every tag of the rack's bucket for a run that leaves the rack in `status`."""
    tags = dict(base_tags)
    tags.update(parameters_to_tags(wanted))
    tags[VERSION_TAG] = COLLECTION_VERSION
    tags[STATUS_TAG] = status
    if status != "running":
        tags[STATUS_EXPIRES_TAG] = status_expires(wait_timeout)
    return tags


def with_status(tags, status, wait_timeout=None):
    """The bucket's tags with a new run status (and its expiry while a run works; none after)."""
    tags = dict(tags)
    tags[STATUS_TAG] = status
    if wait_timeout is not None:
        tags[STATUS_EXPIRES_TAG] = status_expires(wait_timeout)
    else:
        tags.pop(STATUS_EXPIRES_TAG, None)
    return tags


def mark_failed(run, step, error):
    """After a run failed past its first write: record `failed`, with the step and the error, on the
    rack's bucket (if there is one by then), so that the rack reads `failed` rather than a run status
    that nothing holds any more. Best effort: the run's own error is what the user is told."""
    bucket = run.state.bucket
    # An install's bucket was created by this run, with the record's tags (a put on no bucket fails).
    tags = dict(bucket["tags"]) if bucket is not None else record_tags(run.tags, run.wanted, "failed", 0)
    tags = with_status(tags, "failed")
    tags[ERROR_TAG] = TAG_VALUE_RE.sub(" ", "%s: %s" % (step or "run", error))[:256]
    put_tags(run.aws, run.names.bucket, tags)
    if bucket is not None:
        bucket["tags"] = tags


def put_tags(aws, bucket, tags, retry_on=()):
    """Replace the bucket's whole tag set (S3's tagging has no add or remove)."""
    aws.call("s3", "put_bucket_tagging", "bucket %s" % bucket, Bucket=bucket, Tagging={"TagSet": tag_list(tags)},
             retry_on=retry_on)


def mark(run, status):
    """Before the first write of a run: record on the bucket (if any) that a run holds the rack."""
    bucket = run.state.bucket
    if bucket is None:
        return
    tags = with_status(bucket["tags"], status, run.deadline.seconds)
    put_tags(run.aws, bucket["name"], tags)
    bucket["tags"] = tags


def finish(run, wanted, base_tags, previous_version=None):
    """At the end of a run: record parameters, version, tags and `running` if they differ. On a rack that
    recorded another version (`previous_version`, check_version's), the record is the plan's one entry
    for the upgrade (or downgrade): `rack <name> upgrade`, the versions and the tags in its changes."""
    final = record_tags(base_tags, wanted, "running", run.deadline.seconds)
    bucket = run.state.bucket
    current = bucket["tags"] if bucket is not None else None
    if current == final:
        return

    def apply():
        put_tags(run.aws, run.names.bucket, final)

    if current is None:
        run.plan.change("bucket", run.names.bucket, "create", apply)
        return
    to_set, to_unset = compare_aws_tags(current, final, purge_tags=True)
    detail = {"tags": {"set": to_set, "unset": to_unset}}
    change = version_change(previous_version) if previous_version is not None and VERSION_TAG in to_set else None
    if change:
        detail["version"] = {"before": previous_version, "after": COLLECTION_VERSION}
        run.plan.change("rack", run.names.rack, change, apply, detail=detail)
    else:
        run.plan.change("bucket", run.names.bucket, "update", apply, detail=detail)
