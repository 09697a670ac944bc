# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This doc fragment is PRIVATE to convox.rack; it may change at any time. Do not use it from other
# collections or standalone modules.

from __future__ import annotations


class ModuleDocFragment:
    """The options of convox.rack.app and convox.rack.app_info.

    Each variable documents one argument spec of plugins/module_utils/_rack/spec.py, option for
    option; tests/unit/test_docs_match_spec.py keeps them equal (type, default, choices, required,
    elements, aliases).
    """

    # convox.rack.app: spec.APP_ARGUMENT_SPEC.
    DOCUMENTATION = r"""
options:
  name:
    description:
      - The app's name, Convox's rule. Lowercase letters, digits and hyphens, starting with a letter,
        not ending with a hyphen, and not the rack's name.
      - The app's bucket is named C(convox-<rack>-<name>-<digest>), which S3 limits to 63 characters,
        so the rack's and the app's names together have at most 42 characters.
    type: str
    required: true
  rack:
    description:
      - The rack the app belongs to. It must exist in the region for O(state=present).
    type: str
    required: true
  state:
    description:
      - V(present) creates the app or converges it; V(absent) deletes it.
      - Deleting an app that does not exist changes nothing.
    type: str
    choices: [present, absent]
    default: present
  log_retention:
    description:
      - Days the app's log group keeps events, one of CloudWatch Logs' allowed periods.
      - Unset, the app follows its rack's log retention (the rack's O(convox.rack.rack#module:log_retention)),
        also when the rack's retention changes and the app is converged again.
    type: int
  immutable_tags:
    description:
      - Make the image tags of the app's repository immutable, so that a pushed tag can never
        point to another image (Convox tags each build's images with the build's own id, so a tag is
        never pushed twice).
      - V(false) lets a tag be pushed again, pointing to another image.
    type: bool
    default: true
  tags:
    description:
      - Tags added to every resource of the app, on top of the collection's own (V(System), V(Rack),
        V(Type), V(App)), which cannot be overridden (nor can C(convox:*), in any case).
      - The rules of AWS for tags apply, as for the rack's (O(convox.rack.rack#module:tags)); at most 46 tags.
      - Unset leaves the app's tags alone.
    type: dict
    aliases: [resource_tags]
  purge_tags:
    description:
      - With O(tags) set, remove user tags not listed in O(tags). Tags starting with C(aws:) are never touched.
    type: bool
    default: true
  purge_data:
    description:
      - With O(state=absent), empty the app's bucket (every object version and delete marker) and
        delete it, and delete the repository with its images.
      - Without it, a bucket holding objects or a repository holding images is kept and named in
        RV(kept_buckets) or RV(kept_repositories); the rest of the app is deleted.
    type: bool
    default: false
"""

    # convox.rack.app_info (extends_documentation_fragment: convox.rack._app_options.info):
    # spec.APP_INFO_ARGUMENT_SPEC.
    INFO = r"""
options:
  rack:
    description:
      - The rack whose apps to read.
    type: str
    required: true
  name:
    description:
      - The app to read. Omit to read every app of the rack.
      - A name that no app of the rack has gives an empty RV(apps).
    type: str
"""
