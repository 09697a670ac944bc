"""The convox.rack.racks inventory plugin against the local AWS, through ansible-inventory as a user
(and AWX) runs it: racks in two regions of one account and in a second account reached through an
assumed role, all installed by the collection itself.

The tests work in accounts of their own (moto keeps one set of resources per account), so that
racks of other test modules in the same local AWS do not show up here."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from inventory_cli import ansible_inventory, listed, plain

from ansible_collections.convox.rack.plugins.module_utils._rack.version import COLLECTION_VERSION

# As conftest.py has them (not imported from it: pytest tests/ loads two modules named conftest).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PLAYBOOKS = os.path.join(ROOT, "tests", "integration", "playbooks")

ACCOUNT = "333333333333"
PARTNER = "444444444444"


# -- helpers shared with test_switch.py and test_rack_info.py --------------------------------------------------

def account_env(local_aws, account):
    """Credentials of another account of the local AWS (an assumed role), as environment variables."""
    creds = local_aws.client("sts").assume_role(RoleArn="arn:aws:iam::%s:role/convox-tests" % account,
                                                RoleSessionName="convox-tests")["Credentials"]
    return {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"]}


def account_client(local_aws, env, service, region="us-east-1"):
    import boto3

    return boto3.client(service, region_name=region, endpoint_url=local_aws.endpoint,
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=env["AWS_SESSION_TOKEN"])


def run_module(runner, env, module_args, module_name="rack", check=False, tmp_path=None):
    """One module of the collection, run by ansible-playbook in the given account; its result. With
    conftest.InProcess (the `direct` fixture), the module's main() in this process instead."""
    if runner.in_process:
        return runner.module(module_args, module_name, check=check, env=env)
    path = os.path.join(str(tmp_path or runner.aws.temp), "result-%d.json" % os.getpid())
    runner.playbook(os.path.join(PLAYBOOKS, "module.yml"),
                    {"module_args": module_args, "module_name": module_name, "result_file": path}, check=check, env=env)
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    os.unlink(path)
    return result


def install(runner, env, rack, region="us-east-1", **params):
    result = run_module(runner, env, dict(name=rack, region=region, high_availability=False, **params))
    assert not result.get("failed"), result.get("msg")
    assert result["rack"]["status"] == "running"
    return result["rack"]


def inventory(local_aws, env, config, tmp_path, *args, expect_rc=0, name="racks.convox.yml"):
    """ansible-inventory -i <config> ARGS from the repository root, as a user runs it."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(dict({"plugin": "convox.rack.racks"}, **config)))
    return ansible_inventory(path, *args, env=dict(local_aws.env, **env), expect_rc=expect_rc)


# -- the world of this module ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def accounts(local_aws, runner, direct):
    """Account ACCOUNT: inv-east (install_rack.yml, the user's way), inv-broken (its Auto Scaling
    group deleted by hand) in us-east-1, inv-west in eu-west-1; account PARTNER: inv-partner.
    (The three other than inv-east: the module's main() in this process, conftest.InProcess.)"""
    env = account_env(local_aws, ACCOUNT)
    partner = account_env(local_aws, PARTNER)
    runner.playbook(os.path.join(ROOT, "playbooks", "install_rack.yml"),
                    {"rack": "inv-east", "rack_high_availability": False, "rack_tags": {"team": "web"},
                     "rack_poll_interval": 1}, env=env)
    install(direct, env, "inv-broken")
    install(direct, env, "inv-west", region="eu-west-1", private=True)
    install(direct, partner, "inv-partner")
    asg = account_client(local_aws, env, "autoscaling")
    asg.delete_auto_scaling_group(AutoScalingGroupName="convox-inv-broken", ForceDelete=True)
    # someone with access to the account sets a tag that looks like a template
    s3 = account_client(local_aws, env, "s3")
    bucket = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("convox-inv-east-")
              and not b["Name"].endswith("-logs")][0]  # the rack's bucket, not its log bucket
    tags = [t for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"] if t["Key"] != "team"]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags + [{"Key": "team", "Value": "{{ lookup('pipe', 'id') }}"}]})
    return {"env": env, "partner": partner}


BOTH = {"regions": ["us-east-1", "eu-west-1"],
        "sources": [{}, {"assume_role_arn": "arn:aws:iam::%s:role/inventory" % PARTNER, "name": "partner"}]}


def test_list_two_regions_two_accounts(local_aws, accounts, tmp_path):
    out = listed(inventory(local_aws, accounts["env"], BOTH, tmp_path, "--list"))
    hostvars = out["_meta"]["hostvars"]
    assert sorted(hostvars) == ["local/inv-broken", "local/inv-east", "local/inv-west", "partner/inv-partner"]
    assert sorted(out["convox_running"]["hosts"]) == ["local/inv-east", "local/inv-west", "partner/inv-partner"]
    assert out["convox_failed"]["hosts"] == ["local/inv-broken"]
    assert out["convox_eu_west_1"]["hosts"] == ["local/inv-west"]
    assert set(out["convox"]["children"]) >= {"convox_running", "convox_failed", "convox_us_east_1", "convox_eu_west_1"}
    # a group per collection version (version_0_2_0_dev0), for an AWX job that upgrades every rack of one version
    version_group = "version_" + COLLECTION_VERSION.replace(".", "_").replace("-", "_")
    assert sorted(out[version_group]["hosts"]) == sorted(hostvars) and version_group in out["convox"]["children"]
    east = hostvars["local/inv-east"]
    assert east["ansible_connection"] == "local"
    assert east["rack_name"] == "inv-east" and east["rack_region"] == "us-east-1" and east["rack_status"] == "running"
    assert east["rack_parameters"]["high_availability"] is False
    assert east["rack_instances"] == {"desired": 1, "in_service": 1, "registered": 1}
    assert east["rack_version"] == COLLECTION_VERSION
    assert east["rack_load_balancer"]["dns_name"].startswith("convox-inv-east-")
    assert east["rack_source"]["account_id"] == ACCOUNT and east["rack_source"]["local"] is True
    assert "tags" not in east and "name" not in east
    assert hostvars["local/inv-broken"]["rack_missing"] == ["autoscaling_group"]
    assert hostvars["local/inv-west"]["rack_parameters"]["private"] is True
    assert hostvars["partner/inv-partner"]["rack_source"]["account_id"] == PARTNER


def test_remote_strings_are_not_templated(local_aws, accounts, tmp_path):
    """A tag value that looks like a template stays the string it is (a play using it: below)."""
    proc = inventory(local_aws, accounts["env"], {"regions": ["us-east-1"]}, tmp_path, "--host", "local/inv-east")
    assert plain(json.loads(proc.stdout)["rack_tags"]) == {"team": "{{ lookup('pipe', 'id') }}"}
    assert "uid=" not in proc.stdout


def test_graph_and_host(local_aws, accounts, tmp_path):
    graph = inventory(local_aws, accounts["env"], BOTH, tmp_path, "--graph").stdout
    assert "@convox_failed:" in graph and "local/inv-broken" in graph and "partner/inv-partner" in graph
    host = listed(inventory(local_aws, accounts["env"], BOTH, tmp_path, "--host", "local/inv-west"))
    assert host["rack_region"] == "eu-west-1" and host["rack_status"] == "running"


def test_default_source_names_and_constructed(local_aws, accounts, tmp_path):
    """Without names, both accounts of the local AWS are `local`; compose, groups, keyed_groups apply."""
    config = {"regions": ["us-east-1"], "sources": [{}, {"assume_role_arn": "arn:aws:iam::%s:role/x" % PARTNER}],
              "hostvars_prefix": "convox_", "compose": {"router": "convox_load_balancer.dns_name"},
              "groups": {"attention": "convox_status != 'running'"},
              "keyed_groups": [{"key": "convox_source.account_id", "prefix": "account"}]}
    out = listed(inventory(local_aws, accounts["env"], config, tmp_path, "--list"))
    assert sorted(out["_meta"]["hostvars"]) == ["local/inv-broken", "local/inv-east", "local/inv-partner"]
    assert out["attention"]["hosts"] == ["local/inv-broken"]
    assert out["account_%s" % PARTNER]["hosts"] == ["local/inv-partner"]
    assert out["_meta"]["hostvars"]["local/inv-east"]["router"].startswith("convox-inv-east-")


def test_no_regions_means_the_default_region_only(local_aws, accounts, tmp_path):
    out = listed(inventory(local_aws, accounts["env"], {}, tmp_path, "--list"))
    assert sorted(out["_meta"]["hostvars"]) == ["local/inv-broken", "local/inv-east"]


def test_cache_answers_without_aws_calls(local_aws, accounts, tmp_path):
    config = dict(BOTH, cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(tmp_path / "cache"),
                  cache_timeout=600)
    first = inventory(local_aws, accounts["env"], config, tmp_path, "--list").stdout
    before = local_aws.request_count()
    second = inventory(local_aws, accounts["env"], config, tmp_path, "--list").stdout
    assert local_aws.request_count() == before, "the cached inventory called AWS"
    assert plain(json.loads(second)) == plain(json.loads(first))
    cached = os.listdir(str(tmp_path / "cache"))
    assert len(cached) == 1 and "convox.rack.racks_" in cached[0]
    # another account's credentials: another cache key, hence a read of AWS
    inventory(local_aws, accounts["partner"], config, tmp_path, "--list")
    assert local_aws.request_count() > before and len(os.listdir(str(tmp_path / "cache"))) == 2
    before = local_aws.request_count()
    inventory(local_aws, accounts["env"], config, tmp_path, "--list", "--flush-cache")
    assert local_aws.request_count() > before


def test_a_region_that_cannot_be_read_is_a_warning(local_aws, accounts, tmp_path):
    """us-mars-1 is well formed but the local AWS does not serve it, as a region not enabled."""
    proc = inventory(local_aws, accounts["env"], {"regions": ["us-east-1", "us-mars-1"]}, tmp_path, "--list")
    assert sorted(listed(proc)["_meta"]["hostvars"]) == ["local/inv-broken", "local/inv-east"]
    assert "region us-mars-1 skipped" in proc.stderr


@pytest.mark.parametrize("config, message", [
    ({"regions": ["us-east-1"], "regoins": ["eu-west-1"]}, "unknown option(s) regoins"),
    ({"regions": ["us-east-1", "useast1"]}, "regions: 'useast1' is not an AWS region name"),
    ({"regions": ["us-mars-1"]}, "no region could be read: us-mars-1"),
    ({"regions": ["us-east-1"], "profile": "no-such-profile"}, "cannot use these credentials"),
    ({"regions": ["us-east-1"], "sources": [{"profile": "x", "role": "y"}]}, "sources[0]: unknown key(s) role"),
])
def test_bad_configuration_is_a_clear_error(local_aws, accounts, tmp_path, config, message):
    proc = inventory(local_aws, accounts["env"], config, tmp_path, "--list", expect_rc=None)
    assert proc.returncode != 0 or "No inventory was parsed" in proc.stderr
    assert message in " ".join(proc.stderr.split()), proc.stderr[-3000:]


def test_playbooks_run_against_rack_hosts(local_aws, accounts, runner, tmp_path):
    """A play on the group of running racks: tasks run locally, with the rack's variables."""
    config = tmp_path / "racks.convox.yml"
    config.write_text(yaml.safe_dump(dict({"plugin": "convox.rack.racks"}, **BOTH)))
    play = tmp_path / "check.yml"
    play.write_text(yaml.safe_dump([{
        "name": "Every running rack", "hosts": "convox_running", "gather_facts": False,
        "tasks": [{"name": "Read it", "convox.rack.rack_info": {"name": "{{ rack_name }}", "region": "{{ rack_region }}"},
                   "register": "info", "when": "rack_source.account_id == '%s'" % ACCOUNT},
                  {"name": "Same status", "ansible.builtin.assert": {"that": ["info.racks[0].status == rack_status"]},
                   "when": "info is not skipped"},
                  {"name": "A tag that looks like a template is not templated",
                   "ansible.builtin.assert": {"that": ["'lookup' in rack_tags.team", "'uid=' not in rack_tags.team"]},
                   "when": "inventory_hostname == 'local/inv-east'"}]}]))
    proc = runner.playbook(str(play), env=dict(accounts["env"], ANSIBLE_INVENTORY=str(config)))
    assert "ok: [local/inv-east]" in proc.stdout and "ok: [local/inv-west]" in proc.stdout
    table = runner.playbook(os.path.join(ROOT, "playbooks", "racks.yml"), env=dict(accounts["env"], ANSIBLE_INVENTORY=str(config)))
    assert '"local/inv-broken     failed   %s"' % COLLECTION_VERSION in table.stdout
    assert '"partner/inv-partner  running  %s"' % COLLECTION_VERSION in table.stdout


def test_as_an_awx_inventory_source(local_aws, accounts, tmp_path, monkeypatch):
    """As AWX syncs an inventory source sourced from a project: ansible-runner, the project's
    racks.convox.yml, the credential in the environment (AWX injects AWS_SECURITY_TOKEN too),
    ansible-inventory --list --export."""
    import ansible_runner

    project = tmp_path / "project"
    project.mkdir()
    (project / "racks.convox.yml").write_text(yaml.safe_dump(dict({"plugin": "convox.rack.racks"}, **BOTH)))
    env = dict(local_aws.env, **accounts["env"])
    env.update(AWS_SECURITY_TOKEN=env["AWS_SESSION_TOKEN"], PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".venv", "collections"))
    monkeypatch.setenv("PATH", VENV_BIN + os.pathsep + os.environ.get("PATH", ""))   # where ansible-runner looks
    out, err = ansible_runner.get_inventory("list", [str(project / "racks.convox.yml")], response_format="json",
                                            export=True, envvars=env, private_data_dir=str(tmp_path / "runner"),
                                            quiet=True)
    assert isinstance(out, dict), err
    out = plain(out)
    assert sorted(out["_meta"]["hostvars"]) == ["local/inv-broken", "local/inv-east", "local/inv-west", "partner/inv-partner"]
    assert out["_meta"]["hostvars"]["local/inv-west"]["rack_status"] == "running"
