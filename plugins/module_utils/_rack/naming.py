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
