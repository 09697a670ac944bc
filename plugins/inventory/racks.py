# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: racks
short_description: Convox racks on AWS as inventory hosts, one host per rack
version_added: 0.1.0
description:
  - One host per Convox rack found in the configured O(regions) of each source (an AWS account reached
    by profile, keys or an assumed role, or the local AWS), named as C(convox racks) names them
    (V(local/<rack>) for the local AWS, V(<org>/<rack>) otherwise).
  - Each host has C(ansible_connection=local) (its tasks run on the controller, where the AWS APIs
    are called from) and the rack's C(rack) dictionary (the one M(convox.rack.rack_info) returns) as
    host variables, each key prefixed with O(hostvars_prefix) (V(rack_status), V(rack_region),
    V(rack_parameters), ...).
  - Hosts are in the groups C(convox) (every rack), C(convox_<status>) (V(convox_running),
    V(convox_failed), ...) and C(convox_<region>) (V(convox_us_east_1), ...), and in C(version_<version>)
    for the collection version that last converged the rack (C(rack_version); V(version_0_1_0) for 0.1.0,
    dots, dashes and plus signs made underscores), so that one AWX job limited to a version's group
    upgrades every rack of it; O(compose), O(groups) and O(keyed_groups) add more.
  - Racks are found by the tags of their buckets and read in bulk, about eight calls a region whatever
    the number of racks (see M(convox.rack.rack_info), which reads a region the same way); the regions
    of every source are read at the same time. A rack's listener and launch template are taken from its
    load balancer and Auto Scaling group (reading them would take a call a rack);
    M(convox.rack.rack_info) with a name reads them.
  - The configuration file's name must end with V(racks.yml), V(racks.yaml), V(convox.yml) or
    V(convox.yaml), for example V(racks.convox.yml).
author:
  - convox.rack contributors (@convox-rack)
extends_documentation_fragment:
  - inventory_cache
  - constructed
  - amazon.aws.boto3
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
  - amazon.aws.assume_role.plugins
notes:
  - Without O(regions) the plugin reads the default region of the credentials (O(region), E(AWS_REGION),
    E(AWS_DEFAULT_REGION) or the profile's region), never every region.
  - A region that cannot be read (not enabled for the account, or not permitted) is a warning and the
    other regions still load; when no region of a source can be read, or the credentials cannot be
    used at all, the inventory fails naming the source.
  - With O(cache), the results of the AWS reads are cached (not the hosts and groups made of them, so
    O(compose), O(groups) and O(keyed_groups) apply to cached results too), under a key made of the
    configuration file, each source's identity (profile, access key id, role, endpoint) and regions.
    A read in which some region failed is not cached.
  - E(AWS_ENDPOINT_URL), which boto3 honours, points every source that sets no O(endpoint_url) to the
    local AWS.
  - Values read from AWS are marked unsafe, so that a tag value is never templated.
  - As an AWX or Automation Controller inventory source, the plugin takes the keys of an
    I(Amazon Web Services) credential (E(AWS_ACCESS_KEY_ID), E(AWS_SECRET_ACCESS_KEY) and the session
    token as E(AWS_SECURITY_TOKEN)), and the role and external id of the I(Convox assume role)
    credential type of C(examples/awx/) (E(CONVOX_ASSUME_ROLE_ARN), E(CONVOX_ASSUME_ROLE_EXTERNAL_ID)).
options:
  plugin:
    description: The name of this plugin; it marks the file as this plugin's configuration.
    required: true
    type: str
    choices: ['convox.rack.racks']
  regions:
    description:
      - The regions to read racks from, read concurrently.
      - Empty (the default) means the default region of the credentials, never every region.
    type: list
    elements: str
    default: []
  session_token:
    description:
      - AWS STS session token for use with temporary credentials.
      - E(AWS_SECURITY_TOKEN), the variable AWX's I(Amazon Web Services) credential sets, is read when
        E(AWS_SESSION_TOKEN) is not set.
      - The O(session_token) and O(profile) options are mutually exclusive.
    type: str
    aliases: ['aws_session_token']
    env:
      - name: AWS_SECURITY_TOKEN
      - name: AWS_SESSION_TOKEN
  assume_role_arn:
    description:
      - The ARN of an IAM role to assume to read each source that names no role of its own.
      - You should still provide AWS credentials with enough privilege to perform the AssumeRole action.
    type: str
    aliases: ["iam_role_arn"]
    env:
      - name: CONVOX_ASSUME_ROLE_ARN
  assume_role_external_id:
    description:
      - The external id to give when assuming a role (O(assume_role_arn)), as the role's trust policy
        asks for it; for each source that gives none of its own.
    type: str
    env:
      - name: CONVOX_ASSUME_ROLE_EXTERNAL_ID
  sources:
    description:
      - The AWS accounts to read, each with its own credentials. Each entry takes V(name), V(profile),
        V(access_key), V(secret_key), V(session_token), V(assume_role_arn), V(assume_role_external_id),
        V(endpoint_url) and V(regions), which default to the top-level options of the same names.
      - V(name) is the C(<org>) of the hosts' names C(<org>/<rack>); by default the account alias,
        else the account id; V(local) for an endpoint on the loopback interface (the local AWS).
      - Empty (the default) means one source made of the top-level options.
    type: list
    elements: dict
    default: []
  hostvars_prefix:
    description:
      - The prefix of the host variables made from the C(rack) dictionary (V(rack_name), V(rack_status),
        V(rack_tags), ...).
      - It may not be empty, as the dictionary's V(name) and V(tags) are reserved variable names in Ansible.
    type: str
    default: rack_
  hostvars_suffix:
    description: The suffix of the host variables made from the C(rack) dictionary.
    type: str
    default: ''
  drift:
    description:
      - Also read each rack's drift, what differs in AWS from what the rack records (what M(convox.rack.rack_info)
        returns with O(convox.rack.rack_info#module:drift=true)), into the host variables V(rack_drift_count) (null
        when the rack was not compared, as a run holds it or its drift could not be read) and V(rack_drift_lines) (one
        line a difference), and the group V(convox_drifted) of the racks with any.
      - Reads only, but a full reading and plan of each rack (about 35 calls a rack, against about eight for
        a whole region without it), hence off by default.
    type: bool
    default: false
    version_added: 0.2.0
"""

EXAMPLES = r"""
# racks.convox.yml: every rack of two regions in the account of the usual credentials
plugin: convox.rack.racks
regions:
  - us-east-1
  - eu-west-1

---

# Two accounts: one by profile, one through an assumed role; racks named acme/<rack> and staging/<rack>
plugin: convox.rack.racks
regions: [us-east-1]
sources:
  - name: acme
    profile: acme-production
  - name: staging
    assume_role_arn: arn:aws:iam::222222222222:role/convox-inventory
    regions: [us-east-1, us-west-2]
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/convox-ansible/inventory
cache_timeout: 300

---

# Groups of your own: racks by instance type, and the racks that need attention
plugin: convox.rack.racks
regions: [us-east-1]
keyed_groups:
  - key: rack_parameters.instance_type
    prefix: type
  - key: rack_tags.team | default('none')
    prefix: team
groups:
  attention: rack_status not in ['running']
compose:
  rack_router: rack_load_balancer.dns_name

---

# The drift of every rack (a drift report from AWX: a job on the group convox_drifted)
plugin: convox.rack.racks
regions: [us-east-1, eu-west-1]
drift: true
"""

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor

try:
    import botocore.exceptions
except ImportError:  # AWSInventoryBase reports missing boto3 and botocore
    pass

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible.utils.unsafe_proxy import wrap_var as make_unsafe

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19: inventory strings are templated as they are
    trust_as_template = None

from ansible_collections.amazon.aws.plugins.module_utils.botocore import _aws_connection_info
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleBotocoreError
from ansible_collections.amazon.aws.plugins.plugin_utils.inventory import AWSInventoryBase

from ansible_collections.convox.rack.plugins.module_utils._rack.errors import RackError
from ansible_collections.convox.rack.plugins.module_utils._rack.params import REGION_RE

CACHE_VERSION = 1
SOURCE_KEYS = ("name", "profile", "access_key", "secret_key", "session_token", "assume_role_arn", "assume_role_external_id",
               "endpoint_url", "regions")
CONNECTION_KEYS = ("access_key", "secret_key", "session_token", "profile", "endpoint_url", "region", "validate_certs",
                   "aws_ca_bundle", "aws_config")
GROUP = "convox"
VERSION_GROUP = "version_"


def version_group(version):
    """The group of the racks last converged by collection `version` (version_0_1_0), or None without one."""
    return VERSION_GROUP + re.sub(r"[^A-Za-z0-9_]", "_", version) if version else None


def _reader():
    """The bulk reader and the AWS call wrapper, imported when AWS is read (not when the cache answers)."""
    from ansible_collections.convox.rack.plugins.module_utils._rack import clients, fleet
    from ansible_collections.convox.rack.plugins.module_utils._rack.aws import Aws

    return clients, fleet, Aws


def unsafe(value):
    """A value read from AWS, never to be templated. From ansible-core 2.19 on, what an inventory
    plugin sets is not trusted as a template unless the plugin says so (this one does not), and the
    inventory copies every value as it sets it: wrapping it here as well would copy it twice."""
    return value if trust_as_template else make_unsafe(value)


class InventoryModule(AWSInventoryBase):
    NAME = "convox.rack.racks"
    INVENTORY_FILE_SUFFIXES = ("racks.yml", "racks.yaml", "convox.yml", "convox.yaml")

    # -- options and configuration ----------------------------------------------------------------------
    class TemplatedOptions(AWSInventoryBase.TemplatedOptions):
        """amazon.aws's, templating only the values that are templates (ansible-core 2.19 deprecates
        templating with disable_lookups, which amazon.aws passes for every element of a list)."""

        def get(self, *args):
            value = self.original_options.get(*args)
            if not value or not self.templar or args[0] not in self.TEMPLATABLE_OPTIONS:
                return value
            if isinstance(value, dict):
                return {k: self._template(v) for k, v in value.items()}
            if isinstance(value, list):
                return [self._template(v) for v in value]
            return self._template(value)

        def _template(self, value):
            if isinstance(value, str) and self.templar.is_template(value):
                return self.templar.template(value)
            return value

    def _read_config_data(self, path):
        config = super()._read_config_data(path)
        self._config_keys = sorted(config)
        return config

    def _set_frozen_credentials(self):
        """Assume the top-level role only when AWS is read, not when the cache answers."""

    def _check_config(self):
        known = set()
        for name, definition in self._plugin_options().items():
            known.add(name)
            known.update(definition.get("aliases") or [])
        unknown = [k for k in self._config_keys if k not in known]
        if unknown:
            raise AnsibleError("%s: unknown option(s) %s; the options are: %s"
                               % (self.NAME, ", ".join(unknown), ", ".join(sorted(self._plugin_options()))))
        if not self.get_option("hostvars_prefix"):
            raise AnsibleError("%s: hostvars_prefix may not be empty: the rack's `name` and `tags` are reserved variable "
                               "names in Ansible" % self.NAME)
        for index, source in enumerate(self.get_option("sources")):
            bad = sorted(set(source) - set(SOURCE_KEYS)) if isinstance(source, dict) else ["(not a dictionary)"]
            if bad:
                raise AnsibleError("%s: sources[%d]: unknown key(s) %s; a source takes %s"
                                   % (self.NAME, index, ", ".join(bad), ", ".join(SOURCE_KEYS)))
        for region in self._all_regions():
            if not isinstance(region, str) or not REGION_RE.match(region):
                raise AnsibleError("%s: regions: %r is not an AWS region name (such as us-east-1)" % (self.NAME, region))

    def _plugin_options(self):
        from ansible import constants as C

        return C.config.get_configuration_definitions("inventory", self._load_name) or {
            name: {} for name in self._options}

    def _all_regions(self):
        regions = list(self.get_option("regions") or [])
        for source in self.get_option("sources"):
            regions += list(source.get("regions") or [])
        return regions

    # -- sources: one account and its regions each --------------------------------------------------------
    def _sources(self):
        """The sources' settings, templated: the top-level options, overlaid by each source's keys."""
        options = self.get_options()
        base = {k: options.get(k) for k in CONNECTION_KEYS}
        in_file = set(self._config_keys)
        # What the file says wins over what the environment says: a profile in the file over
        # AWS_ACCESS_KEY_ID and the like, keys in the file over AWS_PROFILE.
        if in_file & {"profile", "aws_profile"} and not in_file & {"access_key", "aws_access_key_id", "aws_access_key"}:
            base.update(access_key=None, secret_key=None, session_token=None)
        if in_file & {"access_key", "aws_access_key_id", "aws_access_key"} and not in_file & {"profile", "aws_profile"}:
            base.update(profile=None)
        base.update(name=None, assume_role_arn=self.get_option("assume_role_arn"),
                    assume_role_external_id=self.get_option("assume_role_external_id"), regions=self.get_option("regions"))
        out = []
        for source in self.get_option("sources") or [{}]:
            merged = dict(base)
            given = {k: self._template(v) for k, v in source.items() if v is not None}
            if "profile" in given:
                merged.update(access_key=None, secret_key=None, session_token=None)
            if "access_key" in given:
                merged.update(profile=None)
            merged.update(given)
            out.append(merged)
        return out

    def _template(self, value):
        if isinstance(value, str) and self.templar.is_template(value):
            return self.templar.template(value)
        return value

    def _regions_of(self, source):
        """The source's regions, as plain strings (strings of the configuration file carry Ansible's data
        tags, which would follow them into the cache and make it several times slower to load)."""
        if source.get("regions"):
            return list(dict.fromkeys(str(region) for region in source["regions"]))
        region = source.get("region") or self._default_region(source)
        if not region:
            raise AnsibleError("%s: no region: set regions (or region, AWS_REGION, or a profile with a region); "
                               "the plugin does not read every region" % self.NAME)
        if not REGION_RE.match(region):
            raise AnsibleError("%s: region %r is not an AWS region name (such as us-east-1)" % (self.NAME, region))
        return [str(region)]

    @staticmethod
    def _default_region(source):
        import boto3

        try:
            return boto3.session.Session(profile_name=source.get("profile") or None).region_name
        except botocore.exceptions.BotoCoreError as e:
            raise AnsibleError("%s: cannot read the default region of profile %r: %s"
                               % (InventoryModule.NAME, source.get("profile"), to_native(e)))

    def _clients(self, source):
        """A SessionClients for the source, its role assumed when it names one."""
        clients_of, _fleet, Aws = _reader()
        try:
            region, endpoint, params = _aws_connection_info(source)
        except AnsibleBotocoreError as e:
            raise AnsibleError("%s: source %s: %s" % (self.NAME, self._label(source), to_native(e)))
        try:
            clients = clients_of.SessionClients(region or self._regions_of(source)[0], endpoint, params)
        except botocore.exceptions.BotoCoreError as e:
            raise AnsibleError("%s: source %s: cannot use these credentials: %s" % (self.NAME, self._label(source), e))
        if source.get("assume_role_arn"):
            aws = Aws(clients.factory())
            extra = {"ExternalId": source["assume_role_external_id"]} if source.get("assume_role_external_id") else {}
            try:
                creds = aws.call("sts", "assume_role", "role %s" % source["assume_role_arn"],
                                 RoleArn=source["assume_role_arn"],
                                 RoleSessionName="ansible_aws_convox_rack_racks_dynamic_inventory", **extra)["Credentials"]
            except RackError as e:
                raise AnsibleError("%s: source %s: cannot assume role %s: %s"
                                   % (self.NAME, self._label(source), source["assume_role_arn"], e.msg))
            params = dict(params, profile_name=None, aws_access_key_id=creds["AccessKeyId"],
                          aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
            clients = clients_of.SessionClients(clients.region, endpoint, params)
        return clients

    @staticmethod
    def _label(source):
        for key in ("name", "profile", "assume_role_arn", "endpoint_url"):
            if source.get(key):
                return "%s=%s" % (key, source[key])
        return "(default credentials)"

    # -- reading AWS ---------------------------------------------------------------------------------------
    def _query(self):
        """Read every region of every source; the raw results, as cached."""
        _clients_of, fleet, Aws = _reader()
        sources, sources_clients = [], []
        with ThreadPoolExecutor(max_workers=fleet.WORKERS) as pool:
            for source in self._sources():
                regions = self._regions_of(source)
                clients = self._clients(source)
                awss = {region: Aws(clients.factory(region)) for region in regions}
                try:
                    info = fleet.read_source(awss[regions[0]], source.get("name"))
                except RackError as e:
                    raise AnsibleError("%s: source %s: cannot use these credentials: %s"
                                       % (self.NAME, self._label(source), e.msg))
                info["label"] = self._label(source)
                started = fleet.start_reads(pool, awss.get, regions, info["account_id"])
                sources.append((info, started))
                sources_clients.append(clients)
            out = [dict(info, regions=fleet.collect(started)) for info, started in sources]
            if self.get_option("drift"):
                self._read_drift(pool, out, sources_clients)
        return {"version": CACHE_VERSION, "sources": out}

    @staticmethod
    def _read_drift(pool, out, clients_of):
        """Each rack's drift count and lines (info.rack_drift: the check-mode plan of an update), in parallel."""
        from ansible_collections.convox.rack.plugins.module_utils._rack import context, info
        from ansible_collections.convox.rack.plugins.module_utils._rack.aws import Aws, Deadline
        from ansible_collections.convox.rack.plugins.module_utils._rack.spec import DEFAULT_WAIT_TIMEOUT

        def drift(clients, region, rack):
            # an Aws of the rack's own, with the deadline of a module run (the plan's record takes it)
            aws = Aws(clients.factory(region), deadline=Deadline(DEFAULT_WAIT_TIMEOUT))
            try:
                found = info.rack_drift(aws, region, context.Identity(aws), rack["name"])
            except RackError as e:
                found = {"items": None, "reason": "its drift could not be read: %s" % e.msg}
            rack["drift_count"] = None if found["items"] is None else len(found["items"])
            rack["drift_lines"] = [i["message"] for i in found["items"] or []] or (
                [found["reason"]] if found["items"] is None else [])
        jobs = [pool.submit(drift, clients, region, rack) for source, clients in zip(out, clients_of)
                for region, read in source["regions"].items() for rack in read["racks"]]
        for job in jobs:
            job.result()

    def get_cache_key(self, path):
        """The file's key, plus each source's identity and regions: another account or region never
        reads this cache. The identity is what the configuration names (no AWS call is made)."""
        parts = [CACHE_VERSION]
        for source in self._sources():
            parts.append([source.get(k) for k in ("name", "profile", "access_key", "assume_role_arn", "endpoint_url")]
                         + [os.environ.get("AWS_ENDPOINT_URL"), self._regions_of(source)])
        if self.get_option("drift"):
            parts.append("drift")  # results with drift are not those without
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return "%s_%s" % (super().get_cache_key(path), digest)

    # -- building the inventory ------------------------------------------------------------------------------
    def _check_results(self, results):
        """Warn for each region that failed; fail when a source had no region that could be read."""
        for source in results["sources"]:
            regions = source["regions"]
            failed = {r: v["error"] for r, v in regions.items() if v["error"]}
            if failed and len(failed) == len(regions):
                raise AnsibleError("%s: source %s: no region could be read: %s" % (
                    self.NAME, source.get("label"), "; ".join("%s: %s" % item for item in sorted(failed.items()))))
            for region, error in sorted(failed.items()):
                self.warn("%s: source %s: region %s skipped: %s" % (self.NAME, source.get("label"), region, error))
            for warning in sorted({w for v in regions.values() for w in v.get("warnings", [])}):
                self.warn("%s: source %s: %s" % (self.NAME, source.get("label"), warning))

    def _entries(self, results):
        """(host name, source, rack) for every rack, sorted by name. Names that would repeat (one
        rack name in two regions or two accounts of one org) get @<region>, then @<account>:<region>."""
        entries = []
        for source in results["sources"]:
            for read in source["regions"].values():
                entries += [{"base": "%s/%s" % (source["name"], r["name"]), "source": source, "rack": r, "level": 0}
                            for r in read["racks"]]
        suffixes = ("", "@{region}", "@{account}:{region}")
        for level in (1, 2):
            names = {}
            for entry in entries:
                names.setdefault(self._entry_name(entry, suffixes), []).append(entry)
            for name, same in names.items():
                if len(same) < 2:
                    continue
                for entry in same:
                    entry["level"] = level
                self.warn("%s: %d racks are named %s; naming them %s" % (
                    self.NAME, len(same), name, ", ".join(self._entry_name(e, suffixes) for e in same)))
        return sorted(((self._entry_name(e, suffixes), e["source"], e["rack"]) for e in entries), key=lambda e: e[0])

    @staticmethod
    def _entry_name(entry, suffixes):
        suffix = suffixes[entry["level"]]
        return entry["base"] + suffix.format(region=entry["rack"]["region"], account=entry["source"]["account_id"])

    @staticmethod
    def _host_vars(source, rack, prefix, suffix):
        hostvars = {"%s%s%s" % (prefix, key, suffix): unsafe(value) for key, value in rack.items()}
        about = {k: source.get(k) for k in ("name", "account_id", "account_alias", "local")}
        hostvars["%ssource%s" % (prefix, suffix)] = unsafe(about)
        return hostvars

    def _populate(self, results):
        strict, compose, groups, keyed_groups = (self.get_option(k) for k in ("strict", "compose", "groups", "keyed_groups"))
        prefix, suffix = self.get_option("hostvars_prefix"), self.get_option("hostvars_suffix")
        self.inventory.add_group(GROUP)
        # Tasks of a rack host run on the controller, with the python that runs Ansible (and boto3).
        # Set once, on the group every rack is in (compose may override them host by host).
        interpreter = "{{ ansible_playbook_python }}"
        self.inventory.set_variable(GROUP, "ansible_connection", "local")
        self.inventory.set_variable(GROUP, "ansible_python_interpreter",
                                    trust_as_template(interpreter) if trust_as_template else interpreter)
        for name, source, rack in self._entries(results):
            self.inventory.add_host(name, group=GROUP)
            for group in (rack["status"], rack["region"]) + (("drifted",) if rack.get("drift_count") else ()):
                group = self.inventory.add_group("%s_%s" % (GROUP, group.replace("-", "_")))
                self.inventory.add_child(GROUP, group)
                self.inventory.add_host(name, group=group)
            if version_group(rack.get("version")):
                group = self.inventory.add_group(version_group(rack["version"]))
                self.inventory.add_child(GROUP, group)
                self.inventory.add_host(name, group=group)
            hostvars = self._host_vars(source, rack, prefix, suffix)
            for key, value in hostvars.items():
                self.inventory.set_variable(name, key, value)
            hostvars["ansible_connection"] = "local"
            self._set_composite_vars(compose, hostvars, name, strict=strict)
            self._add_host_to_composed_groups(groups, hostvars, name, strict=strict)
            self._add_host_to_keyed_groups(keyed_groups, hostvars, name, strict=strict)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        self._check_config()
        cached, results = self.get_cached_result(path, cache)
        if not cached or not isinstance(results, dict) or results.get("version") != CACHE_VERSION:
            cached = False
            results = self._query()
        self._check_results(results)
        self._populate(results)
        complete = all(not r["error"] for s in results["sources"] for r in s["regions"].values())
        if complete or cached:
            self.update_cached_result(path, cache, results)
