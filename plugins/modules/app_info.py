#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: app_info
short_description: The apps of a Convox rack on AWS
version_added: 0.1.0
description:
  - Reads the apps of a rack, or one of them, from AWS, as C(convox apps) and C(convox apps info) do.
  - An app of the rack is found by its log group C(/convox/<rack>/apps/<name>), as
    M(convox.rack.rack_info) finds a rack's apps; its bucket and ECR repository are then read by
    their names and tags (about five calls an app).
  - An app whose bucket or repository is missing has status V(failed), naming what is missing in
    RV(apps[].missing).
  - Fails when the rack does not exist in the region. Never changes anything; runs the same in check mode.
author:
  - convox.rack contributors (@convox-rack)
extends_documentation_fragment:
  - convox.rack._attributes.info_module
  - convox.rack._app_options.info
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The apps of rack production
  convox.rack.app_info:
    rack: production
  register: production_apps

- name: Print APP STATUS, as convox apps does
  ansible.builtin.debug:
    msg: "{{ item.name }} {{ item.status }}"
  loop: "{{ production_apps.apps }}"
  loop_control:
    label: "{{ item.name }}"

- name: Where to push the images of app web
  convox.rack.app_info:
    rack: production
    name: web
  register: web

- name: Show its repository
  ansible.builtin.debug:
    msg: "{{ web.apps[0].repository_uri }}"
  when: web.apps | length > 0
"""

RETURN = r"""
apps:
  description: The apps found, sorted by name (an empty list when O(name) names no app), each with the keys of the C(app) dictionary M(convox.rack.app) returns.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The app's name.
      type: str
      sample: web
    rack:
      description: Its rack.
      type: str
      sample: production
    region:
      description: The AWS region.
      type: str
      sample: us-east-1
    status:
      description: V(running) when the app's log group, bucket and repository exist, else V(failed).
      type: str
      sample: running
    log_group:
      description: The app's CloudWatch log group.
      type: str
      sample: /convox/production/apps/web
    log_retention:
      description: Days its log group keeps events.
      type: int
      sample: 7
    bucket:
      description: The app's S3 bucket (none when missing).
      type: str
    repository:
      description: The app's ECR repository (none when missing).
      type: str
      sample: convox/production/web
    repository_uri:
      description: The repository's URI, to push images to.
      type: str
    immutable_tags:
      description: Whether the repository's image tags are immutable.
      type: bool
    tags:
      description: The user's tags on the app's resources.
      type: dict
    missing:
      description: Resources of the app that are missing (with status V(failed)).
      type: list
      elements: str
aws_calls:
  description: Number of AWS API calls the run made.
  returned: always
  type: int
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.convox.rack.plugins.module_utils._rack import app_service, params, spec
from ansible_collections.convox.rack.plugins.module_utils._rack.glue import run_module


def main():
    module = AnsibleAWSModule(argument_spec=spec.APP_INFO_ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, params.validate_app_info_options, app_service.serve_info)


if __name__ == "__main__":
    main()
