# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every AWS name and address derived from a rack's name and parameters.

Names are deterministic so that a rack's singletons (bucket, load balancer, cluster, role...)
are found by name and confirmed by their tags; network resources, which AWS does not name,
are found by tags alone.
"""

from __future__ import annotations

import hashlib
import ipaddress

# "convox-" + name must fit a load balancer name (32 characters).
MAX_RACK_NAME = 25

SYSTEM = "convox"
# An app's bucket: "convox-" + rack + "-" + app + "-" + digest must fit an S3 bucket name.
BUCKET_NAME_MAX = 63
DIGEST_LEN = 12
MAX_RACK_AND_APP = BUCKET_NAME_MAX - len("convox---") - DIGEST_LEN
# Every log AWS delivers for a rack lands in its log bucket (<rack bucket>-logs):
# the apps' buckets' S3 access logs under logs/apps/<app>/ (logs/apps/ in a rack's own bucket
# for a rack installed by 0.1.0, until its next update makes its log bucket);
LOGS_PREFIX = "logs/"
ACCESS_LOGS_PREFIX = LOGS_PREFIX + "apps/"
# VPC flow logs and the load balancer's access logs (each service adds AWSLogs/<account>/... after the prefix);
FLOW_LOGS_PREFIX = LOGS_PREFIX + "flow/"
ROUTER_LOGS_PREFIX = LOGS_PREFIX + "router"
# the rack bucket's own server access logs.
BUCKET_LOGS_PREFIX = LOGS_PREFIX + "bucket/"
LOG_BUCKET_SUFFIX = "-logs"
# The service that delivers flow logs (and other vended logs) to the log bucket (desired, delivery).
LOG_DELIVERY_SERVICE = "delivery.logs.amazonaws.com"


class RackNames:
    """The names of one rack's resources in one account and region."""

    def __init__(self, rack, region, account_id=None):
        self.rack = rack
        self.region = region
        self.account_id = account_id
        self.base = "convox-%s" % rack

    @property
    def bucket(self):
        # Globally unique and stable: the rack, plus a digest of where it lives.
        digest = hashlib.sha256(("%s:%s:%s" % (self.account_id, self.region, self.rack)).encode()).hexdigest()
        return "%s-%s" % (self.base, digest[:12])

    @property
    def log_bucket(self):
        # Every log delivery of the rack goes here (the rack bucket's server access logs: a bucket
        # should not log into itself; the apps', the flow logs, the router's): convox-<25>-<12>-logs is 50 characters, within S3's 63.
        return self.bucket + LOG_BUCKET_SUFFIX

    @property
    def load_balancer(self):
        return self.base

    @property
    def cluster(self):
        return self.base

    @property
    def capacity_provider(self):
        return self.base

    @property
    def autoscaling_group(self):
        return self.base

    @property
    def launch_template(self):
        return self.base

    @property
    def instance_role(self):
        # IAM is global: the region keeps two racks of one name apart.
        return "%s-%s-instance" % (self.base, self.region)

    @property
    def log_group(self):
        return "/convox/%s" % self.rack

    @property
    def router_security_group(self):
        return "%s-router" % self.base

    @property
    def instance_security_group(self):
        return "%s-instances" % self.base

    def app_log_group_prefix(self):
        return "/convox/%s/apps/" % self.rack


class AppNames:
    """The names of one app's resources, for its rack in one account and region."""

    def __init__(self, rack, app, region, account_id=None):
        self.rack = rack
        self.app = app
        self.region = region
        self.account_id = account_id
        self.rack_names = RackNames(rack, region, account_id)

    @classmethod
    def of_rack(cls, rack_names, app):
        return cls(rack_names.rack, app, rack_names.region, rack_names.account_id)

    @property
    def bucket(self):
        # Globally unique and stable: the app of this rack, account and region.
        seed = "%s:%s:%s:%s" % (self.account_id, self.region, self.rack, self.app)
        return "convox-%s-%s-%s" % (self.rack, self.app, hashlib.sha256(seed.encode()).hexdigest()[:DIGEST_LEN])

    @property
    def log_group(self):
        return self.rack_names.app_log_group_prefix() + self.app

    @property
    def repository(self):
        return "convox/%s/%s" % (self.rack, self.app)

    @property
    def access_logs_prefix(self):
        return "%s%s/" % (ACCESS_LOGS_PREFIX, self.app)

    @property
    def rack_bucket(self):
        return self.rack_names.bucket

    @property
    def log_bucket(self):
        return self.rack_names.log_bucket


def system_tags(rack, kind="rack", app=None):
    tags = {"System": SYSTEM, "Rack": rack, "Type": kind}
    if app:
        tags["App"] = app
    return tags


def subnet_cidrs(vpc_cidr, count):
    """Public and private subnet CIDRs: the VPC cut in eight, public first, private from the fifth."""
    net = ipaddress.ip_network(vpc_cidr)
    blocks = list(net.subnets(prefixlen_diff=3))
    public = [str(b) for b in blocks[:count]]
    private = [str(b) for b in blocks[4:4 + count]]
    return public, private
