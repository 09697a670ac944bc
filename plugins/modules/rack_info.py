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
  - Reads one rack, or every rack of a region, from AWS, as C(convox rack) and C(convox racks) do.
    Racks are found by the tags of their buckets (C(System=convox), C(Type=rack)), which also carry
    the rack's recorded parameters, status and version.
  - With O(name), the rack's resources are read one by one by their names and tags (about 30 calls).
    Without it, every rack of the region is read in bulk, in about eight calls whatever the number of
    racks (each kind of resource once for the region, that is the racks, their network and load
    balancers from one listing of the Resource Groups Tagging API, then the Auto Scaling groups, ECS
    clusters and capacity providers, load balancers, log groups and, where a rack is private, NAT
    gateways; IAM instance profiles once). The bulk read takes a rack's load balancer for its listener and its
    Auto Scaling group's launch template for the template (reading them would take a call a rack);
    on AWS the tagging listing can lag a few minutes behind changes, which a read by O(name) does not.
  - Status is derived from what exists, with Convox's words. V(running) when every part is there and
    the instances are in service; V(converging) while instances are not all in service or the load
    balancer is not yet active; V(installing), V(updating) or V(uninstalling) while a run of the
    collection holds the rack (its lease has not expired); V(failed) when parts are missing, named in
    RV(racks[].missing). When AWS cannot be read the module fails, naming the call and the error.
  - Never changes anything; runs the same in check mode.
author:
  - convox.rack contributors (@convox-rack)
extends_documentation_fragment:
  - convox.rack._attributes.info_module
  - convox.rack._rack_options.info
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

- name: Print NAME STATUS, as convox racks does
  ansible.builtin.debug:
    msg: "{{ all_racks.source.name }}/{{ item.name }} {{ item.status }}"
  loop: "{{ all_racks.racks }}"
  loop_control:
    label: "{{ item.name }}"

- name: What differs in AWS from what the rack records (drift)
  convox.rack.rack_info:
    name: production
    drift: true
  register: drifted

- name: Print the drift, one line per difference
  ansible.builtin.debug:
    msg: "{{ drifted.drift | map(attribute='message') | list }}"

- name: Racks that are not running
  ansible.builtin.debug:
    msg: "{{ all_racks.racks | rejectattr('status', 'equalto', 'running') | map(attribute='name') | list }}"
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
      description: The rack's application load balancer.
      type: dict
      contains:
        arn:
          description: Its ARN.
          type: str
        dns_name:
          description: Its DNS name (the rack's router).
          type: str
        access_logs:
          description:
            - Where its access logs go, C(s3://<log bucket>/logs/router); V("") when off. None when not read (the
              region-wide listing of M(convox.rack.rack_info) does not read the load balancer's attributes).
          type: str
        deletion_protection:
          description: Whether its deletion protection is on (None when not read).
          type: bool
        listeners:
          description:
            - Its listeners, by port (None when not read). Without O(convox.rack.rack#module:certificate_arn), HTTP
              on 80 answering a fixed 404; with it, HTTPS on 443 answering so and HTTP on 80 redirecting to 443.
          type: list
          elements: dict
          contains:
            port:
              description: The port.
              type: int
            protocol:
              description: V(HTTP) or V(HTTPS).
              type: str
            action:
              description: Its default action's type, V(fixed-response) or V(redirect).
              type: str
    bucket:
      description: The rack's bucket.
      type: str
    log_bucket:
      description:
        - The rack's log bucket, C(<bucket>-logs), where every log AWS delivers for the rack lands (SSE-S3, as
          those deliveries require); the rack bucket's and the apps' buckets' server access logs, the VPC's flow
          logs, the load balancer's access logs.
      type: str
    flow_log_id:
      description:
        - The id of the flow log of the rack's VPC (into the rack's log bucket under C(logs/flow/)); None with
          O(convox.rack.rack#module:flow_logs=false), and in the region-wide listing of M(convox.rack.rack_info),
          which does not read flow logs.
      type: str
    log_group:
      description: The rack's log group.
      type: str
    kms_key:
      description: >-
        ARN of the KMS key the rack encrypts with (its own, found by its alias C(alias/convox/<name>), or
        O(convox.rack.rack#module:kms_key)).
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
image:
  description: >-
    The machine image of the rack's instances against today's ECS-optimised Amazon Linux 2023 AMI of
    their architecture (the public SSM parameter AWS updates with each new image): C(id) (the launch
    template's), C(recommended), C(newer_available) (true when AWS published a newer one).
    O(convox.rack.rack#module:image_id=latest) moves the rack to it.
  type: dict
  returned: when O(name) is given and the rack has a launch template
instance_refresh:
  description:
    - The instance refresh replacing the rack's instances now, or V(null) when none is in progress
      (Status C(Pending), C(InProgress), C(Cancelling), C(RollbackInProgress) or C(Baking)). One is left
      running by a run with O(convox.rack.rack#module:wait=false), by a run that was killed, or was
      started outside the collection; the next run follows it.
    - C(id), C(status), C(percentage_complete) and C(instances_to_update) as AWS reports them
      (DescribeInstanceRefreshes), and C(progress), the words of the run's own progress lines
      (replacing instances, the percentage, how many of how many replaced).
  type: dict
  returned: when O(name) is given and the rack exists
source:
  description:
    - Where the racks were read, and the name C(convox racks) lists them under (C(<org>/<rack>)).
  returned: always
  type: dict
  contains:
    name:
      description: V(local) for the local AWS (an endpoint on the loopback interface), else the account alias, else the account id.
      type: str
      sample: local
    account_id:
      description: The AWS account id.
      type: str
      sample: "123456789012"
    account_alias:
      description: The account alias, when there is one and it may be read (C(iam:ListAccountAliases)).
      type: str
    local:
      description: Whether the endpoint is the local AWS.
      type: bool
    partition:
      description: The AWS partition.
      type: str
      sample: aws
drift:
  description:
    - What differs between each rack in AWS and what an update with its recorded parameters would
      converge it to, one item per difference (the check-mode plan of C(playbooks/update_rack.yml)
      with no parameter given, in words); an update repairs every item.
  returned: when O(drift=true)
  type: list
  elements: dict
  contains:
    rack:
      description: The rack's name.
      type: str
    resource:
      description: The kind of resource, as in the plan of M(convox.rack.rack) (V(security_group), V(bucket), ...).
      type: str
    action:
      description: What an update would do to it (V(create), V(update), V(delete), V(replace)).
      type: str
    id:
      description: Its AWS id, when the plan names it by its id (a security group, a VPC, a route table).
      type: str
    name:
      description: The rack's name for it (its C(Name) tag, or the name it is found by).
      type: str
    what:
      description: What differs (V(missing), V(ingress), V(tag), V(DesiredCapacity), V(versioning), ...).
      type: str
    message:
      description: The difference in words.
      type: str
      sample: "security group sg-0abc (rack router): ingress 0.0.0.0/0 port 22 added outside the rack"
drift_count:
  description: The number of items in RV(drift).
  returned: when O(drift=true)
  type: int
drift_racks:
  description: Each rack read, with its count of drift items, or why it was not compared.
  returned: when O(drift=true)
  type: list
  elements: dict
  contains:
    rack:
      description: The rack's name.
      type: str
    count:
      description: Its number of drift items; null when it was not compared.
      type: int
    reason:
      description: Why it was not compared (a run holds it; its reading failed), or a note (its last run failed).
      type: str
    error:
      description: Whether its drift could not be read.
      type: bool
aws_calls:
  description: The number of AWS API calls the module made.
  returned: always
  type: int
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.convox.rack.plugins.module_utils._rack import info, params, spec
from ansible_collections.convox.rack.plugins.module_utils._rack.glue import run_module


def main():
    module = AnsibleAWSModule(argument_spec=spec.RACK_INFO_ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, params.validate_rack_info_options, info.serve)


if __name__ == "__main__":
    main()
