"""playbooks/switch.yml and the current rack, end to end: an exact name, a name without its org, a
unique part of a name; "ambiguous rack name" and "could not find rack" change nothing; then every
playbook takes its rack from -e rack=, else CONVOX_RACK, else the recorded current rack (with its
region), and uninstall_rack.yml only from -e rack=.

Racks live in an account of their own of the local AWS (see test_inventory.py)."""

from __future__ import annotations

import json
import os
import re

import pytest

from test_inventory import ROOT, account_env, install

ACCOUNT = "535353535353"  # an account of its own: test_awx.py uses 555555555555
BOTH_REGIONS = {"rack_regions": ["us-east-1", "eu-west-1"]}


def playbook(name):
    return os.path.join(ROOT, "playbooks", name)


@pytest.fixture(scope="module")
def racks(local_aws, direct):
    """Three racks to switch between, installed by the module's main() in this process (conftest.InProcess)."""
    env = account_env(local_aws, ACCOUNT)
    install(direct, env, "swq-alpha")
    install(direct, env, "swq-alpine")
    install(direct, env, "swq-west", region="eu-west-1")
    return env


@pytest.fixture
def home(tmp_path, racks):
    """A config directory of the test's own, and the environment that uses it (no CONVOX_RACK)."""
    env = dict(racks, XDG_CONFIG_HOME=str(tmp_path / "config"), CONVOX_RACK="")
    env["current"] = str(tmp_path / "config" / "convox-ansible" / "current")
    return env


def run(runner, home, name, extra_vars=None, expect_rc=0, check=False, **env):
    run_env = {k: v for k, v in home.items() if k != "current"}
    run_env.update(env)
    return runner.playbook(playbook(name), extra_vars, expect_rc=expect_rc, check=check, env=run_env)


def record(home, data):
    """Write the current-rack file as switch.yml does (to set up a test without running it)."""
    os.makedirs(os.path.dirname(home["current"]), exist_ok=True)
    with open(home["current"], "w", encoding="utf-8") as f:
        f.write(data if isinstance(data, str) else json.dumps(data) + "\n")


def current(home):
    with open(home["current"], encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("given, name", [
    ("local/swq-west", "local/swq-west"),     # exact, as racks.yml lists it
    ("swq-alpha", "local/swq-alpha"),         # the rack's name alone, though swq-alpha is also a part of no other
    ("west", "local/swq-west"),               # a part of one name only
    ("pine", "local/swq-alpine"),
])
def test_switch_records_the_rack(runner, home, given, name):
    proc = run(runner, home, "switch.yml", dict(BOTH_REGIONS, rack=given))
    assert '"msg": "Switched to %s"' % name in proc.stdout
    record = current(home)
    assert record["name"] == name and record["rack"] == name.split("/")[1]
    assert record["region"] == ("eu-west-1" if "west" in name else "us-east-1")
    assert oct(os.stat(home["current"]).st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("given, message", [
    ("swq-alp", "ambiguous rack name: swq-alp matches local/swq-alpha, local/swq-alpine"),
    ("swq", "ambiguous rack name: swq matches local/swq-alpha, local/swq-alpine, local/swq-west"),
    ("nope", "could not find rack: nope"),
    ("swq-west", "could not find rack: swq-west"),     # only us-east-1 is read without rack_regions
])
def test_switch_refuses_and_changes_nothing(runner, home, given, message):
    record(home, {"rack": "swq-alpha", "region": "us-east-1", "name": "local/swq-alpha", "source": "local"})
    before = open(home["current"], encoding="utf-8").read()
    extra = {"rack": given} if given == "swq-west" else dict(BOTH_REGIONS, rack=given)
    proc = run(runner, home, "switch.yml", extra, expect_rc=2)
    assert message in proc.stdout
    assert open(home["current"], encoding="utf-8").read() == before


def test_switch_needs_a_rack_and_check_mode_writes_nothing(runner, home):
    proc = run(runner, home, "switch.yml", expect_rc=2)
    assert "rack: is required (-e rack=NAME)" in proc.stdout
    proc = run(runner, home, "switch.yml", dict(BOTH_REGIONS, rack="west"), check=True)
    # check mode records nothing, and says so (issue 13, finding 9)
    assert "Would switch to local/swq-west (check mode: nothing was recorded)" in proc.stdout
    assert "Switched to" not in proc.stdout
    assert not os.path.exists(home["current"])


def test_default_file_is_under_home(runner, home, tmp_path):
    """Without XDG_CONFIG_HOME: ~/.config/convox-ansible/current."""
    env = {k: v for k, v in home.items() if k not in ("XDG_CONFIG_HOME", "current")}
    env.update(HOME=str(tmp_path / "home"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    proc = runner.playbook(playbook("switch.yml"), {"rack": "swq-alpha"}, env=dict(env, XDG_CONFIG_HOME=""))
    assert "Switched to local/swq-alpha" in proc.stdout
    with open(tmp_path / "home" / ".config" / "convox-ansible" / "current", encoding="utf-8") as f:
        assert json.load(f)["rack"] == "swq-alpha"


def shown(proc):
    """The rack rack_status.yml printed ("Name        local/x")."""
    for line in proc.stdout.splitlines():
        if '"Name        ' in line:
            return line.split('"Name        ')[1].rstrip('",')
    return None


def test_resolution_order(runner, home):
    """-e rack= over CONVOX_RACK over the current rack; the current rack brings its region."""
    record(home, {"rack": "swq-west", "region": "eu-west-1", "name": "local/swq-west", "source": "local"})
    # the current rack, found in its own region (eu-west-1; the default region is us-east-1)
    assert shown(run(runner, home, "rack_status.yml")) == "local/swq-west"
    # CONVOX_RACK over the file (in the default region), with or without its org
    assert shown(run(runner, home, "rack_status.yml", CONVOX_RACK="swq-alpha")) == "local/swq-alpha"
    assert shown(run(runner, home, "rack_status.yml", CONVOX_RACK="local/swq-alpine")) == "local/swq-alpine"
    # -e rack= over both; the current rack's region does not come with another rack
    assert shown(run(runner, home, "rack_status.yml", {"rack": "swq-alpine"}, CONVOX_RACK="swq-alpha")) == "local/swq-alpine"
    assert shown(run(runner, home, "rack_status.yml", {"rack": "swq-alpha"})) == "local/swq-alpha"
    # -e rack_region= over the recorded region
    proc = run(runner, home, "rack_status.yml", {"rack_region": "us-east-1"}, expect_rc=2)
    assert "could not find rack swq-west" in proc.stdout


def test_update_and_install_take_the_current_rack(runner, home):
    record(home, {"rack": "swq-west", "region": "eu-west-1", "name": "local/swq-west", "source": "local"})
    proc = run(runner, home, "update_rack.yml", check=True, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
               ANSIBLE_DISPLAY_OK_HOSTS="true")
    assert "PLAY [Update rack swq-west]" in proc.stdout
    assert re.search(r"rack swq-west is running at convox-swq-west-\S+\.eu-west-1\.elb\.amazonaws\.com: no change",
                     proc.stdout), proc.stdout[proc.stdout.find("Run on rack"):][:3000]
    proc = run(runner, home, "install_rack.yml", check=True, CONVOX_RACK="swq-alpha")
    assert "PLAY [Install rack swq-alpha]" in proc.stdout
    assert re.search(r"rack swq-alpha is running at \S+: no change", proc.stdout), proc.stdout


def test_uninstall_never_takes_the_current_rack(runner, home, local_aws):
    record(home, {"rack": "swq-alpha", "region": "us-east-1", "name": "local/swq-alpha", "source": "local"})
    before = local_aws.request_count()
    proc = run(runner, home, "uninstall_rack.yml", expect_rc=2, CONVOX_RACK="swq-alpha")
    assert "missing required arguments: rack" in proc.stdout or "rack: is required" in proc.stdout
    assert local_aws.request_count() == before


def test_no_current_rack(runner, home):
    """Nothing recorded, no CONVOX_RACK: rack_status.yml shows every rack of the region; update says how to name one."""
    proc = run(runner, home, "rack_status.yml")
    assert "PLAY [Status of every rack]" in proc.stdout
    assert "local/swq-alpha" in proc.stdout and "local/swq-alpine" in proc.stdout and "swq-west" not in proc.stdout


def test_lookup_reads_a_plain_line(runner, home, tmp_path):
    """A current file of one line (as written by hand, or by the Convox CLI's habit) is read too."""
    record(home, "local/swq-alpine\n")
    assert shown(run(runner, home, "rack_status.yml")) == "local/swq-alpine"
