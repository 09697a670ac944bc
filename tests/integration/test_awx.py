"""The collection as AWX and Automation Controller run it (issue 5, docs/awx.md).

- The job templates of examples/awx/ (job_templates.yml, surveys/*.json) against AWX's rules for
  survey specs and answers, and against the playbooks' variables.
- The execution environment: ansible-builder create from examples/awx/execution-environment.yml,
  and the collection's meta/execution-environment.yml as ansible-builder reads it.
- Every job template launched the way AWX launches it (tests/integration/awx_launch.py: a private
  data directory, ansible-runner, the collection installed from its tarball as in an execution
  environment), against the local AWS, behind a recording proxy (scripts/aws_proxy.py): one rack
  through install, status, update, create app, delete app, uninstall refused, uninstall; with the
  built-in AWS credential's three variables only (a session token as AWS_SECURITY_TOKEN), then with
  a role to assume (the "Convox assume role" credential type, external id included).
- The racks inventory source updated under the environment AWX sets for inventory updates.

Each life is one test (its steps in order); the tests work in accounts of their own of the local AWS
(moto keeps one set of resources per account)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import types

import boto3
import jinja2
import jinja2.meta
import pytest
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import awx_launch  # noqa: E402
from awx_launch import EXAMPLES, ROOT, VENV_BIN, LaunchRefused  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from aws_proxy import AwsProxy  # noqa: E402
# At import, as every test module does: later, in a session with tests/unit, `conftest` may be the other one.
from conftest import Runner  # noqa: E402

from ansible_collections.convox.rack.plugins.module_utils._rack import naming, params  # noqa: E402
from ansible_collections.convox.rack.plugins.module_utils._rack.version import COLLECTION_VERSION  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "555555555555"        # the account of the AWS credential's keys
ROLE_ACCOUNT = "666666666666"   # the account of the role to assume
ROLE_ARN = "arn:aws:iam::%s:role/convox-operator" % ROLE_ACCOUNT
EXTERNAL_ID = "convox-ext-7f3a9c"
RACK = "awx-rack"
ROLE_RACK = "awx-role-rack"
APP = "web"
TEMPLATES = awx_launch.job_templates()
CHECK_TIMINGS = {}


def template(playbook):
    return TEMPLATES["playbooks/%s.yml" % playbook]


def survey_of(playbook):
    return awx_launch.load_survey(template(playbook)["survey"])


# -- survey specs: AWX's rules --------------------------------------------------------------------------------

@pytest.mark.parametrize("playbook", sorted(TEMPLATES))
def test_survey_spec_passes_awx_rules(playbook):
    tpl = TEMPLATES[playbook]
    survey = awx_launch.load_survey(tpl["survey"])
    assert awx_launch.spec_errors(survey) == []
    assert os.path.isfile(os.path.join(ROOT, playbook)), "the template's playbook does not exist"
    for element in survey["spec"]:
        var = element["variable"]
        assert element.get("question_description"), "%s: no description" % var
        if "default" in element:
            # AWX keeps a default only if it passes its question's own rules (type, bounds, choices)
            assert awx_launch.element_errors(element, {var: element["default"]}) == [], var
            if element["required"] and element["type"] != "password":
                assert element["default"] != "", "%s: a required question with an empty default" % var
        if element["type"] in ("text", "textarea", "password") and "min" in element and "max" in element:
            assert 0 <= element["min"] <= element["max"], var
        if element["type"] == "multiplechoice":
            assert len(set(awx_launch._choices(element))) == len(awx_launch._choices(element)), var


def test_surveys_share_the_rules_of_names_and_regions():
    """The rack's name has the collection's rule, the region a list of region names; alike in every survey."""
    racks, regions = [], []
    for tpl in TEMPLATES.values():
        spec = {e["variable"]: e for e in awx_launch.load_survey(tpl["survey"])["spec"]}
        if tpl.get("ask_limit_on_launch"):
            # a template on the racks inventory's hosts: the job's limit names the racks, not a question
            assert "rack" not in spec and "rack_region" not in spec, tpl["name"]
            continue
        racks.append(spec["rack"])
        regions.append(spec["rack_region"])
        if "rack_confirm" in spec:
            assert (spec["rack_confirm"]["min"], spec["rack_confirm"]["max"]) == (1, naming.MAX_RACK_NAME)
        if "app" in spec:
            # the app's bucket name holds rack and app: together at most MAX_RACK_AND_APP characters
            assert spec["app"]["max"] == naming.MAX_RACK_AND_APP - 1
            assert "at most %d characters" % naming.MAX_RACK_AND_APP in spec["app"]["question_description"] \
                or tpl["playbook"].endswith("delete_app.yml")
    for rack in racks:
        assert rack == racks[0]
        assert rack["type"] == "text" and rack["required"] and "default" not in rack
        assert (rack["min"], rack["max"]) == (1, naming.MAX_RACK_NAME)
        assert "at most %d characters" % naming.MAX_RACK_NAME in rack["question_description"]
    for region in regions:
        assert region == regions[0]
        assert region["type"] == "multiplechoice" and region["required"]
        assert all(params.REGION_RE.match(r) for r in awx_launch._choices(region))
        assert region["default"] == "us-east-1"


def test_survey_defaults_pass_the_collections_own_checks():
    """A survey's defaults are values the modules accept (not only AWX's type and bounds)."""
    install = {e["variable"]: e for e in survey_of("install_rack")["spec"]}
    assert params.INSTANCE_TYPE_RE.match(install["rack_instance_type"]["default"])
    params.validate_vpc_cidr(install["rack_vpc_cidr"]["default"])
    assert install["rack_log_retention"]["default"] in params.LOG_RETENTION_DAYS
    assert install["rack_log_retention"]["max"] == max(params.LOG_RETENTION_DAYS)
    for key, value in params.DEFAULTS.items():
        question = install.get("rack_" + key)
        if question and "default" in question:
            assert str(question["default"]).lower() == str(value).lower(), key


# -- survey specs against the playbooks -----------------------------------------------------------------------

ANSIBLE_NAMES = {"omit", "item", "groups", "hostvars", "inventory_hostname", "lookup", "query", "q", "range",
                 "ansible_check_mode", "ansible_playbook_python", "true", "false", "none", "True", "False", "None"}
BOOL_CHOICES = {"true", "false"}


def _role_specs(role):
    with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f)["argument_specs"]


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def _referenced(node, env=jinja2.Environment()):
    """Variables a YAML tree's templates and conditions read."""
    names = set()
    for text in _strings(node):
        for source in ([text] if "{{" in text or "{%" in text else ["{{ %s }}" % text]):
            try:
                names |= jinja2.meta.find_undeclared_variables(env.parse(source))
            except jinja2.TemplateSyntaxError:
                continue
    return names


def playbook_variables(playbook):
    """(used, required, typed) of a playbook: the variables it and the role entry points it runs read,
    those a job from AWX must be given (no current rack there, so a play on localhost needs `rack`; a
    play on the racks inventory's hosts has each host's; confirmation where it removes), and their
    types from the roles' argument specs."""
    with open(os.path.join(ROOT, playbook), encoding="utf-8") as f:
        plays = yaml.safe_load(f)
    used, required, typed = set(), set(), {}
    for play in plays:
        if play.get("hosts") == "localhost":
            required.add("rack")
        entries = [(r["role"], "main", r.get("vars") or {}) for r in play.get("roles", [])]
        for task in (play.get("pre_tasks") or []) + (play.get("tasks") or []):
            inc = task.get("ansible.builtin.include_role") or task.get("include_role")
            if inc:
                entries.append((inc["name"], inc.get("tasks_from", "main"), task.get("vars") or {}))
        for role, entry, role_vars in entries:
            # an entry point without a spec of its own (check_types: it runs before any validation) reads none
            spec = _role_specs(role.split(".")[-1]).get(entry, {}).get("options", {})
            used |= set(spec)
            typed.update({k: v.get("type", "str") for k, v in spec.items()})
            required |= {k for k, v in spec.items() if v.get("required") and k not in role_vars}
            if any(k.endswith("_state") and v == "absent" for k, v in role_vars.items()):
                required.add("rack_confirm")
        used |= _referenced(play)
    return used - ANSIBLE_NAMES, required, typed


@pytest.mark.parametrize("playbook", sorted(TEMPLATES))
def test_survey_asks_what_the_playbook_needs_and_nothing_else(playbook):
    survey = {e["variable"]: e for e in awx_launch.load_survey(TEMPLATES[playbook]["survey"])["spec"]}
    used, required, typed = playbook_variables(playbook)
    assert not required - set(survey), "the survey does not ask %s" % sorted(required - set(survey))
    assert all(survey[v]["required"] for v in required), [v for v in required if not survey[v]["required"]]
    assert not set(survey) - used, "the playbook does not use %s" % sorted(set(survey) - used)
    for var, element in survey.items():
        kind = typed.get(var, "str")
        if kind == "bool":
            assert element["type"] == "multiplechoice" and set(awx_launch._choices(element)) == BOOL_CHOICES, var
        elif kind == "int":
            assert element["type"] == "integer", var
        else:
            assert kind in ("str", "raw") and element["type"] in ("text", "textarea", "password", "multiplechoice"), var


def test_awx_refuses_answers_that_break_the_rules():
    install = survey_of("install_rack")
    good = {"rack": "production", "rack_region": "eu-west-1"}
    assert awx_launch.launch_vars(install, awx_launch.form_answers(install, good))["rack_instance_type"] == "t3.small"
    good = awx_launch.form_answers(install, good)
    for bad, word in (({"rack_region": "eu-west-1"}, "'rack' value missing"),
                      (dict(good, rack="x" * 26), "too large"),
                      (dict(good, rack_region="mars-1"), "expected to be one of"),
                      (dict(good, rack_instance_count="3"), "expected to be an integer"),
                      (dict(good, rack_high_availability=True), "expected to be one of"),
                      (dict(good, rack_tags={"a": "b"}), "not allowed on launch")):
        with pytest.raises(LaunchRefused, match=re.escape(word)):
            awx_launch.launch_vars(install, bad)
    typed = {"rack": "production", "rack_region": "eu-west-1"}
    update = awx_launch.launch_vars(survey_of("update_rack"), awx_launch.form_answers(survey_of("update_rack"), typed))
    assert update["rack_instance_type"] == ""          # a blank text question: the form sends an empty string
    assert "rack_instance_count" not in update          # a blank integer question: not sent
    uninstall = survey_of("uninstall_rack")
    with pytest.raises(LaunchRefused, match="'rack_confirm' value missing"):
        awx_launch.launch_vars(uninstall, awx_launch.form_answers(uninstall, typed))


# -- the execution environment --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """The collection as an execution environment has it: the tarball `ansible-galaxy collection build`
    makes, installed, with amazon.aws beside it. (tarball, collections directory)"""
    started = time.time()
    base = tmp_path_factory.mktemp("ee")
    collections = base / "collections"
    # Only the execution environment's collections on the path (not .venv/collections, where
    # convox.rack is a link to this repository and would count as installed already).
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections))
    subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(base), ROOT],
                   check=True, capture_output=True, env=env)
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as f:
        version = yaml.safe_load(f)["version"]
    tarball = base / ("convox-rack-%s.tar.gz" % version)
    subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--no-deps", "--offline",
                    "-p", str(collections), str(tarball)], check=True, capture_output=True, env=env)
    assert (collections / "ansible_collections" / "convox" / "rack" / "MANIFEST.json").is_file()
    shutil.copytree(os.path.join(ROOT, ".venv", "collections", "ansible_collections", "amazon", "aws"),
                    collections / "ansible_collections" / "amazon" / "aws", symlinks=True)
    CHECK_TIMINGS["build and install the collection"] = time.time() - started
    return tarball, str(collections)


def test_execution_environment_build_context(collection, tmp_path):
    """ansible-builder create turns examples/awx/ into a build context that installs this collection
    (the tarball, named as requirements.yml names it) and its dependencies."""
    tarball, collections = collection
    work = tmp_path / "awx"
    shutil.copytree(EXAMPLES, work)
    shutil.copy(tarball, work)
    context = tmp_path / "context"
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-builder"), "create", "-f", str(work / "execution-environment.yml"),
                           "-c", str(context), "--output-filename", "Containerfile"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    assert "ansible-galaxy collection install" in containerfile and "-r requirements.yml" in containerfile
    assert "introspect" in containerfile
    build = context / "_build"
    assert (build / "collections" / tarball.name).is_file()
    # The galaxy stage (WORKDIR /build) installs what requirements.yml names: the tarball is found.
    target = tmp_path / "installed"
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--no-deps", "--offline",
                           "-r", "requirements.yml", "-p", str(target)], cwd=build, capture_output=True, text=True,
                          env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(target)), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / "ansible_collections" / "convox" / "rack" / "meta" / "execution-environment.yml").is_file()
    # The builder stage's introspection of the installed collections: the collection's own requirements.
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-builder"), "introspect", "--sanitize", collections],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = yaml.safe_load(proc.stdout)
    python = [line for line in found["python"] if "convox.rack" in line]
    system = [line for line in found["system"] if "convox.rack" in line]
    assert any(line.startswith("boto3") for line in python) and any(line.startswith("botocore") for line in python), found
    assert any(line.startswith("ca-certificates") for line in system), found
    assert not any(re.match(r"ansible(-core)?\b", line) for line in python), "no ansible-core in the requirements"
    with open(os.path.join(ROOT, "meta", "requirements.txt"), encoding="utf-8") as f:
        pins = [line for line in f if line.strip() and not line.startswith("#") and re.search(r"[=<>~!]", line)]
    assert pins == [], "meta/requirements.txt pins versions: %s" % pins


# -- the command line is unchanged -----------------------------------------------------------------------------

def test_command_line_uninstall_and_delete_need_no_confirmation(runner):
    """Outside AWX (no awx_job_id), uninstall_rack.yml and delete_app.yml take no rack_confirm."""
    proc = runner.playbook("playbooks/uninstall_rack.yml", {"rack": "awx-cli-none"})
    assert "rack awx-cli-none is uninstalled: no change" in proc.stdout
    assert "rack_confirm" not in proc.stdout
    proc = runner.playbook("playbooks/delete_app.yml", {"rack": "awx-cli-none", "app": "web"}, expect_rc=None)
    assert "rack_confirm" not in proc.stdout


# -- AWS_SECURITY_TOKEN on every path, not only the roles' ----------------------------------------------------

SECURITY_TOKEN_ACCOUNT = "565656565656"   # an account of its own: no rack of another test shows up
# Every module of the collection, called directly (no role to pass the token on).
DIRECT_PLAY = [{"name": "Call the modules directly", "hosts": "localhost", "connection": "local",
                "gather_facts": False, "tasks": [
                    {"name": "Read every rack", "convox.rack.rack_info": {}},
                    {"name": "Read one rack", "convox.rack.rack_info": {"name": "token-none"}},
                    {"name": "Uninstall a rack that is not there",
                     "convox.rack.rack": {"name": "token-none", "state": "absent"}},
                    # AWS says there is no such rack: the module read it
                    {"name": "Read the apps of a rack that is not there", "convox.rack.app_info": {"rack": "token-none"},
                     "register": "apps", "failed_when": "'no rack named token-none' not in apps.msg | default('')"},
                    {"name": "Delete an app of a rack that is not there",
                     "convox.rack.app": {"rack": "token-none", "name": "web", "state": "absent"}}]}]


def awx_credential_env(local_aws):
    """The environment AWX's Amazon Web Services credential gives a job (temporary keys, the token as
    AWS_SECURITY_TOKEN), and nothing else about AWS's credentials (no AWS_SESSION_TOKEN, no profile)."""
    key, secret, token = temporary_keys(local_aws, SECURITY_TOKEN_ACCOUNT, session="security-token")
    assert key.startswith("ASIA")
    return awx_launch.aws_credential(key, secret, token).env


def run_with(runner, env, playbook, tmp_path, extra_vars=None, expect_rc=0):
    """Run a playbook (a path, or a play as a list) with `env`; its stdout and the AWS calls it made."""
    if not isinstance(playbook, str):
        path = tmp_path / "direct.yml"
        path.write_text(yaml.safe_dump(playbook))
        playbook = str(path)
    runner.proxy.clear()
    proc = runner.playbook(playbook, extra_vars, env=env, expect_rc=expect_rc)
    return types.SimpleNamespace(calls=runner.proxy.forwarded(), stdout=proc.stdout)


@pytest.fixture()
def proxied(local_aws, aws_proxy):
    return Runner(local_aws, proxy=aws_proxy)


def test_security_token_is_used_by_racks_yml_and_direct_module_calls(proxied, local_aws, tmp_path):
    """Outside the roles (racks.yml, switch.yml and the modules themselves), with AWX's credential alone
    (AWS_SECURITY_TOKEN, which amazon.aws 10 does not read): every call carries the token."""
    env = awx_credential_env(local_aws)
    key = env["AWS_ACCESS_KEY_ID"]
    run = run_with(proxied, env, "playbooks/racks.yml", tmp_path)
    assert "NAME  STATUS" in run.stdout
    assert "tagging:GetResources" in {r.name for r in run.calls}
    assert_signed_by(run, key)
    # switch.yml reads the racks as racks.yml does (and, with no rack of that name, fails after reading)
    run = run_with(proxied, env, "playbooks/switch.yml", tmp_path, {"rack": "token-none"}, expect_rc=2)
    assert "could not find rack: token-none" in run.stdout
    assert_signed_by(run, key)
    # -vvv: the results show their invocation; the token is hidden there as session_token's own value is
    run = run_with(proxied, dict(env, ANSIBLE_VERBOSITY="3"), DIRECT_PLAY, tmp_path)
    names = {r.name for r in run.calls}
    assert {"tagging:GetResources", "sts:GetCallerIdentity"} <= names, sorted(names)
    assert_signed_by(run, key)
    assert '"invocation"' in run.stdout and env["AWS_SECURITY_TOKEN"] not in run.stdout


def test_security_token_is_not_paired_with_keys_given_as_options(proxied, local_aws, tmp_path):
    """Keys given as module options are another principal's: the environment's AWS_SECURITY_TOKEN (AWX's
    credential) is not sent with them."""
    env = awx_credential_env(local_aws)
    options = {"access_key": "AKIAOPTIONKEY0000001", "secret_key": "option-secret"}
    play = [dict(DIRECT_PLAY[0], tasks=[{"name": "Read every rack", "convox.rack.rack_info": options},
                                        {"name": "Uninstall a rack that is not there",
                                         "convox.rack.rack": dict(options, name="token-none", state="absent")}])]
    run = run_with(proxied, env, play, tmp_path)
    assert_signed_by(run, options["access_key"], with_token=False)


# -- the setup playbook, against AWX's API ---------------------------------------------------------------------

def test_setup_playbook_defines_everything_in_awx(tmp_path):
    """examples/awx/setup.yml with the awx.awx modules, against a stand-in for AWX's API that checks what AWX
    checks (tests/integration/awx_api.py): what it defines is what examples/awx/ says."""
    import awx_api

    api = awx_api.FakeAwx().start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONTROLLER_", "TOWER_"))}
    env.update(CONTROLLER_HOST=api.url, CONTROLLER_USERNAME="admin", CONTROLLER_PASSWORD="admin-password",
               AWS_ACCESS_KEY_ID="AKIAEXAMPLEEXAMPLE12", AWS_SECRET_ACCESS_KEY="setup-secret-key-0123456789",
               AWS_SESSION_TOKEN="setup-session-token-0123456789", ANSIBLE_NOCOLOR="1",
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp_path))
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(EXAMPLES, "setup.yml"),
           "-e", "convox_awx_scm_url=https://git.example.com/platform/convox-rack.git",
           "-e", "convox_awx_ee_image=registry.example.com/convox-rack-ee:0.1.0",
           "-e", "convox_awx_assume_role_arn=%s" % ROLE_ARN, "-e", "convox_awx_assume_role_external_id=%s" % EXTERNAL_ID]
    started = time.time()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    finally:
        api.stop()
    CHECK_TIMINGS["setup.yml"] = time.time() - started
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    for secret in ("setup-secret-key-0123456789", "setup-session-token-0123456789", EXTERNAL_ID):
        assert secret not in proc.stdout + proc.stderr

    ctype = api.named("credential_types", "Convox assume role")
    assert {k: ctype[k] for k in ("kind", "inputs", "injectors")} == \
        {k: awx_launch.credential_type()[k] for k in ("kind", "inputs", "injectors")}   # "{{ role_arn }}" as written
    aws = api.named("credentials", "Convox AWS")
    assert aws["inputs"] == {"username": "AKIAEXAMPLEEXAMPLE12", "password": "setup-secret-key-0123456789",
                             "security_token": "setup-session-token-0123456789"}
    role = api.named("credentials", "Convox assume role")
    assert role["credential_type"] == ctype["id"] and role["inputs"] == {"role_arn": ROLE_ARN, "external_id": EXTERNAL_ID}
    project = api.named("projects", "Convox rack")
    ee = api.named("execution_environments", "Convox rack EE")
    assert project["scm_url"].endswith("convox-rack.git") and project["default_environment"] == ee["id"]
    inventory = api.named("inventories", "Convox")
    host = api.named("hosts", "localhost")
    assert host["inventory"] == inventory["id"]
    assert yaml.safe_load(host["variables"]) == {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    source = api.named("inventory_sources", "Convox racks")
    assert (source["source"], source["source_path"], source["source_project"], source["credential"]) == \
        ("scm", "examples/awx/inventory/racks.convox.yml", project["id"], aws["id"])
    assert yaml.safe_load(source["source_vars"]) == {"CONVOX_ASSUME_ROLE_ARN": ROLE_ARN,
                                                     "CONVOX_ASSUME_ROLE_EXTERNAL_ID": EXTERNAL_ID}
    assert len(api.store["job_templates"]) == len(TEMPLATES)
    for tpl in TEMPLATES.values():
        jt = api.named("job_templates", tpl["name"])
        assert (jt["playbook"], jt["project"], jt["inventory"], jt["execution_environment"]) == \
            (tpl["playbook"], project["id"], inventory["id"], ee["id"])
        assert jt["survey_enabled"] and not jt["ask_variables_on_launch"]
        assert jt["ask_job_type_on_launch"] == tpl["ask_job_type_on_launch"]
        assert jt["ask_limit_on_launch"] == tpl.get("ask_limit_on_launch", False)
        assert api.surveys[jt["id"]] == awx_launch.load_survey(tpl["survey"])
        assert api.associations[("job_templates", jt["id"], "credentials")] == [aws["id"], role["id"]]


# -- launching the job templates --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sts_recorder(local_aws):
    recorder = awx_launch.StsRecorder(local_aws.endpoint).start()
    yield recorder
    recorder.stop()
    assert not recorder.errors, recorder.errors


@pytest.fixture(scope="module")
def proxy(sts_recorder):
    """The jobs' AWS: the recording proxy (who signed each call, with a token or not), in front of the
    STS recorder (which role, external id and keys), in front of the local AWS."""
    p = AwsProxy(sts_recorder.url).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def controller(collection, proxy, tmp_path_factory):
    project = tmp_path_factory.mktemp("project") / "convox-rack"
    for rel in awx_launch.project_files():
        dest = project / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), dest)
    # AWX_TASK_ENV: the jobs' AWS is the local one (through the proxy); nothing else about AWS is set.
    return awx_launch.Controller(str(project), collection[1], str(tmp_path_factory.mktemp("awx")),
                                 task_env={"AWS_ENDPOINT_URL": proxy.url})


def temporary_keys(local_aws, account, session="awx-credential"):
    creds = local_aws.client("sts").assume_role(RoleArn="arn:aws:iam::%s:role/awx" % account,
                                                RoleSessionName=session)["Credentials"]
    return creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]


@pytest.fixture(scope="module")
def aws_credential(local_aws):
    """AWX's Amazon Web Services credential holding temporary keys: they only work with their token."""
    key, secret, token = temporary_keys(local_aws, ACCOUNT)
    assert key.startswith("ASIA")
    return awx_launch.aws_credential(key, secret, token)


@pytest.fixture(scope="module")
def role_credential():
    return awx_launch.custom_credential(awx_launch.credential_type(), {"role_arn": ROLE_ARN, "external_id": EXTERNAL_ID})


def client(local_aws, credential_or_keys, service):
    if isinstance(credential_or_keys, awx_launch.Credential):
        env = credential_or_keys.env
        keys = (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SECURITY_TOKEN"))
    else:
        keys = credential_or_keys
    return boto3.client(service, region_name=REGION, endpoint_url=local_aws.endpoint, aws_access_key_id=keys[0],
                        aws_secret_access_key=keys[1], aws_session_token=keys[2])


def rack_of(local_aws, keys, rack):
    """The rack's bucket tags (its record) in the keys' account, or None."""
    s3 = client(local_aws, keys, "s3")
    for bucket in s3.list_buckets()["Buckets"]:
        if bucket["Name"].startswith("convox-%s-" % rack) and len(bucket["Name"]) == len("convox-%s-" % rack) + 12:
            tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"]}
            if tags.get("Rack") == rack and tags.get("convox:status") != "uninstalled":
                return tags
    return None


class Launcher:
    """Launches a template, times it, and checks what every job must show."""

    def __init__(self, local_aws, controller, proxy):
        self.local_aws, self.controller, self.proxy = local_aws, controller, proxy
        self.timings = []

    def __call__(self, playbook, answers, credentials, expect="successful", **kwargs):
        self.proxy.clear()
        started = time.time()
        job = self.controller.launch(template(playbook), answers, credentials, **kwargs)
        self.timings.append((playbook, round(time.time() - started, 1)))
        job.calls = self.proxy.forwarded()
        assert job.status == expect, job.explain()
        self.check_collection_from_ee(job)
        return job

    def check_collection_from_ee(self, job):
        """The collection's roles ran from the execution environment's install, not from the project."""
        paths = {e["event_data"].get("task_path", "").split(":")[0] for e in job.events
                 if e["event"] == "playbook_on_task_start"}
        roles = {p for p in paths if "/roles/" in p}
        assert roles, "no role task ran"
        assert all(p.startswith(self.controller.ee_collections) for p in roles), roles
        assert all(p.startswith(os.path.join(job.private_data_dir, "project")) for p in paths - roles), paths - roles


@pytest.fixture(scope="module")
def launch(local_aws, controller, proxy):
    launcher = Launcher(local_aws, controller, proxy)
    yield launcher
    print("\njob timings (s): %s; %s" % (launcher.timings, {k: round(v, 1) for k, v in CHECK_TIMINGS.items()}))


def secrets_of(*credentials, recorder=None):
    """The credentials' secrets, and those of every role session STS handed out so far."""
    secrets = [s for c in credentials for s in c.secrets]
    for role in (recorder.assumed if recorder else []):
        secrets += [role["secret_access_key"], role["session_token"]]
    return secrets


def assert_no_secret_left(job, secrets):
    """No secret in any job event (the job's output) or in anything the job left behind. The one
    exception is ansible-runner's `command` artifact: its record of the environment it started the
    job with, where AWX put the credentials (as env/envvars holds them); it proves the search works."""
    assert secrets and all(len(s) >= 6 for s in secrets)
    events = json.dumps(job.events)
    for secret in secrets:
        assert secret not in events, "a secret is in the job events"
    command = os.path.join(job.artifacts, "command")
    found = []
    for path, text in job.left_behind():
        for secret in secrets:
            if secret in text:
                found.append(path)
    assert set(found) <= {command}, "secrets left in %s" % sorted(set(found) - {command})
    with open(command, encoding="utf-8") as f:
        assert any(s in f.read() for s in secrets), "the search for secrets found nothing where they are"


def assert_signed_by(job, key, with_token=True):
    assert job.calls, "no AWS call went through the proxy"
    wrong = sorted({(r.name, r.access_key, r.has_token) for r in job.calls if r.access_key != key or r.has_token != with_token})
    assert not wrong, "calls not signed by %s%s: %s" % (key, " with its token" if with_token else "", wrong[:10])


def show_msg(job, task):
    """The message a debug task printed (its last loop item's, for a loop)."""
    results = [e for e in job.task_results(task) if e["event"] == "runner_item_on_ok"] or \
        [e for e in job.task_results(task) if e["event"] == "runner_on_ok"]
    assert results, "task %r did not run:\n%s" % (task, job.explain())
    msg = results[-1]["event_data"]["res"]["msg"]
    # "Show what was done": the summary line first, then one line per change
    return msg[0] if task == "Show what was done" and isinstance(msg, list) else msg


# One rack through its life, with the AWS credential's three variables only (the steps below, in
# order: one test, so that pytest-xdist cannot hand the steps of a life to different workers).

def test_lifecycle_with_the_aws_credential(launch, controller, proxy, local_aws, aws_credential):
    step_install_rack(launch, local_aws, aws_credential)
    step_rack_status(launch, aws_credential)
    step_racks_inventory_source(controller, local_aws, aws_credential, proxy)
    step_upgrade_racks(launch, controller, local_aws, aws_credential)
    step_update_rack(launch, local_aws, aws_credential)
    step_create_app(launch, local_aws, aws_credential)
    step_delete_app_needs_the_rack_name_again(launch, local_aws, aws_credential)
    step_uninstall_needs_the_rack_name_again(launch, local_aws, aws_credential)
    step_uninstall_rack(launch, local_aws, aws_credential)


def step_install_rack(launch, local_aws, aws_credential):
    job = launch("install_rack", {"rack": RACK, "rack_region": REGION, "rack_high_availability": "false"},
                 [aws_credential])
    assert job.extra_vars["rack_instance_type"] == "t3.small"     # the survey's defaults came along
    assert "Run on rack %s" % RACK in job.tasks_run()
    assert re.match(r"rack %s is running at \S+\.elb\.amazonaws\.com: \d+ changes?$" % RACK, show_msg(job, "Show what was done"))
    assert job.stats()["changed"].get("localhost")
    record = rack_of(local_aws, aws_credential, RACK)
    assert record and record["convox:instance_type"] == "t3.small" and record["convox:high_availability"] == "false"
    # every call signed by the credential's temporary key, with its token (AWS_SECURITY_TOKEN)
    assert_signed_by(job, aws_credential.env["AWS_ACCESS_KEY_ID"])
    assert {"ec2:CreateVpc", "autoscaling:CreateAutoScalingGroup", "s3:CreateBucket"} <= {r.name for r in job.calls}
    assert_no_secret_left(job, secrets_of(aws_credential))


def step_rack_status(launch, aws_credential):
    job = launch("rack_status", {"rack": RACK, "rack_region": REGION}, [aws_credential])
    lines = show_msg(job, "Show rack %s" % RACK)
    assert "Name        local/%s" % RACK in lines and "Status      running" in lines
    assert "  instance_count=1" in lines and "  instance_type=t3.small" in lines
    assert not job.stats()["changed"]
    assert_signed_by(job, aws_credential.env["AWS_ACCESS_KEY_ID"])
    assert_no_secret_left(job, secrets_of(aws_credential))


def step_racks_inventory_source(controller, local_aws, aws_credential, proxy):
    """The inventory source file, updated as AWX updates an inventory source (ansible-inventory --list
    --export, ANSIBLE_INVENTORY_UNPARSED_FAILED and ANSIBLE_INVENTORY_EXPORT set)."""
    proxy.clear()
    update = controller.update_inventory("examples/awx/inventory/racks.convox.yml", [aws_credential])
    assert update.status == "successful", update.stdout
    inv = update.output
    host = "local/%s" % RACK
    assert host in inv["convox"]["hosts"] and host in inv["convox_running"]["hosts"]
    assert host not in inv.get("convox_attention", {}).get("hosts", [])
    hostvars = inv["_meta"]["hostvars"][host]
    assert hostvars["rack_status"] == "running" and hostvars["rack_region"] == REGION
    assert hostvars["rack_router"] == hostvars["rack_load_balancer"]["dns_name"]
    assert inv["convox"]["vars"]["ansible_connection"] == "local"
    update.calls = proxy.forwarded()
    assert_signed_by(update, aws_credential.env["AWS_ACCESS_KEY_ID"])
    # A source that cannot be parsed fails the update (ANSIBLE_INVENTORY_UNPARSED_FAILED), not an empty inventory.
    broken = os.path.join(controller.project_src, "examples", "awx", "inventory", "broken.racks.yml")
    with open(broken, "w", encoding="utf-8") as f:
        f.write("plugin: convox.rack.racks\nregions: [mars-1]\n")
    try:
        update = controller.update_inventory("examples/awx/inventory/broken.racks.yml", [aws_credential])
    finally:
        os.unlink(broken)
    assert update.status == "failed" and update.rc != 0
    assert "'mars-1' is not an AWS region name" in update.stdout


def set_recorded_version(local_aws, keys, rack, version):
    """Write `version` as the release that last converged the rack (its bucket's convox:version tag)."""
    s3 = client(local_aws, keys, "s3")
    bucket = [b["Name"] for b in s3.list_buckets()["Buckets"]
              if b["Name"].startswith("convox-%s-" % rack) and len(b["Name"]) == len("convox-%s-" % rack) + 12]
    tags = dict(rack_of(local_aws, keys, rack), **{"convox:version": version})
    s3.put_bucket_tagging(Bucket=bucket[0], Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})


def step_upgrade_racks(launch, controller, local_aws, aws_credential):
    """The Upgrade racks template on the inventory the racks source imported, limited to a version group:
    the job runs on the racks of that group only (not on localhost), in check mode plans, then upgrades.
    The rack's record says it was converged by 0.1.0 (its convox:version tag rewritten here: the job
    reads nothing else of the version; tests/integration/test_upgrade.py upgrades a rack the 0.1.0
    release really built). A rack recorded by a newer release is refused unless the survey allows it."""
    host, old = "local/%s" % RACK, "0.1.0"
    set_recorded_version(local_aws, aws_credential, RACK, old)
    update = controller.update_inventory("examples/awx/inventory/racks.convox.yml", [aws_credential])
    controller.import_inventory(update)
    assert controller.inventory_groups["version_0_1_0"]["hosts"] == [host]
    line = "upgraded rack %s from %s to %s" % (RACK, old, COLLECTION_VERSION)

    planned = launch("upgrade_racks", {}, [aws_credential], job_type="check", limit="version_0_1_0")
    assert "would upgrade rack %s from %s to %s" % (RACK, old, COLLECTION_VERSION) in planned.stdout, planned.explain()
    assert set(planned.stats()["ok"]) == {host}      # the limit's racks only: not localhost
    assert rack_of(local_aws, aws_credential, RACK)["convox:version"] == old

    upgraded = launch("upgrade_racks", {}, [aws_credential], limit="version_0_1_0")
    assert "  " + line in upgraded.stdout, upgraded.explain()
    assert set(upgraded.stats()["changed"]) == {host}
    assert rack_of(local_aws, aws_credential, RACK)["convox:version"] == COLLECTION_VERSION
    assert_signed_by(upgraded, aws_credential.env["AWS_ACCESS_KEY_ID"])
    assert_no_secret_left(upgraded, secrets_of(aws_credential))
    # the next inventory update moves the rack to its new version's group
    controller.import_inventory(controller.update_inventory("examples/awx/inventory/racks.convox.yml", [aws_credential]))
    assert "version_0_1_0" not in controller.inventory_groups
    assert host in controller.inventory_groups["version_" + re.sub(r"[.-]", "_", COLLECTION_VERSION)]["hosts"]

    # a rack recorded by a newer release: refused (the job fails, nothing changes) unless allowed
    set_recorded_version(local_aws, aws_credential, RACK, "99.0.0")
    refused = launch("upgrade_racks", {}, [aws_credential], expect="failed", limit=host)
    assert "99.0.0" in refused.explain() and not refused.stats()["changed"]
    assert rack_of(local_aws, aws_credential, RACK)["convox:version"] == "99.0.0"
    allowed = launch("upgrade_racks", {"rack_allow_downgrade": "true"}, [aws_credential], limit=host)
    assert allowed.extra_vars["rack_allow_downgrade"] == "true" and not allowed.failed()   # as AWX sends a choice
    assert rack_of(local_aws, aws_credential, RACK)["convox:version"] == COLLECTION_VERSION


def step_update_rack(launch, local_aws, aws_credential):
    job = launch("update_rack", {"rack": RACK, "rack_region": REGION, "rack_instance_count": 2}, [aws_credential])
    assert job.extra_vars["rack_instance_type"] == ""     # blank: kept
    assert re.match(r"rack %s is running at \S+\.elb\.amazonaws\.com: \d+ changes?$" % RACK, show_msg(job, "Show what was done"))
    record = rack_of(local_aws, aws_credential, RACK)
    assert record["convox:instance_count"] == "2" and record["convox:instance_type"] == "t3.small"
    assert_signed_by(job, aws_credential.env["AWS_ACCESS_KEY_ID"])
    assert_no_secret_left(job, secrets_of(aws_credential))


def step_create_app(launch, local_aws, aws_credential):
    job = launch("create_app", {"rack": RACK, "rack_region": REGION, "app": APP}, [aws_credential])
    assert re.match(r"app %s of rack %s is running: \d+ change\(s\)$" % (APP, RACK), show_msg(job, "Show what was done"))
    logs = client(local_aws, aws_credential, "logs")
    assert logs.describe_log_groups(logGroupNamePrefix="/convox/%s/apps/%s" % (RACK, APP))["logGroups"]
    assert_signed_by(job, aws_credential.env["AWS_ACCESS_KEY_ID"])
    assert_no_secret_left(job, secrets_of(aws_credential))


def step_delete_app_needs_the_rack_name_again(launch, local_aws, aws_credential):
    answers = {"rack": RACK, "rack_region": REGION, "app": APP}
    with pytest.raises(LaunchRefused, match="'rack_confirm' value missing"):
        launch.controller.launch(template("delete_app"), answers, [aws_credential])
    job = launch("delete_app", dict(answers, rack_confirm="awx-rak"), [aws_credential], expect="failed")
    [failure] = job.failed()
    msg = failure["event_data"]["res"]["msg"]
    assert msg.startswith("rack_confirm: ") and "(%s)" % RACK in msg and "got 'awx-rak'" in msg
    assert job.calls == [], "AWS was called before the confirmation was checked"
    logs = client(local_aws, aws_credential, "logs")
    assert logs.describe_log_groups(logGroupNamePrefix="/convox/%s/apps/%s" % (RACK, APP))["logGroups"]

    job = launch("delete_app", dict(answers, rack_confirm=RACK), [aws_credential])
    assert re.match(r"app %s of rack %s is deleted: \d+ changes?" % (APP, RACK), show_msg(job, "Show what was done"))
    assert not logs.describe_log_groups(logGroupNamePrefix="/convox/%s/apps/%s" % (RACK, APP))["logGroups"]
    assert_signed_by(job, aws_credential.env["AWS_ACCESS_KEY_ID"])
    assert_no_secret_left(job, secrets_of(aws_credential))


def step_uninstall_needs_the_rack_name_again(launch, local_aws, aws_credential):
    answers = {"rack": RACK, "rack_region": REGION}
    with pytest.raises(LaunchRefused, match="'rack_confirm' value missing"):
        launch.controller.launch(template("uninstall_rack"), answers, [aws_credential])
    for typed in ("production", "awx-rack "):
        job = launch("uninstall_rack", dict(answers, rack_confirm=typed, rack_purge_data="true"), [aws_credential],
                     expect="failed")
        [failure] = job.failed()
        assert failure["event_data"]["task"] == "Check the rack's name was typed again to uninstall it"
        msg = failure["event_data"]["res"]["msg"]
        assert msg.startswith("rack_confirm: ") and "type its name again (%s)" % RACK in msg, msg
        assert job.calls == [], "AWS was called before the confirmation was checked"
    assert rack_of(local_aws, aws_credential, RACK)["convox:status"] == "running"


def step_uninstall_rack(launch, local_aws, aws_credential):
    job = launch("uninstall_rack", {"rack": RACK, "rack_region": REGION, "rack_confirm": RACK, "rack_purge_data": "true"},
                 [aws_credential])
    assert re.match(r"rack %s is uninstalled: \d+ changes?$" % RACK, show_msg(job, "Show what was done"))
    assert rack_of(local_aws, aws_credential, RACK) is None
    ec2 = client(local_aws, aws_credential, "ec2")
    assert not ec2.describe_vpcs(Filters=[{"Name": "tag:Rack", "Values": [RACK]}])["Vpcs"]
    assert_signed_by(job, aws_credential.env["AWS_ACCESS_KEY_ID"])
    assert_no_secret_left(job, secrets_of(aws_credential))


# Another rack through its life with a role to assume: the AWS credential's keys only assume it;
# everything else is done with the role's keys.

def test_lifecycle_through_a_role(launch, controller, proxy, local_aws, sts_recorder, aws_credential, role_credential):
    step_install_through_a_role(launch, local_aws, sts_recorder, aws_credential, role_credential)
    step_status_and_inventory_through_a_role(launch, controller, proxy, local_aws, sts_recorder, aws_credential,
                                             role_credential)
    step_a_role_that_cannot_be_assumed(launch, aws_credential)
    step_create_app_and_uninstall_through_a_role(launch, local_aws, sts_recorder, aws_credential, role_credential)


def assert_through_role(job, recorder, aws_credential, assumed_before):
    """STS AssumeRole signed by the credential's key (with its token), for the role, with its external id;
    every other call signed by the key of the session the job got, with its token. The job's session."""
    base = aws_credential.env["AWS_ACCESS_KEY_ID"]
    sts = [r for r in job.calls if r.name == "sts:AssumeRole"]
    others = [r for r in job.calls if r.name != "sts:AssumeRole"]
    assert sts and all(r.access_key == base and r.has_token for r in sts), [(r.access_key, r.has_token) for r in sts]
    sessions = recorder.assumed[assumed_before:]
    assert len(sessions) == len(sts) >= 1
    assert all(s["role_arn"] == ROLE_ARN and s["external_id"] == EXTERNAL_ID for s in sessions), sessions
    keys = {s["access_key_id"] for s in sessions}
    assert others and all(r.access_key in keys and r.has_token for r in others), \
        sorted({(r.name, r.access_key) for r in others if r.access_key not in keys})[:10]
    return sessions[-1]


def session_keys(session):
    return session["access_key_id"], session["secret_access_key"], session["session_token"]


def step_install_through_a_role(launch, local_aws, sts_recorder, aws_credential, role_credential):
    before = len(sts_recorder.assumed)
    job = launch("install_rack", {"rack": ROLE_RACK, "rack_region": REGION, "rack_high_availability": "false",
                                  "rack_instance_type": "t3.micro"}, [aws_credential, role_credential])
    assert re.match(r"rack %s is running at \S+\.elb\.amazonaws\.com: \d+ changes?$" % ROLE_RACK, show_msg(job, "Show what was done"))
    assert [e for e in job.task_results("Assume role %s" % ROLE_ARN) if e["event"] == "runner_on_ok"]
    session = assert_through_role(job, sts_recorder, aws_credential, before)
    assert session["session_name"] == "awx-job-%d" % job.id          # CloudTrail shows the AWX job
    # The rack is in the role's account, not in the credential's.
    assert rack_of(local_aws, session_keys(session), ROLE_RACK)["convox:instance_type"] == "t3.micro"
    assert client(local_aws, session_keys(session), "sts").get_caller_identity()["Account"] == ROLE_ACCOUNT
    assert rack_of(local_aws, aws_credential, ROLE_RACK) is None
    assert_no_secret_left(job, secrets_of(aws_credential, role_credential, recorder=sts_recorder))


def step_status_and_inventory_through_a_role(launch, controller, proxy, local_aws, sts_recorder, aws_credential,
                                             role_credential):
    before = len(sts_recorder.assumed)
    job = launch("rack_status", {"rack": ROLE_RACK, "rack_region": REGION}, [aws_credential, role_credential])
    assert "Status      running" in show_msg(job, "Show rack %s" % ROLE_RACK)
    assert_through_role(job, sts_recorder, aws_credential, before)
    assert_no_secret_left(job, secrets_of(aws_credential, role_credential, recorder=sts_recorder))

    # The inventory source with both credentials: the racks of the role's account only.
    before = len(sts_recorder.assumed)
    proxy.clear()
    update = controller.update_inventory("examples/awx/inventory/racks.convox.yml", [aws_credential, role_credential])
    assert update.status == "successful", update.stdout
    assert update.output["convox"]["hosts"] == ["local/%s" % ROLE_RACK]
    update.calls = proxy.forwarded()
    assert_through_role(update, sts_recorder, aws_credential, before)


def step_a_role_that_cannot_be_assumed(launch, aws_credential):
    bad = awx_launch.custom_credential(awx_launch.credential_type(), {"role_arn": "not-a-role", "external_id": EXTERNAL_ID})
    job = launch("rack_status", {"rack": ROLE_RACK, "rack_region": REGION}, [aws_credential, bad], expect="failed")
    [failure] = job.failed()
    assert failure["event_data"]["task"] == "Fail when the role cannot be assumed"
    msg = failure["event_data"]["res"]["msg"]
    assert msg.startswith("rack_assume_role_arn: cannot assume not-a-role with the external id given: "), msg
    assert "RoleArn" in msg
    assert not [r for r in job.calls if r.name != "sts:AssumeRole"], "AWS was called without the role"
    assert_no_secret_left(job, secrets_of(aws_credential, bad))


def step_create_app_and_uninstall_through_a_role(launch, local_aws, sts_recorder, aws_credential, role_credential):
    creds = [aws_credential, role_credential]
    before = len(sts_recorder.assumed)
    job = launch("create_app", {"rack": ROLE_RACK, "rack_region": REGION, "app": APP}, creds)
    assert show_msg(job, "Show what was done").startswith("app %s of rack %s is running" % (APP, ROLE_RACK))
    assert_through_role(job, sts_recorder, aws_credential, before)

    before = len(sts_recorder.assumed)
    job = launch("uninstall_rack", {"rack": ROLE_RACK, "rack_region": REGION, "rack_confirm": ROLE_RACK,
                                    "rack_force": "true", "rack_purge_data": "true"}, creds)
    assert re.match(r"rack %s is uninstalled: \d+ changes?$" % ROLE_RACK, show_msg(job, "Show what was done"))
    session = assert_through_role(job, sts_recorder, aws_credential, before)
    assert rack_of(local_aws, session_keys(session), ROLE_RACK) is None
    assert_no_secret_left(job, secrets_of(aws_credential, role_credential, recorder=sts_recorder))
