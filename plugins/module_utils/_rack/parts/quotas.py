# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quotas: what a new rack needs of the account's regional quotas (a VPC, an internet gateway and,
when private, an elastic IP per zone), checked before the first write. AWS's defaults are 5 VPCs,
5 internet gateways and 5 elastic IPs per region (Amazon VPC user guide, "Amazon VPC quotas";
EC2 user guide, "Elastic IP address quota"); a run that met them mid-install would leave a
half-built rack. Read from Service Quotas, else (no permission, or a quota it does not know) the
EC2 account attribute for addresses, else AWS's default."""

from __future__ import annotations

from ..errors import RackError

# (what, Service Quotas service code, quota code, AWS's default, the EC2 account attribute, counter)
QUOTAS = {
    "vpc": ("VPCs", "vpc", "L-F678F1CE", 5, None),
    "internet_gateway": ("internet gateways", "vpc", "L-A4707A72", 5, None),
    "elastic_ip": ("elastic IPs", "ec2", "L-0263D0A3", 5, "vpc-max-elastic-ips"),
}
UNREADABLE = ("NoSuchResourceException", "AccessDeniedException", "AccessDenied", "UnauthorizedOperation",
              "IllegalArgumentException", "ServiceException")


def needs(run):
    """{quota: how many more the run will create}, for what the rack does not have yet."""
    state, zones = run.state, 3 if run.wanted["high_availability"] else 2
    need = {"vpc": int(state.vpc is None), "internet_gateway": int(state.igw is None),
            "elastic_ip": max(0, zones - len(state.addresses)) if run.wanted["private"] else 0}
    return {k: n for k, n in need.items() if n}


def _limit(aws, key):
    what, service, code, default, attribute = QUOTAS[key]
    found = aws.call("service-quotas", "get_service_quota", "quota %s (%s)" % (what, code), ignore=UNREADABLE,
                     ServiceCode=service, QuotaCode=code)
    if found:
        return int(found["Quota"]["Value"])
    if attribute:
        attrs = aws.call("ec2", "describe_account_attributes", "account attribute %s" % attribute,
                         ignore=UNREADABLE, AttributeNames=[attribute]) or {}
        for attr in attrs.get("AccountAttributes", []):
            if attr.get("AttributeName") != attribute:
                continue  # the filter not trusted: an answer may hold every attribute (the local AWS's does)
            for value in attr.get("AttributeValues", []):
                return int(value["AttributeValue"])
    return default


def _used(aws, key, region):
    op, result_key = {"vpc": ("describe_vpcs", "Vpcs"),
                      "internet_gateway": ("describe_internet_gateways", "InternetGateways"),
                      "elastic_ip": ("describe_addresses", "Addresses")}[key]
    kwargs = {"Filters": [{"Name": "domain", "Values": ["vpc"]}]} if key == "elastic_ip" else {}
    return len(aws.call("ec2", op, "%s of %s" % (QUOTAS[key][0], region), **kwargs)[result_key])


def check(run):
    """Refuse, with the numbers, a run that would exceed a quota; no call when nothing is new."""
    short = []
    for key, n in sorted(needs(run).items()):
        limit, used = _limit(run.aws, key), _used(run.aws, key, run.region)
        if used + n > limit:
            short.append("%s: %d in use of %d, the rack needs %d more" % (QUOTAS[key][0], used, limit, n))
    if short:
        run.plan.lock_before_refusing()  # may start the run again under the lock, on what exists then
        raise RackError(
            "rack %s does not fit the quotas of region %s (%s); delete unused ones or ask AWS for more "
            "(Service Quotas console); nothing was changed" % (run.names.rack, run.region, "; ".join(short)),
            error_code="QuotaExceeded")
