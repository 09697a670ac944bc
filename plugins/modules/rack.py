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
options:
  name:
    description:
      - The rack's name. Lowercase letters, digits and hyphens, starting with a letter, not ending
        with a hyphen, at most 25 characters (every AWS name derived from it must fit, the load
        balancer's C(convox-<name>) being the tightest at 32).
    type: str
    required: true
  state:
    description:
      - V(present) installs the rack or converges it; V(absent) uninstalls it.
    type: str
    choices: [present, absent]
    default: present
  create:
    description:
      - With O(state=present), whether a rack that does not exist is installed.
      - V(false) converges only a rack that exists, as C(playbooks/update_rack.yml) does (C(convox rack
        params set)). When the rack does not exist (nothing of it is found, or only its bucket kept by an
        uninstall), the module fails naming the rack and makes no change, in check mode too. The check
        is made after the options are validated and the rack is read, before any write.
      - Ignored with O(state=absent).
    type: bool
    default: true
  instance_type:
    description:
      - EC2 instance type of the rack's instances, C(family.size) in at most 32 characters. Default V(t3.small).
      - Changing it creates a new launch template version and replaces the instances one at a time
        (only with O(wait=true)).
    type: str
  instance_count:
    description:
      - Number of instances. Default 3 with O(high_availability), else 1.
      - At least 1, and at least 3 with O(high_availability); at most 5000, the container instances ECS
        registers in a cluster.
    type: int
  private:
    description:
      - Put the instances in private subnets that reach the internet through one NAT gateway per
        availability zone. Default V(false).
      - Can be turned on after install, not off.
    type: bool
  high_availability:
    description:
      - Spread the rack over three availability zones (two where the region has only two).
        Default V(true). Cannot change after install.
    type: bool
  vpc_cidr:
    description:
      - The VPC's IPv4 CIDR block, a prefix from /16 to /24. Subnets are cut from it; the VPC is
        divided in eight, public subnets take the first blocks and private subnets the fifth onwards.
        Written C(address/prefix); it may not overlap V(0.0.0.0/8), V(127.0.0.0/8), V(169.254.0.0/16),
        V(224.0.0.0/4) or V(240.0.0.0/4). Default V(10.0.0.0/16). Cannot change after install.
    type: str
  internal_only:
    description:
      - Make the load balancer internal (in the private subnets when O(private=true)) instead of
        internet-facing. Default V(false). Changing it replaces the load balancer (its DNS name changes).
    type: bool
  log_retention:
    description:
      - Days the rack's CloudWatch log group keeps events, and the expiry of the C(logs/) prefix of
        its bucket. One of CloudWatch Logs' allowed periods. Default V(7).
    type: int
  image_id:
    description:
      - AMI of the instances. By default the ECS-optimised Amazon Linux 2023 AMI is looked up from
        the public SSM parameter at install, and kept on later runs until O(image_id) is given.
    type: str
  permissions_boundary:
    description:
      - ARN of an IAM managed policy to set as the permissions boundary of the rack's instance role
        (C(convox-<name>-<region>-instance)), like the O(amazon.aws.iam_role#module:boundary) option. The
        role's permissions are then at most what the boundary allows, whatever inline policy it is given.
      - Set it to let operators run the collection with C(docs/policies/operator-roles.json), which allows creating
        and changing roles under C(/convox/) only with the boundary
        C(arn:aws:iam::<account>:policy/convox-rack-instance-boundary) (created once by an administrator from
        C(docs/policies/instance-boundary.json)); without a boundary, whoever may create the instance role
        may give it any permission (see C(docs/security.md)).
      - A customer managed policy of the rack's account or an AWS managed policy,
        C(arn:<partition>:iam::<account id or aws>:policy/[<path>/]<name>), of at most 256 characters; path
        and name of letters, digits and C(+=.@_-).
      - Set on the role when it is created; an existing role whose boundary differs gets the new one
        (C(iam:PutRolePermissionsBoundary)) before its inline policy is written. Recorded on the rack
        (C(convox:permissions_boundary)), so later runs that leave it unset keep it. Unset on a rack that
        records none, or V(""), leaves the role's boundary as it is (and V("") stops recording it); the
        collection never removes a boundary.
    type: str
  tags:
    description:
      - Tags added to every resource of the rack that AWS lets one tag, on top of the collection's
        own (V(System), V(Rack), V(Type)), which cannot be overridden (nor can V(App) and C(convox:*),
        in any case).
      - As AWS takes tags on every resource of a rack, keys of 1 to 128 characters and values of at
        most 256, of letters, digits, spaces and C(_.:/=+-@) only; keys that differ only in case
        are refused (IAM roles take them as one); at most 36 tags (35 with O(permissions_boundary)).
        Values are data, never templates.
      - Unset leaves the rack's tags alone.
    type: dict
    aliases: [resource_tags]
  purge_tags:
    description:
      - With O(tags) set, remove user tags not listed in O(tags). Tags starting with C(aws:) are never touched.
    type: bool
    default: true
  wait:
    description:
      - With O(state=present), return when the rack is usable (instances in service, load balancer
        active) and outdated instances are replaced. Uninstall always waits for what AWS needs
        released before the next delete.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds every wait of the run may take in all, from 1 to 86400.
    type: int
    default: 900
  force:
    description:
      - With O(state=absent), uninstall even though the rack still has apps, deleting them first as
        M(convox.rack.app) does (with O(purge_data), their data too; without it, their buckets and
        repositories holding data are kept and named in RV(kept_buckets) and RV(kept_repositories)).
    type: bool
    default: false
  purge_data:
    description:
      - With O(state=absent), empty the rack's bucket (every object version and delete marker) and
        delete it. Without it, a bucket holding objects is kept and named in RV(kept_buckets).
    type: bool
    default: false
attributes:
  check_mode:
    description: Reads everything, plans every change and makes no AWS write.
    support: full
  diff_mode:
    description: Shows the parameters and tags before and after, and the resources to create, update or delete.
    support: full
  idempotent:
    description: A second run with the same arguments makes no AWS write and reports no change.
    support: full
notes:
  - Every AWS call is retried with jittered backoff on throttling and transient errors.
  - Bad input fails before any AWS call, naming the option and the rule.
  - On real AWS an install takes minutes (NAT gateways, load balancer, instances); the
    C(convox.rack.rack) role runs this module asynchronously and reports progress every 15 seconds.
extends_documentation_fragment:
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
    bucket:
      description: The rack's S3 bucket for logs and settings.
      type: str
    log_group:
      description: The rack's CloudWatch log group.
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
  returned: always
  type: list
  elements: dict
  sample: [{"resource": "vpc", "name": "10.0.0.0/16", "action": "create"}]
aws_calls:
  description: Number of AWS API calls the run made.
  returned: always
  type: int
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.convox.rack.plugins.module_utils._rack.runner import run_rack_module
from ansible_collections.convox.rack.plugins.module_utils._rack.spec import RACK_ARGUMENT_SPEC


def main():
    module = AnsibleAWSModule(argument_spec=RACK_ARGUMENT_SPEC, supports_check_mode=True)
    run_rack_module(module)


if __name__ == "__main__":
    main()
