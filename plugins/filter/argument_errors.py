# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""argument_errors: one line per variable of a role's entry point whose value has the wrong type."""

from __future__ import annotations

import re

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import ArgumentTypeError, ArgumentValueError

DOCUMENTATION = r"""
name: argument_errors
short_description: Name the variables given to a role whose values have the wrong type, one line each
version_added: 0.2.0
description:
  - "Checks the variables given against the options of a role's entry point (its C(meta/argument_specs.yml)),
    as Ansible's own role argument validation does, and returns one short message per variable in error,
    such as C(rack_instance_count: must be an integer (got 'three')). The collection's playbooks run it
    before their role, so that a wrong type fails in one line instead of Ansible's dump of the whole
    argument specification."
  - Only the variables given are checked; a missing required one is left to the role's own message.
options:
  _input:
    description: The options of the entry point (C(argument_specs.<entry>.options)).
    type: dict
    required: true
  given:
    description: The variables given, by name (those of the options that are defined).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Fail on a variable of the wrong type
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
  vars:
    problems: "{{ {'rack_instance_count': {'type': 'int'}} | convox.rack.argument_errors({'rack_instance_count': 'three'}) }}"
"""

RETURN = r"""
_value:
  description: One message per variable in error, sorted by name; empty when every value fits.
  type: list
  elements: str
"""

TYPE_WORDS = {
    "int": "an integer (a whole number, such as 3)",
    "bool": "a boolean (true or false)",
    "dict": "a dictionary (-e '{\"%s\": {\"key\": \"value\"}}')",
    "list": "a list",
    "str": "a string",
    "float": "a number",
    "path": "a path",
}


def _shown(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def argument_errors(options, given):
    options = {name: {k: v for k, v in (spec or {}).items() if k in (
        "type", "choices", "elements", "options", "default", "no_log")} for name, spec in (options or {}).items()}
    given = {name: value for name, value in (given or {}).items() if name in options}
    result = ArgumentSpecValidator({name: options[name] for name in given}).validate(given)
    out = {}
    for error in result.errors:
        names = re.findall(r"argument '(\w+)'|value of (\w+) must", error.msg)
        name = next((a or b for a, b in names if (a or b) in given), None)
        if name is None:
            out.setdefault("", error.msg)
            continue
        spec = options[name]
        if isinstance(error, ArgumentTypeError):
            kind = spec.get("type", "str")
            words = TYPE_WORDS.get(kind, "of type %s" % kind)
            if kind == "list" and spec.get("elements"):
                words = "a list of %s" % TYPE_WORDS.get(spec["elements"], spec["elements"]).split(" (")[0]
            out[name] = "%s: must be %s (got %s)." % (name, words.replace("%s", name), _shown(given[name]))
        elif isinstance(error, ArgumentValueError) and spec.get("choices"):
            out[name] = "%s: must be one of %s (got %s)." % (
                name, ", ".join(str(c) for c in spec["choices"]), _shown(given[name]))
        else:
            out[name] = "%s: %s." % (name, error.msg.rstrip("."))
    return [out[name] for name in sorted(out)]


class FilterModule:
    def filters(self):
        return {"argument_errors": argument_errors}
