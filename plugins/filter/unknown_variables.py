# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""unknown_variables: the names given that a role does not know, each with the closest known one."""

from __future__ import annotations

import difflib

DOCUMENTATION = r"""
name: unknown_variables
short_description: Name the variables a role does not know, with the closest one it knows
version_added: 0.1.0
description:
  - "Given the names of the variables set with a role's prefix (C(rack_), C(app_)) and the names the role
    knows, returns one message per unknown name, such as C(rack_instance_typ: unknown; did you mean rack_instance_type?),
    so that a misspelt variable fails the run before any AWS call instead of being silently ignored."
options:
  _input:
    description: The names given (for instance C(query('ansible.builtin.varnames', '^rack_'))).
    type: list
    elements: str
    required: true
  known:
    description: The names the role knows.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Fail on a misspelt rack_ variable
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
  vars:
    problems: "{{ query('ansible.builtin.varnames', '^rack_') | convox.rack.unknown_variables(['rack_instance_type']) }}"
"""

RETURN = r"""
_value:
  description: One message per unknown name, sorted; empty when every name is known.
  type: list
  elements: str
"""


def unknown_variables(names, known):
    known = sorted(set(known))
    out = []
    for name in sorted(set(names) - set(known)):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        out.append("%s: unknown%s" % (name, ("; did you mean %s?" % close[0]) if close else
                                      " (known: %s)." % ", ".join(known)))
    return out


class FilterModule:
    def filters(self):
        return {"unknown_variables": unknown_variables}
