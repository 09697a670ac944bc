"""Bad input through real ansible-playbook runs (issue 6), the integration half of
tests/unit/test_input_properties.py: hypothesis draws batches of invalid values (derandomized: the
same batches every run), and every AWS request of a run goes through the recording proxy
(scripts/aws_proxy.py), whose records must stay empty.

- modules: one ansible-playbook run per module loops it over its batch (tests/integration/playbooks/
  module_batch.yml); every result failed with a message naming the option;
- playbooks: a few runs of each playbook, each with one invalid variable, given as AWX gives survey
  answers (a vars file whose strings are !unsafe: data, never templates);
- hostile strings: in names (refused), in the current rack (CONVOX_RACK, the switch file), in tag
  values that AWS allows (written to AWS and read back verbatim), in tags set on AWS by someone else
  (the inventory shows them verbatim, compose, groups and plays never template them); the file that a
  template's shell command would create never appears.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import boto3
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from inventory_cli import ansible_inventory, listed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
BATCH_PLAYBOOK = os.path.join(ROOT, "tests", "integration", "playbooks", "module_batch.yml")
ACCOUNT = "545454545454"   # the hostile-tags rack lives here, away from other tests' racks

# A shell command in a template would create this file; no test may find it.
MARK = "/tmp/convox-rack-input-pwned"
JINJA = ["{{ lookup('pipe', 'touch %s') }}" % MARK, "{{ lookup('ansible.builtin.pipe', 'touch %s') }}" % MARK,
         "{%% set x = lookup('pipe', 'touch %s') %%}x" % MARK, "{% raw %}{{ raw }}{% endraw %}", "{{ 7 * 7 }}"]
SHELL = ["$(touch %s)" % MARK, "`touch %s`" % MARK, "; touch %s" % MARK, "a && touch %s" % MARK, "| touch %s" % MARK]
HOSTILE = JINJA + SHELL + ["line\nbreak", "nul\x00byte", "\u202egnp.exe", "rack\u200b", "🚀", "ｒａｃｋ", "x" * 10000]


def derandomized(examples):
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck))


def draw_batch(strategy, count):
    """`count` distinct examples of `strategy`, the same every run (hypothesis, derandomized)."""
    seen = []

    @derandomized(count * 3)
    @given(strategy)
    def collect(example):
        if example not in seen and len(seen) < count:
            seen.append(example)
    collect()
    return seen


# -- invalid values, by rule --------------------------------------------------------------------------------

def rack_name_ok(s):
    return isinstance(s, str) and re.fullmatch(r"[a-z](?:[a-z0-9-]*[a-z0-9])?", s) is not None and len(s) <= 25


anything = st.one_of(st.text(max_size=30), st.sampled_from(HOSTILE))
bad_names = st.one_of(anything, st.text("abcxyz019-", min_size=26, max_size=60),
                      st.sampled_from(["Production", "1rack", "rack-", "my_rack", "prod.eu"])).filter(
    lambda s: not rack_name_ok(s))
bad_types = st.one_of(anything, st.sampled_from(["t3small", "t3.enormous", "T3.small", "t3.0xlarge", "small.t3",
                                                 "t3." + "x" * 40])).filter(
    lambda s: re.fullmatch(r"[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|([1-9][0-9]*)?xlarge|"
                           r"metal(-[1-9][0-9]*xl)?)", s) is None or len(s) > 32)
bad_counts = st.one_of(st.integers(-10 ** 6, 0), st.integers(5001, 10 ** 12))
bad_cidrs = st.one_of(anything.filter(bool), st.sampled_from([
    "10.0.0.0/8", "10.0.0.0/25", "10.0.0.1/16", "10.0.0.0/255.255.0.0", "127.0.0.0/16", "169.254.0.0/16",
    "224.0.0.0/16", "fd00::/56", "10.0.0.0/016"]))
bad_retention = st.integers(-1000, 10 ** 6).filter(lambda d: d not in (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653))
bad_images = st.one_of(anything.filter(bool), st.sampled_from(["ubuntu", "ami-123", "AMI-0123456789abcdef0"])).filter(
    lambda s: re.fullmatch(r"ami-[0-9a-f]{8,17}", s) is None)
bad_waits = st.one_of(st.integers(-10 ** 6, 0), st.integers(86401, 10 ** 30))
bad_bools = st.one_of(st.sampled_from(["maybe", "yess", "2", "nope", "{{ true }}"]), st.integers(2, 1000))
bad_regions = st.one_of(anything.filter(bool), st.sampled_from(["US-EAST-1", "us-east", "mars-north-1a",
                                                                "us-" + "east" * 20 + "-1"])).filter(
    lambda s: re.fullmatch(r"[a-z]{2,4}(-[a-z]+)+-[0-9]+", s) is None or len(s) > 63)
bad_tags = st.one_of(
    st.builds(lambda k, v: {"team": "web", k: v}, st.sampled_from(["System", "rack", "TYPE", "App", "aws:x", "convox:x"]),
              st.just("v")),
    st.builds(lambda v: {"team": v}, st.one_of(st.sampled_from(HOSTILE), st.just("v" * 257))),
    st.builds(lambda k: {k: "v"}, st.sampled_from(["", "k" * 129, "a{b}", "semi;colon", "new\nline"])),
    st.just({"Team": "a", "team": "b"}), st.just({"k%d" % i: "v" for i in range(37)}))

# option -> (strategy, the word the message must name)
RACK_OPTIONS = {
    "name": (bad_names, "name"), "instance_type": (bad_types, "instance_type"),
    "instance_count": (bad_counts, "instance_count"), "vpc_cidr": (bad_cidrs, "vpc_cidr"),
    "log_retention": (bad_retention, "log_retention"), "image_id": (bad_images, "image_id"),
    "wait_timeout": (bad_waits, "wait_timeout"), "tags": (bad_tags, "tags"), "region": (bad_regions, "region"),
    "private": (bad_bools, "private"), "high_availability": (bad_bools, "high_availability"),
    "internal_only": (bad_bools, "internal_only"), "purge_tags": (bad_bools, "purge_tags"), "wait": (bad_bools, "wait"),
    "force": (bad_bools, "force"), "purge_data": (bad_bools, "purge_data"), "create": (bad_bools, "create"),
    "state": (st.sampled_from(["installed", "gone", "{{ 'absent' }}"]), "state"),
}
APP_OPTIONS = {
    "name": (bad_names, "name"), "rack": (bad_names, "rack"), "log_retention": (bad_retention, "log_retention"),
    "tags": (bad_tags, "tags"), "region": (bad_regions, "region"), "immutable_tags": (bad_bools, "immutable_tags"),
    "purge_tags": (bad_bools, "purge_tags"), "purge_data": (bad_bools, "purge_data"),
    "state": (st.sampled_from(["created", "deleted"]), "state"),
}
MODULES = {
    # module: (valid base arguments, options, batch size)
    "rack": ({"name": "input-props", "high_availability": False}, RACK_OPTIONS, 18),
    "app": ({"name": "web", "rack": "input-props"}, APP_OPTIONS, 10),
    "rack_info": ({}, {"name": (bad_names, "name"), "region": (bad_regions, "region")}, 6),
    "app_info": ({"rack": "input-props"}, {"rack": (bad_names, "rack"), "name": (bad_names, "name"),
                                           "region": (bad_regions, "region")}, 6),
}
# Always in the batch: hostile strings in names and tags, whatever hypothesis draws.
PINNED = {
    "rack": [("name", JINJA[0]), ("name", SHELL[0]), ("tags", {"team": JINJA[2]}), ("state", "{{ 'absent' }}")],
    "app": [("name", SHELL[1]), ("rack", JINJA[1]), ("tags", {"owner": "x\x00y"})],
    "rack_info": [("name", JINJA[0])],
    "app_info": [("name", "$(id)")],
}


@st.composite
def invalid_call(draw, options):
    option = draw(st.sampled_from(sorted(options)))
    return option, draw(options[option][0])


def names_option(msg, word):
    return re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.escape(word), msg) is not None


# -- helpers -------------------------------------------------------------------------------------------------------

class Unsafe(str):
    """A string written to a vars file as !unsafe, as AWX passes survey answers."""


def _unsafe(value):
    if isinstance(value, str):
        return Unsafe(value)
    if isinstance(value, dict):
        return {k: _unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsafe(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Unsafe, lambda d, v: d.represent_scalar("!unsafe", str(v), style='"'))


def unsafe_vars_file(path, variables):
    path.write_text(yaml.dump(_unsafe(variables), Dumper=_Dumper, allow_unicode=True))
    return "@" + str(path)


def failures(stdout):
    """The results of the failed tasks (and loop items) of a run, as the default callback prints them."""
    out = []
    for line in stdout.splitlines():
        if re.match(r"(fatal|failed): \[", line) and " => {" in line:
            out.append(json.loads(line.split(" => ", 1)[1]))
    return out


def failure_text(result):
    """A failed result's message, its argument errors and its loop items' messages."""
    return " ".join([str(result.get("msg", ""))] + list(result.get("argument_errors", []))
                    + [failure_text(r) for r in result.get("results", []) if isinstance(r, dict)])


def run_playbook(runner, playbook, tmp_path, variables=None, env=None, name="vars.yml"):
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), playbook]
    if variables is not None:
        cmd += ["-e", unsafe_vars_file(tmp_path / name, variables)]
    run_env = dict(runner.env, **(env or {}))
    return subprocess.run(cmd, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture()
def proxied(local_aws, runner, aws_proxy):
    """A Runner (conftest.py's) whose every AWS request goes through the recording proxy."""
    return type(runner)(local_aws, proxy=aws_proxy)


@pytest.fixture(autouse=True)
def no_mark():
    if os.path.exists(MARK):
        os.unlink(MARK)
    yield
    assert not os.path.exists(MARK), "a template or shell command in the input was run"


# -- modules -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_batch_of_invalid_arguments_fails_before_any_aws_request(module, proxied, aws_proxy, tmp_path):
    base, options, count = MODULES[module]
    calls = PINNED[module] + draw_batch(invalid_call(options), count)
    batch = [{"index": i, "module": module, "option": option, "args": dict(base, **{option: value})}
             for i, (option, value) in enumerate(calls)]
    calls_file, result_file = tmp_path / "calls.json", tmp_path / "results.json"
    calls_file.write_text(json.dumps(batch))
    proxied.playbook(BATCH_PLAYBOOK, {"calls_file": str(calls_file), "result_file": str(result_file)})
    results = json.loads(result_file.read_text())
    assert [r["item"]["index"] for r in results] == list(range(len(batch)))
    for call, result in zip(batch, results):
        word = options[call["option"]][1]
        value = call["args"][call["option"]]
        assert result.get("failed") is True, (call, result)
        assert names_option(result["msg"], word), (call["option"], value, result["msg"])
        # ansible-core 2.19 puts exception: "(traceback unavailable)" in every failed result; a crash
        # of the module would show its traceback, or a module_stderr.
        assert "module_stderr" not in result and "Traceback" not in str(result.get("exception", "")), result
        if (call["option"], value) in PINNED[module] and isinstance(value, str):
            # the message quotes the value (its first 64 characters): it arrived untemplated
            assert repr(value)[:60] in result["msg"] or value in result["msg"], \
                "the module did not get the string as given: %s" % result["msg"]
    assert aws_proxy.records == [], ["%s (%s)" % (r.name, r.path) for r in aws_proxy.records]


# -- playbooks ------------------------------------------------------------------------------------------------------

RACK_VARS = {
    "rack_instance_type": (bad_types, "instance_type"), "rack_instance_count": (bad_counts, "instance_count"),
    "rack_vpc_cidr": (bad_cidrs, "vpc_cidr"), "rack_log_retention": (bad_retention, "log_retention"),
    "rack_image_id": (bad_images, "image_id"), "rack_tags": (bad_tags, "tags"),
    "rack_wait_timeout": (bad_waits, "wait_timeout"), "rack_private": (bad_bools, "rack_private"),
    "rack_high_availability": (bad_bools, "rack_high_availability"), "rack_internal_only": (bad_bools, "rack_internal_only"),
    "rack_purge_tags": (bad_bools, "rack_purge_tags"), "rack_region": (bad_regions, "region"),
}
# playbook: (valid variables, invalid variables to draw from, runs)
PLAYBOOKS = {
    "install_rack.yml": ({"rack": "input-props"}, dict(RACK_VARS, rack=(bad_names.filter(bool), "name")), 4),
    "uninstall_rack.yml": ({"rack": "input-props"}, {
        "rack": (bad_names.filter(bool), "name"), "rack_wait_timeout": (bad_waits, "wait_timeout"),
        "rack_force": (bad_bools, "rack_force"), "rack_purge_data": (bad_bools, "rack_purge_data")}, 2),
    # update_rack.yml takes install's variables: the role validates them before the rack is read.
    "update_rack.yml": ({"rack": "input-props"}, dict(RACK_VARS, rack=(bad_names.filter(bool), "name")), 2),
    "rack_status.yml": ({"rack": "input-props"}, {
        "rack": (bad_names.filter(bool), "name"), "rack_region": (bad_regions, "region")}, 2),
    "create_app.yml": ({"rack": "input-props", "app": "web"}, {
        "rack": (bad_names.filter(bool), "rack"), "app": (bad_names.filter(bool), "name"),
        "app_log_retention": (bad_retention, "log_retention"), "app_tags": (bad_tags, "tags"),
        "app_immutable_tags": (bad_bools, "app_immutable_tags"), "rack_region": (bad_regions, "region")}, 3),
    "delete_app.yml": ({"rack": "input-props", "app": "web"}, {
        "app": (bad_names.filter(bool), "name"), "rack": (bad_names.filter(bool), "rack"),
        "app_purge_data": (bad_bools, "app_purge_data")}, 2),
    "apps.yml": ({"rack": "input-props"}, {"rack": (bad_names.filter(bool), "rack"), "app": (bad_names.filter(bool), "name")},
                 1),
    "switch.yml": ({"rack": "input-props"}, {
        "rack_region": (bad_regions, "region"),
        "rack_regions": (st.lists(bad_regions, min_size=1, max_size=2), "region")}, 1),
    "racks.yml": ({}, {"rack_region": (bad_regions, "region")}, 1),
}


def draw_cases(table, runs):
    """`runs` distinct variables of `table`, each with an invalid value (the fifth draw of hypothesis,
    derandomized, past the simplest examples)."""
    @st.composite
    def cases(draw):
        return [(v, draw(table[v][0])) for v in draw(st.permutations(sorted(table)))[:runs]]
    return draw_batch(cases(), 5)[-1]


PLAYBOOK_CASES = [(playbook, variable, value) for playbook, (_base, table, runs) in sorted(PLAYBOOKS.items())
                  for variable, value in draw_cases(table, runs)]


@pytest.mark.parametrize("playbook, variable, value", PLAYBOOK_CASES,
                         ids=["%s-%s-%d" % (c[0][:-4], c[1], i) for i, c in enumerate(PLAYBOOK_CASES)])
def test_a_playbook_refuses_an_invalid_variable_before_any_aws_request(
        playbook, variable, value, proxied, aws_proxy, tmp_path):
    base, table, _runs = PLAYBOOKS[playbook]
    word = table[variable][1]
    proc = run_playbook(proxied, os.path.join(ROOT, "playbooks", playbook), tmp_path, dict(base, **{variable: value}))
    assert proc.returncode != 0, proc.stdout[-3000:]
    failed = failures(proc.stdout)
    assert failed, proc.stdout[-3000:] + proc.stderr[-2000:]
    text = failure_text(failed[-1])
    assert names_option(text, word) or names_option(text, variable), (variable, value, text)
    assert aws_proxy.records == [], ["%s (%s)" % (r.name, r.path) for r in aws_proxy.records]


@pytest.mark.parametrize("variable, value", [("rack_instance_count", 0), ("rack_private", "maybe")])
def test_update_rack_validates_its_variables_before_reading_the_rack(variable, value, proxied, aws_proxy, tmp_path):
    proc = run_playbook(proxied, os.path.join(ROOT, "playbooks", "update_rack.yml"), tmp_path,
                        {"rack": "input-props", variable: value})
    assert proc.returncode != 0
    assert aws_proxy.records == [], sorted({r.name for r in aws_proxy.records})
    assert names_option(failure_text(failures(proc.stdout)[-1]), variable.split("_", 1)[1]) or \
        names_option(failure_text(failures(proc.stdout)[-1]), variable)


@pytest.mark.parametrize("playbook", ["install_rack.yml", "apps.yml"])
def test_a_hostile_current_rack_is_data(playbook, proxied, aws_proxy, tmp_path):
    """CONVOX_RACK and the current-rack file are data the lookup returns, never templates."""
    word = "rack"  # the variable the user sets (the rack role names its variables, not the module's `name`)
    for env in ({"CONVOX_RACK": JINJA[0]},
                {"XDG_CONFIG_HOME": str(tmp_path / "config")}):
        if "XDG_CONFIG_HOME" in env:
            current = tmp_path / "config" / "convox-ansible" / "current"
            current.parent.mkdir(parents=True, exist_ok=True)
            current.write_text(json.dumps({"rack": SHELL[1], "region": "", "name": "local/" + SHELL[1], "source": "local"}))
        proc = run_playbook(proxied, os.path.join(ROOT, "playbooks", playbook), tmp_path, env=env)
        assert proc.returncode != 0
        text = failure_text(failures(proc.stdout)[-1])
        assert names_option(text, word) and "must be lowercase letters" in text, text
        assert aws_proxy.records == []


# -- hostile strings that are valid data ---------------------------------------------------------------------------

# Tag values AWS takes (letters of any script, spaces, digits, _ . : / = + - @), chosen to look like
# commands, options or markup, and every limit: 128-character keys, 256-character values.
ALLOWED_HOSTILE_TAGS = {
    "team": "rm -rf /", "flags": "--force --yes", "ping": "@everyone", "expr": "a=b+c/d:e_f.g",
    "greeting": "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \u4f60\u597d", "spaces": "no\u00a0break\u3000wide",
    "separator": "line\u2028separator", "numbers": "\u0661\u0662\u0663 \u216b \u00bd", "confusable": "\u0440\u0430\u0441k",
    "k" * 128: "v" * 256, "accents": "\u00e9" * 256, "owner:team/sub-group": "platform", "answer": "-1",
}
# Not here: values with leading or trailing spaces (the local AWS's S3 strips them from tag values,
# while EC2, IAM and CloudWatch Logs keep them), and "false", "yes" and the like (ansible-core 2.19.14
# loads `!unsafe "false"`, as AWX writes survey answers, as a boolean: the tag becomes "False").
# What someone with access to the account may set on the bucket directly (S3 itself is less strict
# than IAM and the others): the inventory must show it as it is.
OUTSIDE_TAGS = {"note": JINJA[0], "cmd": SHELL[0], "raw": JINJA[3], "calc": JINJA[4]}


def account_env(local_aws, account):
    creds = local_aws.client("sts").assume_role(RoleArn="arn:aws:iam::%s:role/input-props" % account,
                                                RoleSessionName="input-props")["Credentials"]
    return {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"]}


def account_client(local_aws, env, service):
    return boto3.client(service, region_name="us-east-1", endpoint_url=local_aws.endpoint,
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=env["AWS_SESSION_TOKEN"])


def tag_dict(tags):
    return {t["Key"]: t["Value"] for t in tags or []}


def user_part(tags):
    return {k: v for k, v in tags.items() if k not in ("System", "Rack", "Type", "Name") and not k.startswith(("convox:",
                                                                                                               "aws:"))}


def test_tags_aws_allows_are_written_and_read_back_verbatim_and_never_templated(local_aws, runner, tmp_path):
    env = account_env(local_aws, ACCOUNT)
    rack = "input-hostile"
    proc = run_playbook(runner, os.path.join(ROOT, "playbooks", "install_rack.yml"), tmp_path,
                        {"rack": rack, "rack_high_availability": False, "rack_tags": ALLOWED_HOSTILE_TAGS,
                         "rack_poll_interval": 1}, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

    # in AWS, on the bucket, the VPC, the IAM role and the log group: as given
    s3 = account_client(local_aws, env, "s3")
    bucket = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("convox-%s-" % rack)
              and not b["Name"].endswith("-logs")][0]  # the rack's bucket, not its log bucket
    assert user_part(tag_dict(s3.get_bucket_tagging(Bucket=bucket)["TagSet"])) == ALLOWED_HOSTILE_TAGS
    ec2 = account_client(local_aws, env, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Rack", "Values": [rack]}])["Vpcs"][0]
    assert user_part(tag_dict(vpc["Tags"])) == ALLOWED_HOSTILE_TAGS
    iam = account_client(local_aws, env, "iam")
    role = iam.get_role(RoleName="convox-%s-us-east-1-instance" % rack)["Role"]
    assert user_part(tag_dict(role.get("Tags"))) == ALLOWED_HOSTILE_TAGS
    logs = account_client(local_aws, env, "logs")
    assert user_part(logs.list_tags_log_group(logGroupName="/convox/%s" % rack)["tags"]) == ALLOWED_HOSTILE_TAGS

    # someone sets tags on the bucket by hand that look like templates and commands
    tagset = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tagset + [{"Key": k, "Value": v}
                                                                      for k, v in OUTSIDE_TAGS.items()]})
    everything = dict(ALLOWED_HOSTILE_TAGS, **OUTSIDE_TAGS)

    # the module reads them back as they are
    out = tmp_path / "info.json"
    runner.playbook(os.path.join(ROOT, "tests", "integration", "playbooks", "module.yml"),
                    {"module_name": "rack_info", "module_args": {"name": rack}, "result_file": str(out)}, env=env)
    assert json.loads(out.read_text())["racks"][0]["tags"] == everything

    # the inventory shows them as they are, also through compose and keyed_groups
    config = tmp_path / "racks.convox.yml"
    config.write_text(yaml.safe_dump({
        "plugin": "convox.rack.racks", "regions": ["us-east-1"],
        "compose": {"rack_note": "rack_tags.note", "rack_everything": "rack_tags"},
        "keyed_groups": [{"key": "rack_tags.cmd", "prefix": "cmd"}, {"key": "rack_tags.note", "prefix": "note"}]}))
    listing = listed(ansible_inventory(config, "--list", env=dict(runner.env, **env)))
    host = listing["_meta"]["hostvars"]["local/%s" % rack]
    assert host["rack_tags"] == everything
    assert host["rack_note"] == OUTSIDE_TAGS["note"] and host["rack_everything"] == everything

    # a play on the rack's host uses them, writes them out, and templates nothing
    play = tmp_path / "use.yml"
    dump = tmp_path / "hostvars.json"
    play.write_text(yaml.safe_dump([{
        "name": "Use the rack's tags", "hosts": "convox", "gather_facts": False,
        "tasks": [
            {"name": "Show them", "ansible.builtin.debug": {"msg": "{{ rack_tags.note }}|{{ rack_tags.calc }}"}},
            {"name": "Write them", "ansible.builtin.copy": {
                "content": "{{ {'tags': rack_tags, 'note': rack_note, 'everything': rack_everything} | to_json }}",
                "dest": str(dump), "mode": "0600"}, "delegate_to": "localhost"}]}]))
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", str(config), str(play)], cwd=ROOT,
                          env=dict(runner.env, **env), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    written = json.loads(dump.read_text())
    assert written == {"tags": everything, "note": OUTSIDE_TAGS["note"], "everything": everything}
    shown = json.loads(re.search(r'"msg": (".*")', proc.stdout).group(1))
    assert shown == OUTSIDE_TAGS["note"] + "|" + OUTSIDE_TAGS["calc"]
