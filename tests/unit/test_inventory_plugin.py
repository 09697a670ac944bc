"""The convox.rack.racks inventory plugin, without AWS: configuration checks, host names, groups,
host variables, warnings for regions that fail, and the cache (key and contents).

The plugin is built with its real option definitions (its DOCUMENTATION and the doc fragments it
extends), and AWS is replaced by canned results of fleet reads (InventoryModule._query).
The plugin's reads against the local AWS are tested through ansible-inventory in
tests/integration/test_inventory.py."""

from __future__ import annotations

import copy

import pytest
import yaml
from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.doc_fragments import constructed, inventory_cache

from ansible_collections.amazon.aws.plugins.doc_fragments import assume_role, common, region
from ansible_collections.convox.rack.plugins.inventory import racks as plugin_module

NAME = "convox.rack.racks"


def rack(name, region="us-east-1", status="running", tags=None, version="0.1.0"):
    return {"name": name, "region": region, "status": status, "parameters": {"instance_type": "t3.small"},
            "version": version, "vpc_id": "vpc-1", "public_subnet_ids": [], "private_subnet_ids": [],
            "cluster_name": "convox-" + name, "autoscaling_group_name": "convox-" + name,
            "load_balancer": {"arn": "arn:lb", "dns_name": "%s.elb" % name}, "bucket": "convox-%s-x" % name,
            "log_group": "/convox/" + name, "tags": tags or {}, "instances": {"desired": 1, "in_service": 1, "registered": 0},
            "apps": [], "missing": []}


def source(name="local", regions=None, account="123456789012"):
    return {"name": name, "account_id": account, "account_alias": None, "local": name == "local", "partition": "aws",
            "label": "(default credentials)", "regions": regions or {}}


def ok(*racks):
    return {"racks": list(racks), "error": None, "warnings": []}


RESULTS = {"version": 1, "sources": [
    source("local", {"us-east-1": ok(rack("production"), rack("staging", status="converging", version="0.2.0-dev0")),
                     "eu-west-1": ok(rack("europe", "eu-west-1", "failed", tags={"team": "{{ lookup('pipe', 'id') }}"}))}),
]}


class Harness:
    """Builds the plugin as ansible-inventory would, and parses a configuration file with it."""

    def __init__(self, tmp_path, monkeypatch):
        self.tmp_path = tmp_path
        self.queries = []
        self.results = copy.deepcopy(RESULTS)
        options = {}
        for doc in (constructed.ModuleDocFragment.DOCUMENTATION, inventory_cache.ModuleDocFragment.DOCUMENTATION,
                    common.ModuleDocFragment.PLUGINS, region.ModuleDocFragment.PLUGINS,
                    assume_role.ModuleDocFragment.PLUGINS, plugin_module.DOCUMENTATION):
            options.update(yaml.safe_load(doc).get("options") or {})
        C.config.initialize_plugin_configuration_definitions("inventory", NAME, options)
        for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_URL"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

        def query(plugin):
            return self._query(plugin)
        monkeypatch.setattr(plugin_module.InventoryModule, "_query", query)
        self.warnings = []
        monkeypatch.setattr(plugin_module.InventoryModule, "warn", lambda _self, msg: self.warnings.append(msg))

    def _query(self, plugin):
        sources = plugin._sources()
        for src in sources:
            plugin._regions_of(src)       # as the real _query does, before any AWS call
        self.queries.append(sources)
        return copy.deepcopy(self.results)

    def parse(self, config, name="racks.convox.yml", cache=True):
        path = self.tmp_path / name
        path.write_text(yaml.safe_dump(dict({"plugin": NAME}, **config)))
        plugin = plugin_module.InventoryModule()
        plugin._load_name = NAME
        plugin.ansible_name = NAME
        plugin._redirected_names = [NAME]
        if not plugin.verify_file(str(path)):
            raise AssertionError("verify_file refused %s" % path)
        inventory = InventoryData()
        plugin.parse(inventory, DataLoader(), str(path), cache=cache)
        if getattr(plugin, "_cache", None):
            plugin.update_cache_if_changed()   # as ansible's InventoryManager does after a parse
        self.plugin = plugin
        return inventory


@pytest.fixture
def harness(tmp_path, monkeypatch):
    return Harness(tmp_path, monkeypatch)


def hostvars(inventory, host):
    return inventory.get_host(host).get_vars()


def test_hosts_groups_and_variables(harness):
    inv = harness.parse({"regions": ["us-east-1", "eu-west-1"]})
    assert sorted(inv.hosts) == ["local/europe", "local/production", "local/staging"]
    assert sorted(h.name for h in inv.groups["convox"].get_hosts()) == sorted(inv.hosts)
    assert [h.name for h in inv.groups["convox_running"].get_hosts()] == ["local/production"]
    assert [h.name for h in inv.groups["convox_converging"].get_hosts()] == ["local/staging"]
    assert [h.name for h in inv.groups["convox_eu_west_1"].get_hosts()] == ["local/europe"]
    assert sorted(h.name for h in inv.groups["convox_us_east_1"].get_hosts()) == ["local/production", "local/staging"]
    hv = hostvars(inv, "local/production")
    # set once on the group of every rack
    assert inv.groups["convox"].get_vars()["ansible_connection"] == "local"
    assert inv.groups["convox"].get_vars()["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"
    assert hv["rack_name"] == "production" and hv["rack_status"] == "running" and hv["rack_region"] == "us-east-1"
    assert hv["rack_load_balancer"]["dns_name"] == "production.elb"
    assert hv["rack_source"] == {"name": "local", "account_id": "123456789012", "account_alias": None, "local": True}
    assert "tags" not in hv and "name" not in hv


def test_a_group_per_version_and_the_version_as_a_host_variable(harness):
    """An AWX job limited to version_0_1_0 upgrades every rack of 0.1.0 (docs/inventory.md)."""
    harness.results["sources"][0]["regions"]["eu-west-1"]["racks"].append(rack("unknown", "eu-west-1", version=None))
    inv = harness.parse({"regions": ["us-east-1", "eu-west-1"]})
    assert [h.name for h in inv.groups["version_0_1_0"].get_hosts()] == ["local/europe", "local/production"]
    assert [h.name for h in inv.groups["version_0_2_0_dev0"].get_hosts()] == ["local/staging"]
    assert {g.name for g in inv.groups["convox"].child_groups} >= {"version_0_1_0", "version_0_2_0_dev0"}
    assert [g.name for g in inv.hosts["local/unknown"].groups if g.name.startswith("version_")] == []
    assert hostvars(inv, "local/staging")["rack_version"] == "0.2.0-dev0"
    assert plugin_module.version_group("1.0.0-rc.1+build.5") == "version_1_0_0_rc_1_build_5"


def test_values_from_aws_are_unsafe(harness):
    inv = harness.parse({"regions": ["eu-west-1"]})
    value = hostvars(inv, "local/europe")["rack_tags"]["team"]
    try:
        from ansible._internal._datatag._tags import TrustedAsTemplate
    except ImportError:  # ansible-core < 2.19
        from ansible.utils.unsafe_proxy import AnsibleUnsafe
        assert isinstance(value, AnsibleUnsafe)
    else:
        assert not TrustedAsTemplate.is_tagged_on(value)


def test_prefix_suffix_compose_groups_keyed_groups(harness):
    inv = harness.parse({"regions": ["us-east-1"], "hostvars_prefix": "convox_", "hostvars_suffix": "_x",
                         "compose": {"router": "convox_load_balancer_x.dns_name"},
                         "groups": {"attention": "convox_status_x != 'running'"},
                         "keyed_groups": [{"key": "convox_parameters_x.instance_type", "prefix": "type"}]})
    hv = hostvars(inv, "local/staging")
    assert hv["convox_status_x"] == "converging" and hv["router"] == "staging.elb"
    assert sorted(h.name for h in inv.groups["attention"].get_hosts()) == ["local/europe", "local/staging"]
    assert len(inv.groups["type_t3_small"].get_hosts()) == 3


def test_org_names_and_collisions(harness):
    harness.results = {"version": 1, "sources": [
        source("acme", {"us-east-1": ok(rack("production")), "us-west-2": ok(rack("production", "us-west-2"))}),
        source("local", {"us-east-1": ok(rack("dev"))}, account="111111111111"),
        source("local", {"us-east-1": ok(rack("dev"))}, account="222222222222"),
    ]}
    inv = harness.parse({"regions": ["us-east-1"]})
    assert sorted(inv.hosts) == ["acme/production@us-east-1", "acme/production@us-west-2",
                                 "local/dev@111111111111:us-east-1", "local/dev@222222222222:us-east-1"]
    assert any("2 racks are named acme/production" in w for w in harness.warnings)


def test_a_failed_region_is_a_warning_and_is_not_cached(harness, tmp_path):
    harness.results["sources"][0]["regions"]["eu-west-1"] = {"racks": [], "error": "AuthFailure", "warnings": []}
    config = {"regions": ["us-east-1", "eu-west-1"], "cache": True, "cache_plugin": "jsonfile",
              "cache_connection": str(tmp_path / "cache")}
    inv = harness.parse(config)
    assert sorted(inv.hosts) == ["local/production", "local/staging"]
    assert harness.warnings == ["convox.rack.racks: source (default credentials): region eu-west-1 skipped: AuthFailure"]
    harness.parse(config)
    assert len(harness.queries) == 2, "a partial read was cached"


def test_every_region_failing_is_an_error(harness):
    for read in harness.results["sources"][0]["regions"].values():
        read.update(racks=[], error="UnrecognizedClientException: bad token")
    with pytest.raises(AnsibleError, match="no region could be read: eu-west-1: Unrecognized.*us-east-1: Unrecognized"):
        harness.parse({"regions": ["us-east-1", "eu-west-1"]})


def test_cache_is_used_and_keyed_by_account_and_regions(harness, tmp_path, monkeypatch):
    config = {"regions": ["us-east-1", "eu-west-1"], "cache": True, "cache_plugin": "jsonfile",
              "cache_connection": str(tmp_path / "cache"), "cache_timeout": 3600}
    first = harness.parse(config)
    second = harness.parse(config)
    assert len(harness.queries) == 1, "the second parse read AWS again"
    assert sorted(first.hosts) == sorted(second.hosts)
    assert hostvars(second, "local/europe")["rack_tags"]["team"] == "{{ lookup('pipe', 'id') }}"
    key = harness.plugin.get_cache_key(str(tmp_path / "racks.convox.yml"))
    # other regions, other credentials, another endpoint: another key, hence a fresh read
    harness.parse(dict(config, regions=["us-east-1"]))
    assert harness.plugin.get_cache_key(str(tmp_path / "racks.convox.yml")) != key
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDOTHERACCOUNT")
    harness.parse(config)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    harness.parse(config)
    harness.parse(dict(config, assume_role_arn="arn:aws:iam::222222222222:role/inventory"))
    assert len(harness.queries) == 5
    # --flush-cache (cache=False) reads again
    harness.parse(config, cache=False)
    assert len(harness.queries) == 6


def test_default_region_only(harness):
    harness.parse({})
    assert harness.queries[0][0]["regions"] is None or harness.queries[0][0]["regions"] == []
    assert harness.plugin._regions_of(harness.queries[0][0]) == ["us-east-1"]


def test_sources_take_the_top_level_options(harness):
    harness.parse({"regions": ["us-east-1"], "sources": [
        {"name": "acme", "profile": "acme"},
        {"assume_role_arn": "arn:aws:iam::222222222222:role/x", "regions": ["eu-west-1"]}]})
    first, second = harness.queries[0]
    assert first["name"] == "acme" and first["profile"] == "acme" and first["regions"] == ["us-east-1"]
    assert second["assume_role_arn"] == "arn:aws:iam::222222222222:role/x" and second["regions"] == ["eu-west-1"]


@pytest.mark.parametrize("config, message", [
    ({"regions": ["us-east-1"], "regoins": ["eu-west-1"]}, r"unknown option\(s\) regoins; the options are: .*regions"),
    ({"regions": ["us-east-1", "mars-1"]}, r"regions: 'mars-1' is not an AWS region name"),
    ({"regions": "us-east-1 eu-west-1"}, r"is not an AWS region name"),
    ({"regions": ["us-east-1"], "hostvars_prefix": ""}, r"hostvars_prefix may not be empty"),
    ({"sources": [{"profile": "a", "role": "x"}]}, r"sources\[0\]: unknown key\(s\) role"),
    ({"sources": [{"regions": ["nowhere"]}]}, r"'nowhere' is not an AWS region name"),
])
def test_bad_configuration(harness, config, message):
    with pytest.raises(AnsibleError, match=message):
        harness.parse(config)
    assert harness.queries == []


def test_no_region_at_all(harness, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(AnsibleError, match="no region: set regions"):
        harness.parse({})


def test_file_names(harness, tmp_path):
    plugin = plugin_module.InventoryModule()
    for name, valid in (("racks.convox.yml", True), ("prod.racks.yaml", True), ("convox.yml", True),
                        ("inventory.yml", False), ("racks.json", False)):
        path = tmp_path / name
        path.write_text("plugin: convox.rack.racks\n")
        assert plugin.verify_file(str(path)) is valid, name
