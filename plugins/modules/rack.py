#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rack
short_description: Install, converge or uninstall a Convox rack on AWS
version_added: 0.1.0
description:
  - Installs a Convox-style rack into an AWS account and region, converges an existing one to the
    given parameters, or uninstalls it.
  - A rack is a private network (VPC, public subnets in two or three availability zones, optional
    private subnets behind one NAT gateway per zone), an ECS cluster on an Auto Scaling group of
    identical instances, an application load balancer as the only door from the internet, a
    CloudWatch log group and an S3 bucket for the rack's logs and settings.
  - Resources are created with direct AWS API calls, in dependency order, and found again by their
    tags (C(System=convox), C(Rack=<name>), C(Type=rack)); no CloudFormation stack is used.
  - The rack's parameters and version are recorded as tags of its bucket (C(convox:<parameter>)),
    and read back by later runs and by M(convox.rack.rack_info).
  - An option left unset keeps the value recorded on an existing rack, else takes its default, as
    C(convox rack params set) changes only the parameters it names.
author:
  - convox.rack contributors (@convox-rack)
attributes:
  diff_mode:
    description: Shows the parameters and tags before and after, and the resources to create, update or delete.
notes:
  - Every AWS call is retried with jittered backoff on throttling and transient errors.
  - Bad input fails before any AWS call, naming the option and the rule.
  - On real AWS an install takes minutes (NAT gateways, load balancer, instances); the
    C(convox.rack.rack) role runs this module asynchronously and reports progress every 15 seconds.
extends_documentation_fragment:
  - convox.rack._attributes
  - convox.rack._rack_options
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Install a rack named production
  convox.rack.rack:
    name: production
    region: eu-west-1

- name: Install a small private rack in one zone pair
  convox.rack.rack:
    name: staging
    high_availability: false
    instance_count: 1
    private: true
    tags:
      team: platform

- name: Install a rack whose instance role is bounded, as the shipped operator policy requires
  convox.rack.rack:
    name: production
    permissions_boundary: arn:aws:iam::123456789012:policy/convox-rack-instance-boundary

- name: Scale it
  convox.rack.rack:
    name: staging
    instance_count: 2

- name: Change the instance type of rack staging, failing if it is not installed
  convox.rack.rack:
    name: staging
    instance_type: t3.medium
    create: false

- name: Uninstall it, deleting its bucket's contents too
  convox.rack.rack:
    name: staging
    state: absent
    purge_data: true
"""

RETURN = r"""
rack:
  description: The rack after the run, with the same keys as each item of the C(racks) list M(convox.rack.rack_info) returns.
  returned: always
  type: dict
  contains:
    name:
      description: The rack's name.
      type: str
      sample: production
    region:
      description: The AWS region.
      type: str
      sample: us-east-1
    status:
      description: >-
        Convox's status word: V(running), V(converging), V(installing), V(updating), V(uninstalling),
        V(failed), V(unknown); V(uninstalled) after O(state=absent).
      type: str
      sample: running
    parameters:
      description:
        - The rack's parameters in effect, by option name (V("") for O(image_id) and O(permissions_boundary)
          when none is recorded).
      type: dict
      sample: {"instance_type": "t3.small", "instance_count": 3, "private": false,
               "permissions_boundary": "arn:aws:iam::123456789012:policy/convox-rack-instance-boundary"}
    version:
      description: The collection version that last converged the rack.
      type: str
    vpc_id:
      description: The rack's VPC.
      type: str
    public_subnet_ids:
      description: Public subnets, one per availability zone.
      type: list
      elements: str
    private_subnet_ids:
      description: Private subnets (with O(private=true)).
      type: list
      elements: str
    cluster_name:
      description: The ECS cluster.
      type: str
    autoscaling_group_name:
      description: The Auto Scaling group of the rack's instances.
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
      description: The rack's S3 bucket for settings (SSE-KMS with the rack's key).
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
      description: The rack's CloudWatch log group.
      type: str
    kms_key:
      description: >-
        ARN of the KMS key the rack encrypts its log groups, apps' buckets and volumes with: O(kms_key), or the
        rack's own (alias C(alias/convox/<name>)).
      type: str
    tags:
      description: The user's tags on the rack's resources.
      type: dict
    instances:
      description: Instance counts (desired, in service, registered in the cluster).
      type: dict
    apps:
      description: The rack's apps.
      type: list
      elements: str
    missing:
      description: Parts of the rack that are missing (with status V(failed)).
      type: list
      elements: str
kept_buckets:
  description: Buckets kept by an uninstall because they hold objects and O(purge_data) was not set.
  returned: when O(state=absent)
  type: list
  elements: str
kept_keys:
  description: >-
    The rack's own KMS key (ARN) kept by an uninstall without O(purge_data), since what it encrypted may be kept
    too; with O(purge_data) its deletion is scheduled (30 days) and its alias deleted.
  returned: when O(state=absent)
  type: list
  elements: str
kept_repositories:
  description: ECR repositories of apps kept by an uninstall with O(force) because they hold images and O(purge_data) was not set.
  returned: when O(state=absent)
  type: list
  elements: str
plan:
  description:
    - Every change made (or, in check mode, that would be made), in the order applied.
    - C(changes), when present, details the change; its C(reason) says why one that the
      parameters do not ask for is made (for example the C(delete) of a duplicate VPC, internet
      gateway, elastic IP or route table that a create sent twice left tagged as the rack's).
    - A rack recorded by another release has one entry C(rack <name> upgrade) (or C(downgrade)), its
      C(changes.version) the versions before and after.
  returned: always
  type: list
  elements: dict
  sample: [{"resource": "vpc", "name": "10.0.0.0/16", "action": "create"}]
aws_calls:
  description: Number of AWS API calls the run made.
  returned: always
  type: int
version:
  description: The collection version that converged the rack (recorded as its C(convox:version)).
  returned: when O(state=present)
  type: str
  sample: 0.2.0
previous_version:
  description:
    - The version recorded on the rack before the run; it differs from RV(version) when the run
      upgraded the rack (or, with O(allow_downgrade), downgraded it), and RV(plan) then holds one entry
      for it, of resource C(rack) and action C(upgrade) (or C(downgrade)).
    - V(null) for a rack that did not exist.
  returned: when O(state=present)
  type: str
  sample: 0.1.0
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.convox.rack.plugins.module_utils._rack import params, service, spec
from ansible_collections.convox.rack.plugins.module_utils._rack.glue import run_module


def main():
    module = AnsibleAWSModule(argument_spec=spec.RACK_ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, params.validate_rack_options, service.serve)


if __name__ == "__main__":
    main()
