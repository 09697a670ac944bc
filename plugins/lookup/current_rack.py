# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: current_rack
short_description: The current Convox rack, as C(convox switch) records it
version_added: 0.1.0
description:
  - Returns the current rack, which playbooks use when no C(rack) is given, as the Convox CLI does.
  - The E(CONVOX_RACK) environment variable wins; else the file that C(playbooks/switch.yml) writes,
    C($XDG_CONFIG_HOME/convox-ansible/current) (C(~/.config/convox-ansible/current) when
    E(XDG_CONFIG_HOME) is not set). C(-e rack=NAME) on the command line overrides both, through
    Ansible's variable precedence (extra variables win over the play variables this lookup fills).
  - Either may name the rack as C(convox racks) lists it (V(local/production), V(acme/production))
    or by the rack's name alone (V(production)); the lookup returns the rack's name, which modules take.
  - The file is a small JSON document, C({"rack", "region", "name", "source"}); a file holding a
    single line with the rack's name is read too.
author:
  - convox.rack contributors (@convox-rack)
options:
  field:
    description:
      - What to return. V(rack) is the rack's name (V(production)); V(region) its region (the region
        recorded by C(switch.yml), or an empty string when unknown, so that the AWS default region
        applies); V(name) the name as C(convox racks) lists it (V(local/production)); V(all) a
        dictionary of these and V(origin) (V(CONVOX_RACK) or the file's path).
      - V(path) is the file's path, whether or not it exists (C(switch.yml) writes there).
    type: str
    choices: [rack, region, name, all, path]
    default: rack
  rack:
    description:
      - With O(field=region), the rack the playbook settled on. The recorded region is returned only
        when the current rack is that rack (so that C(-e rack=other) does not take the current
        rack's region); an empty string otherwise.
    type: str
  default:
    description:
      - Returned when there is no current rack. Without it, no current rack is an error that says how
        to name one.
    type: raw
  path:
    description:
      - The file of the current rack; by default C($XDG_CONFIG_HOME/convox-ansible/current), or
        C(~/.config/convox-ansible/current) when E(XDG_CONFIG_HOME) is not set.
    type: path
"""

EXAMPLES = r"""
# In a play: the current rack unless -e rack=NAME is given
#   vars:
#     rack: "{{ lookup('convox.rack.current_rack') }}"
- name: Read the current rack
  convox.rack.rack_info:
    name: "{{ lookup('convox.rack.current_rack') }}"
    region: "{{ lookup('convox.rack.current_rack', field='region') | default(omit, true) }}"

- name: Show where the current rack comes from
  ansible.builtin.debug:
    msg: "{{ lookup('convox.rack.current_rack', field='all', default={}) }}"
"""

RETURN = r"""
_raw:
  description: The rack's name, its region, its listed name, or all of them as a dictionary (see O(field)).
  type: list
  elements: raw
"""

import json
import os

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

ENV = "CONVOX_RACK"
NO_RACK = ("no current rack: give one with -e rack=NAME, set CONVOX_RACK, or choose one with "
           "ansible-playbook playbooks/switch.yml -e rack=NAME")


def current_file(environ=None):
    """$XDG_CONFIG_HOME/convox-ansible/current, ~/.config/convox-ansible/current by default."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "convox-ansible", "current")


def parse_name(text):
    """'local/production' -> ('local', 'production'); 'production' -> (None, 'production')."""
    text = (text or "").strip()
    if "/" in text:
        source, rack = text.rsplit("/", 1)
        return source, rack
    return None, text


def read_record(path):
    """The record in the file, or None when there is none; a single-line file is a name."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise AnsibleLookupError("cannot read the current rack from %s: %s" % (path, to_native(e)))
    if not text:
        return None
    if text.startswith("{"):
        try:
            record = json.loads(text)
        except ValueError as e:
            raise AnsibleLookupError("%s is not a current-rack record (%s); run playbooks/switch.yml again" % (path, e))
        if not isinstance(record, dict) or not record.get("rack"):
            raise AnsibleLookupError("%s names no rack; run playbooks/switch.yml again" % path)
        return {"rack": str(record["rack"]), "region": str(record.get("region") or ""),
                "name": str(record.get("name") or record["rack"]), "origin": path}
    line = text.splitlines()[0].strip()
    return {"rack": parse_name(line)[1], "region": "", "name": line, "origin": path}


def current(path=None, environ=None):
    """The current rack: CONVOX_RACK, else the file; None when neither names one."""
    environ = os.environ if environ is None else environ
    value = (environ.get(ENV) or "").strip()
    if value:
        _source, rack = parse_name(value)
        return {"rack": rack, "region": "", "name": value, "origin": ENV}
    return read_record(path or current_file(environ))


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        path = self.get_option("path") or current_file()
        field = self.get_option("field")
        if field == "path":
            return [path]
        record = current(path)
        if record is None:
            if self.get_option("default") is not None:
                return [self.get_option("default")]
            raise AnsibleLookupError(NO_RACK)
        if field == "region":
            wanted = self.get_option("rack")
            return [record["region"] if not wanted or wanted == record["rack"] else ""]
        if field == "all":
            return [dict(record)]
        return [record[field]]
