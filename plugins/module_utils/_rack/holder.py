# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who holds a rack's run lock, as a reader sees it: the lock's name and value, whether its holder
still protects anything (`stale`), and the reads of it that the status needs (`read_one` for one
rack, `read_many` for the racks of a region, ten a call).

The lock itself (taking, renewing, releasing) is lock.py's; this is what a status read needs of it:
a rack that records a run status (installing, updating, uninstalling) is in that status only while
a run holds its lock; a run killed (SIGKILL, a lost machine) leaves a lock that is stale, and the
rack reads `failed` with the step that run had reached (the lock's `step`, kept by its renewals)."""

from __future__ import annotations

import datetime
import json
import os
import socket
import time

VALIDITY = 120      # seconds a lock stays valid without renewal
GET_BATCH = 10      # GetParameters takes 10 names a call


def lock_name(rack):
    return "/convox/%s/lock" % rack


def when(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, ValueError, TypeError):
        return True
    return True


def parse(value):
    """The holder recorded in a lock parameter's value ({} when it cannot be read)."""
    try:
        holder = json.loads(value)
    except (ValueError, TypeError):
        return {}
    return holder if isinstance(holder, dict) else {}


def stale(holder, now=None, host=None, alive=pid_alive):
    """Why the holder's lock no longer protects anything, or None while it does: it expired (its run
    stopped renewing it), or its holder ran on this host and its process is gone."""
    now = time.time() if now is None else now
    host = host or socket.gethostname()
    if holder.get("expires", 0) <= now:
        return "expired at %s" % when(holder.get("expires", 0))
    if holder.get("host") == host and isinstance(holder.get("pid"), int) and not alive(holder["pid"]):
        return "its process %d on %s is gone" % (holder["pid"], host)
    return None


def describe(holder):
    return "%s by run %s (host %s, pid %s) since %s, lock valid until %s" % (
        holder.get("operation", "a change"), holder.get("run", "?"), holder.get("host", "?"),
        holder.get("pid", "?"), when(holder.get("since", 0)), when(holder.get("expires", 0)))


def interrupted(holder, recorded, now=None, host=None, alive=pid_alive):
    """Why a rack that records the run status `recorded` is not in it any more, or None while a run
    holds its lock. `holder`: the lock's holder, or None when there is no lock."""
    if holder:
        why = stale(holder, now, host, alive)
        if why is None:
            return None
        step = holder.get("step") or "its first write"
        return "last run (%s, host %s, pid %s) stopped without finishing, at: %s (its lock %s)" % (
            holder.get("operation", recorded), holder.get("host", "?"), holder.get("pid", "?"), step, why)
    return "last run (%s) stopped without finishing and holds no lock" % recorded


def read_one(aws, rack):
    """The holder of the rack's lock, or None when no run holds it."""
    got = aws.call("ssm", "get_parameter", "run lock %s" % lock_name(rack), ignore=("ParameterNotFound",),
                   Name=lock_name(rack))
    return parse(got["Parameter"]["Value"]) if got else None


def read_many(aws, racks, region):
    """{rack: holder} of the racks whose lock exists: GetParameters, ten names a call (no call for
    no rack)."""
    racks = sorted(racks)
    out = {}
    for start in range(0, len(racks), GET_BATCH):
        batch = racks[start:start + GET_BATCH]
        got = aws.call("ssm", "get_parameters", "run locks of racks in %s" % region,
                       Names=[lock_name(rack) for rack in batch])
        by_name = {lock_name(rack): rack for rack in batch}
        for param in got.get("Parameters", []):
            if param.get("Name") in by_name:
                out[by_name[param["Name"]]] = parse(param.get("Value"))
    return out
