# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This doc fragment is PRIVATE to convox.rack; it may change at any time. Do not use it from other
# collections or standalone modules.

from __future__ import annotations


class ModuleDocFragment:
    """The options of convox.rack.rack and convox.rack.rack_info.

    Each variable documents one argument spec of plugins/module_utils/_rack/spec.py, option for
    option; tests/unit/test_docs_match_spec.py keeps them equal (type, default, choices, required,
    elements, aliases).
    """

    # convox.rack.rack: spec.RACK_ARGUMENT_SPEC.
    DOCUMENTATION = r"""
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
        its bucket. One of CloudWatch Logs' allowed periods.
      - Unset keeps the rack's recorded retention, else V(365), a year, what security scanners ask of
        audit logs (Prowler's C(cloudwatch_log_group_retention_policy_specific_days_enabled)). Racks
        installed before 0.2.0 recorded V(7) and keep it. Storage is charged per GB-month (see C(docs/security.md)).
    type: int
  image_id:
    description:
      - AMI of the instances. By default the ECS-optimised Amazon Linux 2023 AMI is looked up from
        the public SSM parameter at install, and kept on later runs until O(image_id) is given.
      - V(latest) moves the rack to today's ECS-optimised AMI of its architecture (the SSM parameter
        read again); the AMI id it resolves to is recorded, so later runs keep that image until
        V(latest) is given again. M(convox.rack.rack_info) says when a newer one exists.
      - A new image replaces the instances by an instance refresh, each new instance in service
        before an old one is terminated.
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
  kms_key:
    description:
      - ARN of a KMS key of yours to encrypt the rack with (its and its apps' log groups, its apps' buckets
        (SSE-KMS with an S3 Bucket Key) and its instances' EBS volumes). No key is created then.
      - Unset (or V("")), the rack creates its own key, alias C(alias/convox/<name>), with rotation on and a key
        policy that lets the account administer it, CloudWatch Logs use it for the rack's log groups only, and
        Auto Scaling's service-linked role use it for the instances' volumes. Uninstall with O(purge_data)
        schedules its deletion (30 days) and deletes its alias; without O(purge_data) it is kept and named in
        RV(kept_keys).
      - A key ARN (not an alias) of the rack's region and partition. Your key's policy must allow what the
        rack's own key policy allows (see C(docs/security.md)).
      - Recorded on the rack (C(convox:kms_key)), so later runs that leave it unset keep it.
    type: str
  container_insights:
    description:
      - ECS Container Insights on the rack's cluster (cluster setting C(containerInsights)), that is CPU, memory,
        network and storage metrics of its instances, services and tasks, in CloudWatch, charged as custom
        metrics and logs.
      - Unset keeps the rack's recorded setting, else V(true). Changed in place on an existing cluster.
    type: bool
  flow_logs:
    description:
      - Flow logs of the rack's VPC (every packet accepted and rejected) delivered to the rack's log bucket under
        C(logs/flow/), where they expire after O(log_retention) days. Charged as vended logs delivered to S3,
        plus their S3 storage (see C(docs/security.md)).
      - Unset keeps the rack's recorded setting, else V(true). V(false) deletes the flow log.
    type: bool
  certificate_arn:
    description:
      - ARN of an ACM certificate of the rack's region and partition. With it the router (load balancer) has an
        HTTPS listener on port 443 with the TLS policy C(ELBSecurityPolicy-TLS13-1-2-2021-06), and port 80
        redirects to it (HTTP 301), as Convox's router does.
      - Unset keeps the recorded certificate; V("") removes it, leaving HTTP on port 80 only (scanners report the
        load balancer's missing TLS listener then, see C(docs/security.md)).
      - Recorded on the rack (C(convox:certificate_arn)).
    type: str
  tags:
    description:
      - Tags added to every resource of the rack that AWS lets one tag, on top of the collection's
        own (V(System), V(Rack), V(Type)), which cannot be overridden (nor can V(App) and C(convox:*),
        in any case).
      - As AWS takes tags on every resource of a rack, keys of 1 to 128 characters and values of at
        most 256, of letters, digits, spaces and C(_.:/=+-@) only; keys that differ only in case
        are refused (IAM roles take them as one); at most 34 tags (one fewer with O(permissions_boundary),
        one fewer with O(kms_key), one fewer with O(certificate_arn)).
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
      - With O(state=absent), empty the rack's buckets (every object version and delete marker), its bucket
        and its log bucket (which holds every log AWS delivered for the rack), and delete them. Without it, a
        bucket holding objects is kept and named in RV(kept_buckets).
    type: bool
    default: false
  allow_downgrade:
    description:
      - With O(state=present), converge a rack whose recorded version (tag C(convox:version) of its
        bucket, RV(rack.version)) is newer than this collection's, or missing, or not a semantic version.
        Without it such a rack is refused before any change, in check mode too, naming both versions;
        an old checkout cannot undo by accident what a newer release built.
      - A rack recorded by an older release needs nothing; it is upgraded (RV(previous_version), and
        the plan's C(upgrade) entry).
    type: bool
    default: false
"""

    # convox.rack.rack_info (extends_documentation_fragment: convox.rack._rack_options.info):
    # spec.RACK_INFO_ARGUMENT_SPEC.
    INFO = r"""
options:
  name:
    description:
      - The rack to read. Omit to read every rack of the region.
      - A name that no rack has gives an empty RV(racks).
    type: str
  drift:
    description:
      - Also read each rack's drift, what differs between the rack in AWS and what an update with its
        recorded parameters would converge it to (the check-mode plan of that update, in words), in
        RV(drift), RV(drift_count) and RV(drift_racks).
      - Reads only (no lock, no write), but a full reading and plan of each rack, about 35 calls a rack.
      - A rack that a run is installing, updating or uninstalling is not compared (RV(drift_racks[].reason)
        says so); a rack whose last run failed is, its drift including what that run left undone.
    type: bool
    default: false
"""
