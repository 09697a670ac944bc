"""The modules' documentation against the code it documents, so that the two cannot drift.

- Options: each module's options are documented by a doc fragment (plugins/doc_fragments/
  _rack_options.py, _app_options.py) paired with an argument spec of module_utils/_rack/spec.py.
  Every option of the spec is documented with the same type, default, choices, required, elements
  and aliases, and no other option is documented but amazon.aws's connection options.
- Return values: ansible-core 2.19 merges doc fragments into DOCUMENTATION only (plugin_docs.
  add_fragments; RETURN is read as written), so each module keeps its own RETURN. rack and rack_info
  return the same `rack` keys (CONTRACT.md), as do app and app_info for `app`: checked here, key for
  key, with their types, at every level.

The documentation is read as users read it: `ansible-doc -j`, fragments resolved.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.amazon.aws.plugins.module_utils.modules import aws_argument_spec
from ansible_collections.convox.rack.plugins.module_utils._rack import spec as S

ROOT = Path(__file__).resolve().parents[2]
SPECS = {
    "rack": S.RACK_ARGUMENT_SPEC,
    "rack_info": S.RACK_INFO_ARGUMENT_SPEC,
    "app": S.APP_ARGUMENT_SPEC,
    "app_info": S.APP_INFO_ARGUMENT_SPEC,
}
# Each variable of a fragment documents one spec constant, option for option.
FRAGMENTS = {
    ("_rack_options", "DOCUMENTATION"): S.RACK_ARGUMENT_SPEC,
    ("_rack_options", "INFO"): S.RACK_INFO_ARGUMENT_SPEC,
    ("_app_options", "DOCUMENTATION"): S.APP_ARGUMENT_SPEC,
    ("_app_options", "INFO"): S.APP_INFO_ARGUMENT_SPEC,
}
# The module and its _info twin, and the return value of each that holds the same keys.
TWINS = [(("rack", "rack"), ("rack_info", "racks")), (("app", "app"), ("app_info", "apps"))]
# The keys CONTRACT.md promises in the `rack` dict of rack and rack_info.
CONTRACT_RACK_KEYS = {"name", "region", "status", "parameters", "vpc_id", "public_subnet_ids", "private_subnet_ids",
                      "cluster_name", "autoscaling_group_name", "load_balancer", "bucket", "log_group", "tags"}
AWS_OPTIONS = set(aws_argument_spec())


@pytest.fixture(scope="module")
def docs():
    """ansible-doc's JSON of the four modules (one call, about two seconds)."""
    ansible_doc = Path(sys.executable).with_name("ansible-doc")
    command = str(ansible_doc) if ansible_doc.exists() else shutil.which("ansible-doc")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"), ANSIBLE_NOCOLOR="1")
    done = subprocess.run([command, "-j", "-t", "module"] + ["convox.rack." + m for m in SPECS], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    return {name.rsplit(".", 1)[1]: found[name] for name in found}


def as_spec_says(option):
    """The parts of an option that the argument spec and the documentation both state, with their defaults."""
    return {
        "type": option.get("type", "str"),
        "default": option.get("default"),
        "choices": option.get("choices"),
        "required": option.get("required", False),
        "elements": option.get("elements"),
        "aliases": sorted(option.get("aliases") or []),
        "options": {k: as_spec_says(v) for k, v in (option.get("options") or {}).items()} or None,
    }


def differences(documented, spec):
    """[(option, documented, spec)] for each option of `spec` that `documented` states otherwise."""
    return [(name, as_spec_says(documented[name]) if name in documented else "not documented", as_spec_says(o))
            for name, o in spec.items() if name not in documented or as_spec_says(documented[name]) != as_spec_says(o)]


@pytest.mark.parametrize("module", sorted(SPECS))
def test_every_option_is_documented_as_the_spec_says(docs, module):
    assert differences(docs[module]["doc"]["options"], SPECS[module]) == []


@pytest.mark.parametrize("module", sorted(SPECS))
def test_only_the_spec_and_amazon_aws_connection_options_are_documented(docs, module):
    documented = set(docs[module]["doc"]["options"])
    assert documented - AWS_OPTIONS == set(SPECS[module]), "documented without an argument spec, or the reverse"
    assert AWS_OPTIONS <= documented, "amazon.aws's connection options (its doc fragments) are not all documented"


@pytest.mark.parametrize("fragment, variable", sorted(FRAGMENTS))
def test_each_fragment_variable_documents_exactly_its_spec(fragment, variable):
    text = getattr(importlib.import_module("ansible_collections.convox.rack.plugins.doc_fragments." + fragment)
                   .ModuleDocFragment, variable)
    options = yaml.safe_load(text)["options"]
    spec = FRAGMENTS[(fragment, variable)]
    assert set(options) == set(spec)
    assert differences(options, spec) == []


def shape(returned):
    """A documented return value's keys, each with its type, elements and own keys, at every level."""
    return {key: (value.get("type"), value.get("elements"), shape(value.get("contains") or {}))
            for key, value in returned.items()}


@pytest.mark.parametrize("one, info", TWINS, ids=["rack", "app"])
def test_a_module_and_its_info_twin_document_the_same_keys(docs, one, info):
    (module, key), (info_module, list_key) = one, info
    single = docs[module]["return"][key]
    listed = docs[info_module]["return"][list_key]
    assert (single["type"], listed["type"], listed["elements"]) == ("dict", "list", "dict")
    assert shape(single["contains"]) == shape(listed["contains"])


def test_rack_documents_the_keys_of_the_contract(docs):
    keys = shape(docs["rack"]["return"]["rack"]["contains"])
    assert CONTRACT_RACK_KEYS <= set(keys), CONTRACT_RACK_KEYS - set(keys)
    # The contract's arn and dns_name, and what issue 14 added (the router's logs, protection and listeners).
    assert set(keys["load_balancer"][2]) == {"arn", "dns_name", "access_logs", "deletion_protection", "listeners"}
