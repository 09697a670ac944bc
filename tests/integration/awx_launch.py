"""AWX without AWX: job templates and inventory updates launched the way AWX (and Automation
Controller) launches them, for tests/integration/test_awx.py.

What AWX does, and this module does the same (read from ansible/awx: awx/main/tasks/jobs.py,
awx/main/models/mixins.py, awx/api/views, awx/main/models/credential/, awx/main/utils/safe_yaml.py):

- A survey spec is checked when it is saved (JobTemplateSurveySpec._validate_spec_data: spec_errors
  here) and the answers at launch (SurveyJobTemplateMixin._survey_element_validation and
  _accept_or_ignore_variables: element_errors, LaunchRefused). The job's extra variables are the
  template's, then the survey's defaults that pass the survey's own rules, then the answers; AWX
  adds its meta variables (awx_job_id, tower_job_id, ...) on top.
- The private data directory: project/ (a copy of the project's files, .git left out), inventory/hosts
  (an executable script printing the inventory as JSON), env/extravars (YAML; every value not set on
  the template itself tagged !unsafe), env/cmdline (-u root, --check, --diff, -v...), env/settings,
  and env/envvars: AWX's ANSIBLE_* settings, the job's ids, ANSIBLE_COLLECTIONS_PATH and
  ANSIBLE_ROLES_PATH built as AWX builds them (the project's ansible.cfg read for collections_path),
  and what the credentials inject (the Amazon Web Services credential: AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY and, with a token, AWS_SECURITY_TOKEN only; a custom credential type: its env
  injectors rendered in a sandboxed Jinja environment). Current AWX hands the same environment to
  ansible-runner as its envvars argument; the process gets the same environment either way.
- ansible_runner.run(private_data_dir=..., ident=<job id>, playbook=..., inventory=...,
  suppress_env_files=True) runs ansible-playbook; the job events are read from
  artifacts/<id>/job_events/, as AWX's callback receiver gets them.
- An inventory update (source "Sourced from a Project") runs `ansible-inventory --list --export -i
  project/<source_path> --output artifacts/<id>/output.json --playbook-dir ...` through ansible-runner
  (the `args` file), with STANDARD_INVENTORY_UPDATE_ENV (ANSIBLE_INVENTORY_UNPARSED_FAILED=True,
  ANSIBLE_INVENTORY_EXPORT=True, ...), the credentials' variables and the source's variables as
  environment variables.

Where this differs from a real AWX: no container (the execution environment is a directory of
installed collections on ANSIBLE_COLLECTIONS_PATH, where /usr/share/ansible/collections would be);
AWX's own callback plugin indirect_instance_count is not enabled (it is AWX's, not ansible's);
AWX_TASK_ENV carries AWS_ENDPOINT_URL to point the jobs at the local AWS, as an administrator
would set it in AWX's settings; each job has a home of its own (HOME, and ansible's async and
temporary directories in it, as the container's home would hold them).
"""

from __future__ import annotations

import copy
import glob
import itertools
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager

import yaml

from inventory_cli import plain

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))          # aws_proxy (StsRecorder)
EXAMPLES = os.path.join(ROOT, "examples", "awx")
VENV_BIN = os.path.join(ROOT, ".venv", "bin")

# awx/api/views: JobTemplateSurveySpec.ALLOWED_TYPES
ALLOWED_TYPES = {"text": str, "textarea": str, "password": str, "multiplechoice": str, "multiselect": str,
                 "integer": int, "float": float}
# awx/settings/defaults.py: the ANSIBLE_* settings every job's environment starts from
AWX_ANSIBLE_SETTINGS = {"ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
                        "ANSIBLE_FORCE_COLOR": "True", "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True"}
# awx/main/constants.py
STANDARD_INVENTORY_UPDATE_ENV = {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "True", "ANSIBLE_INVENTORY_EXPORT": "True",
                                 "ANSIBLE_VERBOSE_TO_STDERR": "True", "ANSIBLE_HOST_PATTERN_MISMATCH": "error"}
# What a process of the execution environment inherits besides what AWX sets.
INHERITED = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")


class LaunchRefused(Exception):
    """AWX's answer 400 to a launch: the answers break the survey's rules."""

    def __init__(self, errors):
        super().__init__("; ".join(errors))
        self.errors = errors


# -- surveys ---------------------------------------------------------------------------------------------

def _choices(element):
    choices = element.get("choices") or []
    if isinstance(choices, str):
        choices = [c for c in choices.splitlines() if c.strip()]
    return list(choices)


def spec_errors(spec):
    """What AWX's API answers when the survey spec is saved (400 unless empty)."""
    errors = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if field not in spec:
            errors.append("Field '%s' is missing from survey spec." % field)
        elif not isinstance(spec[field], kind):
            errors.append("Expected %s for field '%s', received %s type." % (kind.__name__, field, type(spec[field]).__name__))
    if errors:
        return errors
    if not spec["spec"]:
        return ["'spec' doesn't contain any items."]
    seen = set()
    for idx, item in enumerate(spec["spec"]):
        if not isinstance(item, dict):
            errors.append("Survey question %d is not a json object." % idx)
            continue
        missing = [f for f in ("type", "question_name", "variable", "required") if f not in item]
        if missing:
            errors.append("'%s' missing from survey question %d" % (missing[0], idx))
            continue
        for field in ("type", "question_name", "variable"):
            if not isinstance(item[field], str):
                errors.append("'%s' in survey question %d expected to be string." % (field, idx))
        if not isinstance(item["required"], bool):
            errors.append("'required' in survey question %d expected to be boolean." % idx)
        if item["variable"] in seen:
            errors.append("'variable' '%s' duplicated in survey question %d." % (item["variable"], idx))
        seen.add(item["variable"])
        qtype = item["type"]
        if qtype not in ALLOWED_TYPES:
            errors.append("'%s' in survey question %d is not one of '%s' allowed question types."
                          % (qtype, idx, ", ".join(ALLOWED_TYPES)))
            continue
        if "default" in item and item["default"] != "":
            # JSON numbers: an integer default is an int, a float default a float (AWX: isinstance)
            allowed = ALLOWED_TYPES[qtype]
            if not isinstance(item["default"], allowed) or (allowed is int and isinstance(item["default"], bool)):
                errors.append("Default value %s in survey question %d expected to be %s."
                              % (item["default"], idx, qtype if qtype in ("integer", "float") else "string"))
        for key in ("min", "max"):
            if key in item and item[key] is not None and (not isinstance(item[key], int) or isinstance(item[key], bool)):
                errors.append("The %s limit in survey question %d expected to be integer." % (key, idx))
        if qtype in ("multiplechoice", "multiselect"):
            if "choices" not in item:
                errors.append("Survey question %d of type %s must specify choices." % (idx, qtype))
                continue
            if "default" in item:
                defaults = item["default"].splitlines() if isinstance(item["default"], str) else item["default"]
                if qtype == "multiplechoice" and len(defaults) > 1:
                    errors.append("Multiple Choice (Single Select) can only have one default value.")
                if any(d not in _choices(item) for d in defaults):
                    errors.append("Default choice must be answered from the choices listed.")
        if isinstance(item.get("default"), str) and item["default"].startswith("$encrypted$"):
            errors.append("$encrypted$ is a reserved keyword, may not be used for new default in position %d." % idx)
    return errors


def element_errors(element, data, validate_required=True):
    """SurveyJobTemplateMixin._survey_element_validation: an answer (or a default) against its question."""
    var, qtype = element["variable"], element["type"]
    errors = []
    if var not in data:
        if element["required"] and validate_required:
            errors.append("'%s' value missing" % var)
        return errors
    value = data[var]
    limit_min = element.get("min") if element.get("min") not in ("", None) else None
    limit_max = element.get("max") if element.get("max") not in ("", None) else None
    if qtype in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return ["Value %s for '%s' expected to be a string." % (value, var)]
        if limit_min is not None and len(value) < int(limit_min):
            errors.append("'%s' value %s is too small (length is %d must be at least %s)." % (var, value, len(value), limit_min))
        if limit_max is not None and len(value) > int(limit_max):
            errors.append("'%s' value %s is too large (must be no more than %s)." % (var, value, limit_max))
    elif qtype == "integer":
        if isinstance(value, bool) or not isinstance(value, int):  # AWX tests type(value) != int: no bools
            return ["Value %s for '%s' expected to be an integer." % (value, var)]
        if limit_min is not None and value < int(limit_min):
            errors.append("'%s' value %s is too small (must be at least %s)." % (var, value, limit_min))
        if limit_max is not None and value > int(limit_max):
            errors.append("'%s' value %s is too large (must be no more than %s)." % (var, value, limit_max))
    elif qtype == "float":
        if isinstance(value, bool) or not isinstance(value, (float, int)):
            return ["Value %s for '%s' expected to be a numeric type." % (value, var)]
        if limit_min is not None and value < float(limit_min):
            errors.append("'%s' value %s is too small (must be at least %s)." % (var, value, limit_min))
        if limit_max is not None and value > float(limit_max):
            errors.append("'%s' value %s is too large (must be no more than %s)." % (var, value, limit_max))
    elif qtype == "multiselect":
        if not isinstance(value, list):
            return ["'%s' value is expected to be a list." % var]
        errors += ["Value %s for '%s' expected to be one of %s." % (v, var, _choices(element))
                   for v in value if v not in _choices(element)]
    elif qtype == "multiplechoice":
        if value not in _choices(element):
            errors.append("Value %s for '%s' expected to be one of %s." % (value, var, _choices(element)))
    return errors


def form_answers(survey, typed):
    """What AWX's launch form submits: each question's default unless the person typed something else;
    an optional text question left blank is sent as an empty string (AWX 17 to 24 do), an optional
    question of another type left blank is not sent."""
    answers = {}
    for element in survey["spec"]:
        var = element["variable"]
        if var in typed:
            answers[var] = typed[var]
        elif element.get("default") not in (None, ""):
            answers[var] = element["default"]
        elif element["type"] in ("text", "textarea") and not element["required"]:
            answers[var] = ""
    answers.update({k: v for k, v in typed.items() if k not in answers})
    return answers


def launch_vars(survey, answers, template_extra_vars=None, ask_variables_on_launch=False):
    """The extra variables AWX gives a job launched with these survey answers; LaunchRefused as AWX
    refuses the launch. Template extra vars < survey defaults (those that pass the rules) < answers."""
    answers = dict(answers or {})
    errors = []
    for element in survey["spec"]:
        errors += element_errors(element, answers)
    unknown = sorted(set(answers) - {e["variable"] for e in survey["spec"]})
    if unknown and not ask_variables_on_launch:
        errors.append("Variables %s are not allowed on launch. Check the Prompt on Launch setting on the Job Template "
                      "to include Extra Variables." % ", ".join(unknown))
    if errors:
        raise LaunchRefused(errors)
    extra_vars = copy.deepcopy(template_extra_vars or {})
    for element in survey["spec"]:
        default = element.get("default")
        if default is not None and not element_errors(element, {element["variable"]: default}):
            extra_vars[element["variable"]] = default
    extra_vars.update(answers)
    return extra_vars


# -- AWX's YAML for extra variables ----------------------------------------------------------------------

class _UnsafeDumper(yaml.SafeDumper):
    def represent_data(self, data):
        if isinstance(data, str):
            return self.represent_scalar("!unsafe", data)
        return super().represent_data(data)


def safe_dump(extra_vars, safe_dict=None):
    """awx.main.utils.safe_yaml.safe_dump: every top-level entry not set as is on the template is !unsafe."""
    safe_dict = safe_dict or {}
    out = []
    for key, value in extra_vars.items():
        dumper = yaml.SafeDumper if key in safe_dict and safe_dict[key] == value else _UnsafeDumper
        out.append(yaml.dump_all([{key: value}], None, Dumper=dumper, default_flow_style=False))
    return "".join(out)


# -- credentials -----------------------------------------------------------------------------------------

class Credential:
    """A credential attached to a job: what it injects into the job's environment."""

    def __init__(self, name, env, secrets):
        self.name = name
        self.env = env
        self.secrets = [s for s in secrets if s]


def aws_credential(access_key, secret_key, security_token=None, name="Convox AWS"):
    """The managed "Amazon Web Services" credential type (awx/main/models/credential/injectors.py aws)."""
    env = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    if security_token:
        env["AWS_SECURITY_TOKEN"] = security_token
    return Credential(name, env, [secret_key, security_token])


def custom_credential(credential_type, inputs, name=None):
    """A credential of a custom type: its env injectors rendered as AWX renders them (sandboxed Jinja,
    the inputs given, empty ones left out); the values of secret fields are the credential's secrets."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    fields = {f["id"]: f for f in credential_type["inputs"]["fields"]}
    unknown = set(inputs) - set(fields)
    if unknown:
        raise ValueError("credential inputs %s are not fields of %s" % (sorted(unknown), credential_type["name"]))
    missing = [f for f in credential_type["inputs"].get("required", []) if not inputs.get(f)]
    if missing:
        raise ValueError("%s: required inputs missing: %s" % (credential_type["name"], missing))
    namespace = {k: v for k, v in inputs.items() if v not in ("", None)}
    sandbox = ImmutableSandboxedEnvironment()
    env = {var: sandbox.from_string(tmpl).render(**namespace)
           for var, tmpl in (credential_type.get("injectors") or {}).get("env", {}).items()}
    if (credential_type.get("injectors") or {}).get("extra_vars"):
        raise NotImplementedError("extra_vars injectors")
    secrets = [inputs.get(k) for k, f in fields.items() if f.get("secret")]
    return Credential(name or credential_type["name"], env, secrets)


# -- a finished job --------------------------------------------------------------------------------------

class Job:
    def __init__(self, job_id, private_data_dir, home, result, extra_vars):
        self.id = job_id
        self.private_data_dir = private_data_dir
        self.home = home
        self.status = result.status
        self.rc = result.rc
        self.extra_vars = extra_vars
        self.artifacts = os.path.join(private_data_dir, "artifacts", str(job_id))
        self.events = []
        for path in glob.glob(os.path.join(self.artifacts, "job_events", "*.json")):
            with open(path, encoding="utf-8") as f:
                self.events.append(json.load(f))
        self.events.sort(key=lambda e: e.get("counter", 0))

    @property
    def stdout(self):
        return "\n".join(e.get("stdout", "") for e in self.events)

    def task_results(self, name):
        """The results (runner_on_*, and runner_item_on_* of loops) of the tasks whose name contains `name`."""
        return [e for e in self.events if e["event"].startswith(("runner_on_", "runner_item_on_"))
                and name in (e.get("event_data", {}).get("task") or "")]

    def tasks_run(self):
        return [e["event_data"]["task"] for e in self.events if e["event"] == "playbook_on_task_start"]

    def failed(self):
        return [e for e in self.events if e["event"] == "runner_on_failed" and not e["event_data"].get("ignore_errors")]

    def stats(self):
        stats = [e for e in self.events if e["event"] == "playbook_on_stats"]
        return stats[-1]["event_data"] if stats else {}

    def left_behind(self, wait=20):
        """Every file the job left: its artifacts (events, status, rc...) and its home (ansible's
        temporary and async results), as (path, text). An async task's module file (it holds the
        module's arguments) stays in ansible's temporary directory until its wrapper process, which
        outlives the task, removes it: it is given `wait` seconds to do so."""
        tmp = os.path.join(self.home, ".ansible", "tmp")
        deadline = time.time() + wait
        while glob.glob(os.path.join(tmp, "ansible-tmp-*")) and time.time() < deadline:
            time.sleep(0.2)
        for base in (self.artifacts, self.home):
            for dirpath, _dirs, files in os.walk(base):
                for name in files:
                    path = os.path.join(dirpath, name)
                    if os.path.islink(path) or not os.path.isfile(path):
                        continue
                    with open(path, "rb") as f:
                        yield path, f.read().decode("utf-8", "replace")

    def __repr__(self):
        return "<Job %s %s rc=%s>" % (self.id, self.status, self.rc)

    def explain(self):
        """What went wrong, for assertion messages."""
        lines = ["job %s: %s (rc %s)" % (self.id, self.status, self.rc)]
        for event in self.failed():
            res = event["event_data"].get("res", {})
            lines.append("FAILED %s: %s" % (event["event_data"].get("task"), res.get("msg") or res))
        return "\n".join(lines) + "\n" + self.stdout[-6000:]


class InventoryUpdate:
    def __init__(self, update_id, private_data_dir, result, stdout):
        self.id = update_id
        self.private_data_dir = private_data_dir
        self.status = result.status
        self.rc = result.rc
        self.stdout = stdout
        output = os.path.join(private_data_dir, "artifacts", str(update_id), "output.json")
        self.output = None
        if os.path.exists(output):
            with open(output, encoding="utf-8") as f:
                self.raw_output = json.load(f)
            self.output = plain(self.raw_output)


# -- the controller --------------------------------------------------------------------------------------

def project_files(root=ROOT):
    """The files of the project as a git checkout of it holds them (tracked, and new ones not ignored)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                         capture_output=True, check=True).stdout.decode()
    return sorted(p for p in out.split("\0") if p and os.path.exists(os.path.join(root, p)))


def _read_ansible_cfg(project_dir, keys):
    """awx.main.utils.ansible.read_ansible_config: [defaults] keys of the project's ansible.cfg."""
    import configparser

    path = os.path.join(project_dir, "ansible.cfg")
    if not os.path.exists(path):
        return {}
    parser = configparser.ConfigParser()
    parser.read(path)
    return {k: parser.get("defaults", k) for k in keys if parser.has_option("defaults", k)}


@contextmanager
def _environ(keep=INHERITED):
    """The test process's environment, pared down to what an execution environment's process would
    inherit, while ansible-runner starts (it seeds a job's environment with os.environ)."""
    saved = dict(os.environ)
    try:
        for key in list(os.environ):
            if key not in keep:
                del os.environ[key]
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Controller:
    """A stand-in for AWX's task runner.

    project_src: the project (a directory holding what the git checkout holds)
    ee_collections: the execution environment's installed collections (a directory holding
        ansible_collections/), where /usr/share/ansible/collections would be in the image
    base_dir: where private data directories are made
    task_env: AWX_TASK_ENV, extra variables for every job's environment
    """

    ids = itertools.count(101)

    def __init__(self, project_src, ee_collections, base_dir, task_env=None, inventory_hostvars=None):
        self.project_src = project_src
        self.ee_collections = ee_collections
        self.base_dir = base_dir
        self.task_env = dict(task_env or {})
        self.inventory_id = 7
        self.inventory_name = "Convox"
        # The job templates' inventory: localhost, as examples/awx/setup.yml defines it, and what the
        # racks inventory source imported (import_inventory): its hosts and groups.
        self.inventory_hostvars = inventory_hostvars or {
            "localhost": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}
        self.inventory_groups = {}
        self._imported_hosts = set()

    # -- the private data directory ---------------------------------------------------------------------
    def _private_data_dir(self, job_id):
        pdd = os.path.join(self.base_dir, "awx_%d_job" % job_id)
        os.makedirs(os.path.join(pdd, "env"))
        os.makedirs(os.path.join(pdd, "inventory"))
        shutil.copytree(self.project_src, os.path.join(pdd, "project"), symlinks=True,
                        ignore=shutil.ignore_patterns(".git"))
        home = os.path.join(self.base_dir, "awx_%d_home" % job_id)
        os.makedirs(home)
        return pdd, home

    def _write(self, pdd, name, text, mode=0o600):
        path = os.path.join(pdd, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def import_inventory(self, update):
        """What AWX does with a successful inventory update of a source with `overwrite: true`
        (examples/awx/setup.yml; awx-manage inventory_import --overwrite): the hosts and groups the
        source gave last time are replaced by those of this update; hosts added by hand (localhost) stay."""
        assert update.status == "successful", update.stdout
        for host in self._imported_hosts:
            self.inventory_hostvars.pop(host, None)
        output = update.output
        self._imported_hosts = set(output.get("_meta", {}).get("hostvars", {}))
        for group in output.values():
            if isinstance(group, dict):
                self._imported_hosts |= set(group.get("hosts", []))
        for host in self._imported_hosts:
            self.inventory_hostvars[host] = dict(output.get("_meta", {}).get("hostvars", {}).get(host, {}))
        self.inventory_groups = {
            name: {"hosts": list(group.get("hosts", [])), "children": list(group.get("children", [])),
                   "vars": dict(group.get("vars", {}))}
            for name, group in output.items() if name not in ("_meta", "all", "ungrouped")}

    def _inventory_script(self, pdd):
        """inventory/hosts: AWX's script (Inventory.get_script_data with hostvars and towervars): every
        group with its hosts, children and variables, the top groups and `ungrouped` under `all`."""
        hostvars = {}
        for index, (host, hv) in enumerate(sorted(self.inventory_hostvars.items()), start=1):
            hostvars[host] = dict(hv, remote_tower_enabled="true", remote_tower_id=index)
        groups = copy.deepcopy(self.inventory_groups)
        grouped = {h for g in groups.values() for h in g["hosts"]}
        children = {c for g in groups.values() for c in g["children"]}
        data = {"_meta": {"hostvars": hostvars},
                "all": {"children": sorted(set(groups) - children) + ["ungrouped"]},
                "ungrouped": {"hosts": sorted(set(hostvars) - grouped)}}
        data.update(groups)
        script = "#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(data)
        return self._write(pdd, "inventory/hosts", script, mode=0o700)

    def _base_env(self, pdd, home, job_id):
        env = {k: os.environ[k] for k in INHERITED if k in os.environ}
        env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "/usr/bin:/bin")
        env["HOME"] = home
        # In a container the job's user (root: AWX passes -u root) has its home as HOME, where ansible
        # keeps its temporary files and async results. Here HOME is the job's own directory, and ansible's
        # `~root` would be the machine's: these say where that home is.
        env.update(ANSIBLE_ASYNC_DIR=os.path.join(home, ".ansible_async"),
                   ANSIBLE_LOCAL_TEMP=os.path.join(home, ".ansible", "tmp"),
                   ANSIBLE_REMOTE_TEMP=os.path.join(home, ".ansible", "tmp"))
        env.update(AWX_ANSIBLE_SETTINGS)
        env.update(self.task_env)
        env["AWX_PRIVATE_DATA_DIR"] = pdd
        # RunJob.build_env: collections and roles paths, the project's ansible.cfg read for its own
        config = _read_ansible_cfg(os.path.join(pdd, "project"), ["collections_path", "roles_path"])
        for env_key, setting, folder, default in (
                ("ANSIBLE_ROLES_PATH", "roles_path", "requirements_roles", "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles"),
                ("ANSIBLE_COLLECTIONS_PATH", "collections_path", "requirements_collections",
                 "~/.ansible/collections:" + self.ee_collections)):
            paths = default.split(":")
            if setting in config:
                paths = [config[setting]] + paths
            env[env_key] = os.pathsep.join([os.path.join(pdd, folder)] + paths)
        return env

    # -- a job ----------------------------------------------------------------------------------------------
    def launch(self, template, answers=None, credentials=(), job_type="run", diff=False, verbosity=0,
               template_extra_vars=None, ask_variables_on_launch=False, limit=None):
        """Launch a job template (an entry of examples/awx/job_templates.yml) from its survey form, with
        `answers` typed into it, and `limit`: AWX takes it at launch only from a template that asks it
        (ask_limit_on_launch), and ignores it otherwise (the launch answer's `ignored_fields`).
        LaunchRefused when AWX would refuse the launch; else the finished Job."""
        import ansible_runner

        if not template.get("ask_limit_on_launch"):
            limit = None

        survey = load_survey(template["survey"])
        extra_vars = launch_vars(survey, form_answers(survey, answers or {}), template_extra_vars, ask_variables_on_launch)
        job_id = next(self.ids)
        pdd, home = self._private_data_dir(job_id)
        meta = {}
        for prefix in ("awx", "tower"):
            meta.update({"%s_job_id" % prefix: job_id, "%s_job_launch_type" % prefix: "manual",
                         "%s_user_id" % prefix: 1, "%s_user_name" % prefix: "admin",
                         "%s_user_email" % prefix: "admin@example.com", "%s_user_first_name" % prefix: "",
                         "%s_user_last_name" % prefix: "", "%s_inventory_id" % prefix: self.inventory_id,
                         "%s_inventory_name" % prefix: self.inventory_name,
                         "%s_project_revision" % prefix: "0" * 40, "%s_project_scm_branch" % prefix: "main",
                         "%s_job_template_id" % prefix: 11, "%s_job_template_name" % prefix: template["name"]})
        all_vars = dict(extra_vars, **meta)
        self._write(pdd, "env/extravars", safe_dump(all_vars, template_extra_vars))
        args = []
        if job_type == "check":
            args.append("--check")
        args += ["-u", "root"]
        if diff:
            args.append("--diff")
        if verbosity:
            args.append("-" + "v" * min(5, verbosity))
        if limit:
            args += ["-l", limit]   # RunJob.build_args: the job's limit
        self._write(pdd, "env/cmdline", " ".join(shlex.quote(a) for a in args))
        env = self._base_env(pdd, home, job_id)
        env.update({"JOB_ID": str(job_id), "INVENTORY_ID": str(self.inventory_id), "PROJECT_REVISION": "0" * 40,
                    "ANSIBLE_RETRY_FILES_ENABLED": "False", "MAX_EVENT_RES": "700000",
                    "AWX_HOST": "https://awx.example.com", "ANSIBLE_SSH_CONTROL_PATH_DIR": os.path.join(pdd, "cp")})
        os.makedirs(os.path.join(pdd, "cp"), mode=0o700)
        for credential in credentials:
            env.update(credential.env)
        self._write(pdd, "env/envvars", yaml.safe_dump(env))
        self._write(pdd, "env/settings", json.dumps({"job_timeout": 0, "suppress_ansible_output": True,
                                                     "suppress_output_file": True}))
        inventory = self._inventory_script(pdd)
        with _environ():
            result = ansible_runner.run(private_data_dir=pdd, ident=str(job_id), playbook=template["playbook"],
                                        inventory=inventory, suppress_env_files=True, quiet=True)
        return Job(job_id, pdd, home, result, all_vars)

    # -- an inventory update ----------------------------------------------------------------------------------
    def update_inventory(self, source_path, credentials=(), source_vars=None):
        """An inventory source "Sourced from a Project" (source_path relative to the project) updated as AWX does."""
        import ansible_runner

        update_id = next(self.ids)
        pdd, home = self._private_data_dir(update_id)
        env = self._base_env(pdd, home, update_id)
        env.pop("ANSIBLE_ROLES_PATH")
        env.update({"INVENTORY_SOURCE_ID": "3", "INVENTORY_UPDATE_ID": str(update_id)})
        env.update(STANDARD_INVENTORY_UPDATE_ENV)
        for credential in credentials:
            env.update(credential.env)
        for key, value in (source_vars or {}).items():
            env.setdefault(str(key), str(value))
        source = os.path.join(pdd, "project", source_path)
        output = os.path.join(pdd, "artifacts", str(update_id), "output.json")
        args = ["ansible-inventory", "--list", "--export", "-i", source, "--output", output,
                "--playbook-dir", os.path.dirname(source)]
        self._write(pdd, "args", " ".join(shlex.quote(a) for a in args))
        self._write(pdd, "env/envvars", yaml.safe_dump(env))
        self._write(pdd, "env/settings", json.dumps({"job_timeout": 0, "suppress_ansible_output": True,
                                                     "suppress_output_file": False}))
        with _environ():
            result = ansible_runner.run(private_data_dir=pdd, ident=str(update_id), suppress_env_files=True, quiet=True)
        stdout_path = os.path.join(pdd, "artifacts", str(update_id), "stdout")
        stdout = open(stdout_path, encoding="utf-8", errors="replace").read() if os.path.exists(stdout_path) else ""
        return InventoryUpdate(update_id, pdd, result, stdout)


# -- what STS was asked -------------------------------------------------------------------------------------

class StsRecorder:
    """A forwarding HTTP layer in front of the local AWS (scripts/aws_proxy.py, recording only) that keeps
    each STS AssumeRole it passes: the role, the external id and the session name asked for, and the
    keys AWS answered with. (The local AWS takes any external id; this is how a test sees which one
    was sent.)"""

    def __init__(self, upstream):
        from aws_proxy import AwsProxy

        self.assumed = []
        self._proxy = AwsProxy(upstream, answered=self._answered)

    @property
    def url(self):
        return self._proxy.url

    @property
    def errors(self):
        """What went wrong reading an answer (AssumeRole answered but not recorded)."""
        return self._proxy.hook_errors

    def _answered(self, record, body, status, payload):
        import urllib.parse
        import xml.etree.ElementTree as ET

        if record.name != "sts:AssumeRole" or status != 200:
            return
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        creds = {el.tag.split("}")[-1]: el.text for el in ET.fromstring(payload).iter() if el.tag.split("}")[-1] in
                 ("AccessKeyId", "SecretAccessKey", "SessionToken")}
        self.assumed.append({
            "role_arn": form.get("RoleArn", [""])[0], "external_id": form.get("ExternalId", [None])[0],
            "session_name": form.get("RoleSessionName", [""])[0], "access_key_id": creds["AccessKeyId"],
            "secret_access_key": creds["SecretAccessKey"], "session_token": creds["SessionToken"]})

    def start(self):
        self._proxy.start()
        return self

    def stop(self):
        self._proxy.stop()


# -- the definitions in examples/awx ---------------------------------------------------------------------

def load_survey(relpath):
    with open(os.path.join(EXAMPLES, relpath), encoding="utf-8") as f:
        return json.load(f)


def job_templates():
    with open(os.path.join(EXAMPLES, "job_templates.yml"), encoding="utf-8") as f:
        return {t["playbook"]: t for t in yaml.safe_load(f)["convox_awx_job_templates"]}


def credential_type():
    with open(os.path.join(EXAMPLES, "credential_types", "convox_assume_role.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f)
