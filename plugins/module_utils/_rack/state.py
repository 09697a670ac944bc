# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What exists of a rack or an app, as read from AWS: one field per part, declared here.

A field is None (or empty) for a part that does not exist, and NOT_READ for a part that a
reading chose not to read (the region-wide listing of rack_info does not describe launch
templates or listeners, and may not be allowed to list IAM): such a part counts as present for
the status, and its details are unknown."""

from __future__ import annotations

from .record import parameters_from_tags, recorded_status
from .tags import tag_dict, user_tags


class _NotRead:
    """A part that was not read: present for the status, nothing known of it."""

    def __bool__(self):
        return True

    def __repr__(self):
        return "NOT_READ"

    def get(self, _key, default=None):
        return default


NOT_READ = _NotRead()


def found(part):
    """The part's AWS description, or {} when it is missing or was not read."""
    return part if isinstance(part, dict) else {}


class RackState:
    """What exists of one rack."""

    def __init__(self, names):
        self.names = names
        self.bucket = None                # {"name", "tags"}: the rack's record (record.py)
        self.log_bucket = None            # {"name", "tags"}: the rack bucket's access logs (parts/storage.py)
        self.flow_logs = []               # parts/flowlogs.py: the VPC's flow logs tagged as the rack's
        # network (parts/network.py): the kept ones, and every one found (duplicates among them)
        self.vpc = None
        self.vpcs = []
        self.subnets = []
        self.igw = None
        self.igws = []
        self.route_tables = []
        self.nat_gateways = []            # pending or available
        self.deleting_nat_gateways = []   # deleting: an uninstall waits for them too
        self.addresses = []
        self.extras = {}                  # kind -> duplicates of a kept resource, to delete
        self.security_groups = {}         # "router"/"instances" -> group (parts/firewall.py)
        self.role = None                  # parts/identity.py
        self.role_policy = None
        self.instance_profile = None
        self.launch_template = None       # describe_launch_templates item + "data" of the default version
        self.asg = None                   # parts/compute.py
        self.cluster = None
        self.capacity_provider = None
        self.load_balancer = None         # parts/entry.py
        self.lb_tags = {}
        self.listeners = []               # or [NOT_READ]
        self.log_group = None             # parts/logs.py: describe_log_groups item + "tag_arn"
        self.log_group_tags = {}
        self.apps = []                    # names of the rack's apps (their log groups)
        self.kms_key = None               # parts/kms.py: describe_key of alias/convox/<rack> + tags, rotation, policy
        # The holder of the rack's run lock (holder.py), read when the record says a run works on the rack:
        # None when no run holds it; NOT_READ when not read (the status then believes the record until its expiry).
        self.lock = NOT_READ

    @property
    def tags(self):
        return (self.bucket or {}).get("tags") or {}

    @property
    def recorded_parameters(self):
        return parameters_from_tags(self.bucket["tags"]) if self.bucket else {}

    @property
    def recorded_status(self):
        return recorded_status(self.tags)

    @property
    def user_tags(self):
        return user_tags(self.tags)

    @property
    def exists(self):
        """True when anything of the rack is left (a bucket kept by an uninstall alone does not count)."""
        return any([self.vpc, self.subnets, self.igw, self.route_tables, self.nat_gateways, self.addresses,
                    any(self.extras.values()), self.flow_logs,
                    self.security_groups, self.role, self.instance_profile, self.launch_template, self.asg,
                    self.cluster, self.capacity_provider, self.load_balancer, self.log_group]) or (
            self.bucket is not None and self.recorded_status != "uninstalled")

    def subnets_of(self, tier):
        subs = [s for s in self.subnets if tag_dict(s.get("Tags")).get("convox:tier") == tier]
        return sorted(subs, key=lambda s: int(tag_dict(s.get("Tags")).get("convox:index", "0")))


class AppState:
    """What exists of one app."""

    def __init__(self, names):
        self.names = names
        self.log_group = None        # describe_log_groups item, plus "tag_arn" (its registration)
        self.log_group_tags = {}
        self.bucket = None           # {"name", "tags"}
        self.repository = None       # describe_repositories item
        self.repository_tags = {}

    @property
    def exists(self):
        return any([self.log_group, self.bucket, self.repository])

    @property
    def registered(self):
        return self.log_group is not None

    def user_tags(self):
        """The user's tags, from the registration first."""
        for present, tags in ((self.log_group, self.log_group_tags), (self.bucket, (self.bucket or {}).get("tags")),
                              (self.repository, self.repository_tags)):
            if present is not None and tags:
                return user_tags(tags)
        return {}

    def missing(self):
        parts = (("log_group", self.log_group), ("bucket", self.bucket), ("repository", self.repository))
        return [name for name, part in parts if part is None]
