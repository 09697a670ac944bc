#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rack_info
short_description: Status, parameters, endpoints and resources of Convox racks on AWS
version_added: 0.1.0
description:
  - Reads one rack, or every rack of a region, from AWS. Racks are found by the tags of their
    buckets (C(System=convox), C(Type=rack)); each rack's resources by their names and tags.
  - Status is derived from what exists, with Convox's words. V(running) when every part is there and
    the instances are in service; V(converging) while instances are not all in service;
    V(installing), V(updating) or V(uninstalling) while a run of the collection holds the rack (or
    stopped half-way); V(failed) when parts are missing, named in RV(racks[].missing).
author:
  - convox.rack contributors (@convox-rack)
options:
  name:
    description:
      - The rack to read. Omit to read every rack of the region.
    type: str
attributes:
  check_mode:
    description: Reads only; runs the same in check mode.
    support: full
  diff_mode:
    description: Returns no diff.
    support: none
  idempotent:
    description: Reads only.
    support: full
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Status of the rack named production
  convox.rack.rack_info:
    name: production
  register: info

- name: Every rack of eu-west-1
  convox.rack.rack_info:
    region: eu-west-1
  register: all_racks
"""

RETURN = r"""
racks:
  description: The racks found (an empty list when O(name) names no rack), each with the keys of the C(rack) dictionary M(convox.rack.rack) returns.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The rack's name.
      type: str
    region:
      description: The AWS region.
      type: str
    status:
      description: Convox's status word.
      type: str
    parameters:
      description: The parameters recorded on the rack.
      type: dict
    version:
      description: The collection version that last converged the rack.
      type: str
    vpc_id:
      description: The rack's VPC.
      type: str
    public_subnet_ids:
      description: Public subnets.
      type: list
      elements: str
    private_subnet_ids:
      description: Private subnets.
      type: list
      elements: str
    cluster_name:
      description: The ECS cluster.
      type: str
    autoscaling_group_name:
      description: The Auto Scaling group.
      type: str
    load_balancer:
      description: The load balancer's C(arn) and C(dns_name).
      type: dict
    bucket:
      description: The rack's bucket.
      type: str
    log_group:
      description: The rack's log group.
      type: str
    tags:
      description: The user's tags.
      type: dict
    instances:
      description: Instance counts, C(desired), C(in_service) and C(registered) in the cluster.
      type: dict
    apps:
      description: The rack's apps.
      type: list
      elements: str
    missing:
      description: Missing parts, when the status is V(failed).
      type: list
      elements: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.convox.rack.plugins.module_utils._rack.runner import run_rack_info_module


def main():
    module = AnsibleAWSModule(argument_spec=dict(name=dict(type="str")), supports_check_mode=True)
    run_rack_info_module(module)


if __name__ == "__main__":
    main()
