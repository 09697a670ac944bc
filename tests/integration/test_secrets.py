"""No secret a run is given (secret keys, session tokens) appears in anything the run prints or
writes: results (failed ones too), diffs, -v/-vvv output, ANSIBLE_LOG_PATH, async job files (also
the ones the role deletes once read: security_lifecycle.Watcher keeps every version), ansible-runner
job events and artifacts, the inventory's output and cache, the current-rack file.

The runs are security_lifecycle.py's: the whole lifecycle with credentials given four ways
(environment; module options through module_defaults and in the inventory file; AWX's
AWS_SECURITY_TOKEN through ansible-runner; a role assumed by the rack role), HOME, the XDG
directories, TMPDIR and every Ansible directory pointed into one work directory, which is walked
file by file. Besides the secrets given, any STS session token and any 40-character secret next to
its name is looked for (the assumed role's keys are made up by the local AWS, unknown here).

Not scanned, each a file that hands the credentials *in*: the playbooks and inventory file written
for the test (inputs/), and ansible-runner's env/ and artifacts/<id>/command (its own record of the
job's environment; AWX removes the private data directory after the job). Ansible's module payloads
(AnsiballZ files under ANSIBLE_LOCAL_TEMP and ANSIBLE_REMOTE_TEMP, which carry the module's
arguments while it runs, then are deleted) are checked to be gone, not scanned: see
docs/security.md.
"""

from __future__ import annotations

import collections
import json
import os
import re
import time
import urllib.parse
from pathlib import Path

import pytest

import security_lifecycle as lc

NO_LOG = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
# Session tokens of STS: the local AWS's (FQoG...) and AWS's (Fwo..., IQoJ...), base64 of their headers.
TOKEN = re.compile(r"(FQoGZXIvYXdz|FwoGZXIvYXdz|IQoJb3JpZ2lu)[A-Za-z0-9/+=]{20,}")
# A secret access key (40 characters of base64) written next to its name.
SECRET_BY_NAME = re.compile(r"(?i)(secret_?access_?key|secret_key|secretkey)\W{1,6}([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])")
# The access key id of a run appears only as the access_key amazon.aws returns in invocation.module_args.
ACCESS_KEY_AS_OPTION = r'\\*"access_key\\*":\s*\\*"$'


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory, local_aws):
    return lc.shared_lifecycle(tmp_path_factory, local_aws)


def forms(value):
    """The ways a value can be written: as is, JSON-escaped, URL-encoded."""
    return {value, json.dumps(value)[1:-1], urllib.parse.quote(value, safe="")}


def leaks(text, secrets):
    """What of `secrets` ({label: value}) and of the secret-looking patterns `text` contains."""
    found = {label for label, value in secrets.items() if any(f in text for f in forms(value))}
    found |= {"an STS session token (%s...)" % m.group(0)[:16] for m in TOKEN.finditer(text)}
    found |= {"a secret key named %s" % m.group(1) for m in SECRET_BY_NAME.finditer(text)}
    return found


def excluded(rel):
    parts = rel.split(os.sep)
    if parts[0] == "inputs":
        return "input: the playbooks and inventory file that hand the credentials in"
    if parts[0] == "runner" and (len(parts) > 2 and parts[2] == "env" or parts[-1] == "command"):
        return "input: ansible-runner's env/ and its record of the job's environment"
    if parts[0] == "captured" and parts[-1].startswith(("local-temp__", "remote-temp__")):
        return "transient: Ansible's module payloads while a task runs (test_module_payloads_do_not_outlive_their_task)"
    return None


def written_files(lifecycle):
    """(relative path, bytes) of every file the runs left in the work directory, and the async job
    files (and every other version of them) the watcher kept; `excluded` ones left out."""
    work = Path(lifecycle.work)
    for path in sorted(work.rglob("*")):
        if path.is_file() and not path.is_symlink():
            rel = str(path.relative_to(work))
            if not excluded(rel):
                yield rel, path.read_bytes()


def text_of(data):
    return data.decode("utf-8", "replace")


# -- nothing secret anywhere ---------------------------------------------------------------------------------------

def test_the_scan_finds_the_secrets_where_they_are_given(lifecycle):
    """Positive control: the scanner sees each secret in the files that hand it in."""
    given = "".join(p.read_text() for p in Path(lifecycle.work, "inputs").rglob("*") if p.is_file())
    assert leaks(given, lifecycle.secrets) >= set(lifecycle.secrets)


def test_no_secret_in_what_the_runs_print(lifecycle):
    found = {}
    for where, text in lifecycle.outputs():
        hits = leaks(text, lifecycle.secrets)
        if hits:
            found[where] = sorted(hits)
    assert not found, found
    verbose = [s for s in lifecycle.steps if "-vvv" in s.argv]
    assert len(verbose) >= 4 and any("--diff" in s.argv for s in verbose)


def test_no_secret_in_any_file_the_runs_wrote(lifecycle):
    found, scanned = {}, 0
    for rel, data in written_files(lifecycle):
        scanned += 1
        hits = leaks(text_of(data), lifecycle.secrets)
        if hits:
            found[rel] = sorted(hits)
    assert not found, found
    names = {rel.split(os.sep)[0] for rel, _data in written_files(lifecycle)}
    # What the scan covered: the log, results, job files, runner artifacts, inventory cache, switch's file.
    assert {"ansible.log", "results", "runner", "inventory-cache", "xdg-config"} <= names, names
    assert scanned > 20


def test_the_rack_role_leaves_no_async_job_file(lifecycle):
    """The rack role used to run its module asynchronously, leaving async job files (with the
    module's result and invocation) that this scan covered; it now runs it through its action plugin
    (plugins/action/rack.py), which waits for it and prints its progress, so there are none to
    leak anything (the progress record holds the step's words only)."""
    assert not list(Path(lifecycle.work, "async").iterdir())


def test_job_events_were_scanned(lifecycle):
    events = [rel for rel, _d in written_files(lifecycle) if os.sep + "job_events" + os.sep in rel]
    assert len(events) > 10
    # The uninstall from ansible-runner took AWX's AWS_SECURITY_TOKEN as the module's session_token.
    joined = "".join(Path(lifecycle.work, rel).read_text() for rel in events)
    assert '"session_token": "%s"' % NO_LOG in joined


def test_failed_results_carry_no_secret(lifecycle):
    results = json.loads(Path(lifecycle.work, "results", "modules.json").read_text())
    for name in ("refused", "refused_absent"):
        result = results[name]
        assert result["failed"] and result["msg"]
        args = result.get("invocation", {}).get("module_args", {})
        assert args.get("secret_key") in (None, NO_LOG) and args.get("session_token") in (None, NO_LOG)
        assert not leaks(json.dumps(result), lifecycle.secrets)


def test_access_key_ids_appear_only_as_the_modules_access_key(lifecycle):
    """An access key id is not a secret (AWS calls it an identifier; amazon.aws returns it in every
    module's invocation): it must appear nowhere else, for instance in a message or a log line."""
    elsewhere = collections.Counter()
    texts = list(lifecycle.outputs()) + [(rel, text_of(data)) for rel, data in written_files(lifecycle)]
    for where, text in texts:
        for key in lifecycle.access_keys.values():
            for m in re.finditer(re.escape(key), text):
                if not re.search(ACCESS_KEY_AS_OPTION, text[max(0, m.start() - 40):m.start()]):
                    elsewhere[(where, text[max(0, m.start() - 60):m.end() + 10])] += 1
    assert not elsewhere, list(elsewhere)[:5]


def test_module_payloads_do_not_outlive_their_task(lifecycle):
    """Module options travel in Ansible's module payload files while the module runs (0700
    directories under ANSIBLE_LOCAL_TEMP and ANSIBLE_REMOTE_TEMP); none is left after the runs."""
    work = Path(lifecycle.work)
    # The async wrapper removes its payload just after it writes the job's result, which the role
    # may read first: the last run's may take a moment more than the run itself.
    deadline = time.monotonic() + 30
    while True:
        left = [str(p.relative_to(work)) for d in ("local-temp", "remote-temp") for p in (work / d).rglob("*")
                if p.is_file()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert left == []
    seen = [p for p in (work / "captured").iterdir() if p.name.startswith(("local-temp__", "remote-temp__"))]
    assert seen, "the watcher saw no module payload: the check above proves nothing"


# -- the credentials given are the ones used ------------------------------------------------------------------------

# Each step of the lifecycle and how its credentials were given.
STEPS = [("modules", "options"), ("status", "env"), ("inventory", "options"), ("apps-delete", "options"),
         ("refused", "assumed"), ("uninstall-check", "env"), ("uninstall-awx", "awx"), ("uninstall-purge", "env")]


def test_steps_are_the_lifecycles(lifecycle):
    assert [(s.name, s.creds) for s in lifecycle.steps] == STEPS


@pytest.mark.parametrize("name,creds", STEPS)
def test_the_credentials_given_are_the_ones_used(lifecycle, name, creds):
    step = lifecycle.step(name)
    keys = collections.Counter(r["access_key"] for r in lifecycle.records[step.first_record:step.last_record])
    env, options = lifecycle.access_keys["env"], lifecycle.access_keys["options"]
    if creds == "options":
        assert set(keys) == {options}, keys
    elif creds in ("env", "awx"):
        assert set(keys) == {env}, keys
    else:  # assumed: the environment's keys assume the role, whose keys make every other call
        assume = [r for r in lifecycle.records[step.first_record:step.last_record] if r["action"] == "AssumeRole"]
        assert [r["access_key"] for r in assume] == [env]
        assert len(set(keys) - {env}) == 1 and keys[env] == 1, keys
    assert all(r["has_token"] for r in lifecycle.records[step.first_record:step.last_record])
