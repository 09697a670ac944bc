#!/usr/bin/env python
"""moto's server, with fixes for emulator bugs that would otherwise crash it on calls the rack
makes. Each fix names the bug; none changes what AWS would answer (5 answers as a raised account).

1. moto 5.2.5 stores the UserData of a launch template version made by
   CreateLaunchTemplateVersion as a plain string, then asserts it is a Base64EncodedString when an
   Auto Scaling group launches from that version: every scale-out after a rack update answered 500.
   AWS accepts and uses that version. The fix wraps the string as moto does for
   CreateLaunchTemplate.
2. moto 5.2.5 snapshots a launch template's tags when it is created, so DescribeLaunchTemplates
   never shows tags added later with CreateTags or removed with DeleteTags (DescribeTags does).
   AWS shows the current tags. The fix reads them from moto's tag store on every describe.
3. moto 5.2.5 checks a logging target bucket's policy on PutBucketLogging by comparing strings:
   it crashes (500) on any statement whose Principal is "*" (a TLS-only Deny has one), refuses a
   list of resources, and accepts only the resource "<bucket>/<prefix>*" (or "<bucket>/*"), so a
   statement for "<bucket>/logs/apps/*" is refused for the prefix logs/apps/web/. AWS evaluates
   the policy: PutBucketLogging succeeds when a statement allows logging.s3.amazonaws.com to
   s3:PutObject on a resource pattern that matches the log objects' keys. The fix evaluates the
   statements so (principal, action and resource wildcards; conditions stay ignored, as moto
   ignores them everywhere).
4. moto 5.2.5 ignores the tag filters (`tag:<key>`, `tag-key`, `tag-value`) of DescribeNatGateways:
   every NAT gateway of the region comes back, so code that trusts the filter (an uninstall that
   deletes "the rack's" NAT gateways) acts on other racks' gateways there and nowhere else. AWS
   applies them (EC2 API Reference, DescribeNatGateways: "tag:<key> - The key/value combination of
   a tag assigned to the resource"). The fix applies them as moto does for other EC2 resources.
5. Not a bug: the local AWS stands for an account whose regional quotas (VPCs, internet gateways,
   elastic IPs) were raised to 100, as one test session installs many racks in one account; moto
   reports AWS's defaults (5) without enforcing them. See the comment at the fix.
6. moto 5.2.5 does not implement CloudWatch Logs' AssociateKmsKey (it answers that the action is
   not implemented), though it keeps a log group's kmsKeyId given to CreateLogGroup and shows it in
   DescribeLogGroups. AWS associates the key with the existing group (CloudWatch Logs API reference,
   AssociateKmsKey). The fix sets the group's key as CreateLogGroup does.
7. moto 5.2.5 does not implement ECS's UpdateClusterSettings (500), though it keeps the settings of
   CreateCluster and UpdateCluster and shows them with DescribeClusters include=SETTINGS. AWS sets
   each named setting, keeping the others (ECS API reference, UpdateClusterSettings). The fix does so.
8. moto 5.2.5 has no instance refresh (StartInstanceRefresh, DescribeInstanceRefreshes,
   CancelInstanceRefresh, RollbackInstanceRefresh answer that the action is not implemented), and
   reports each instance of a group as launched from its template's default version rather than the
   version it was launched from. scripts/instance_refresh.py models both as AWS documents them.
9. moto 5.2.5 has no ECS agent: an instance never registers in the cluster its user data names,
   so a cluster's registeredContainerInstancesCount stays 0 (and DeregisterContainerInstance does not
   even lower it). On AWS the agent of each instance registers it in the cluster of ECS_CLUSTER
   (ECS Developer Guide, "Amazon ECS container agent configuration"), and "if you terminate a
   running container instance, Amazon ECS automatically deregisters the instance from your cluster"
   (ECS API reference, DeregisterContainerInstance); DeleteCluster refuses a cluster that still has
   registered instances (ClusterContainsContainerInstancesException, ECS API reference,
   DeleteCluster). The fix plays the agent: before ECS reads a cluster, each InService
   instance of an Auto Scaling group whose user data names that cluster is registered, and each
   container instance whose EC2 instance is shutting down or gone is deregistered; the count is the
   number registered. In realism mode an instance registers `agent_registration` seconds after it
   is in service (scripts/realism.py).
10. moto 5.2.5's DeleteNatGateway marks the gateway deleted but leaves its elastic IP associated
    with the gateway's network interface, so a new NAT gateway given that address answers
    Resource.AlreadyAssociated. AWS disassociates it: "When you delete a NAT gateway, its Elastic IP
    address is disassociated from it, but is not released" (Amazon VPC User Guide, "Delete a NAT
    gateway"). The fix disassociates the gateway's addresses when it is deleted (with realism on: when
    it turns `deleted`, not while `deleting`).
11. moto 5.2.5 looks a flow log's S3 destination up as a bucket named by everything after the ARN's
    ":::", so a destination with a folder (arn:aws:s3:::<bucket>/logs/flow/) answers "does not
    exist" in Unsuccessful. AWS takes "a bucket ARN, optionally with a folder" (EC2 API reference,
    CreateFlowLogs, LogDestination; Amazon VPC user guide, "Create a flow log that publishes to
    Amazon S3"). The fix checks the bucket alone and keeps the destination as given.
12. moto 5.2.5 deletes a load balancer whose deletion protection is on. AWS refuses
    (OperationNotPermitted: Elastic Load Balancing user guide, "Deletion protection": "you can't
    delete the load balancer if deletion protection is enabled"; API reference, DeleteLoadBalancer).
    The fix refuses as AWS does, so that an uninstall that forgets to turn it off fails here too.
13. moto 5.2.5's DeleteVpc deletes the VPC's main route table and default security group but keeps
    its default network ACL, which DescribeNetworkAcls then lists with the VPC gone. AWS: "When you
    delete the VPC, it deletes the default security group, network ACL, and route table for the VPC"
    (EC2 API reference, DeleteVpc). The fix deletes the default ACL with its VPC.
14. moto 5.2.5's CreateNetworkAclEntry and ReplaceNetworkAclEntry read the ICMP type and code under
    `Icmp.Code`/`Icmp.Type`, which its request parsing names `IcmpTypeCode`: they are lost, and
    DescribeNetworkAcls shows an ICMP rule without the IcmpTypeCode that AWS returns (EC2 API
    reference, NetworkAclEntry: "IcmpTypeCode: ICMP protocol: The ICMP type and code"). The fix keeps
    them, so that the rack's ICMP rule of the default ACL is compared with its type and code.

Besides these fixes, scripts/realism.py adds a realism mode (off unless switched on, see there):
AWS's time (NAT gateways pending, load balancers provisioning, ...) and its transient refusals.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import sys

from moto.core.types import Base64EncodedString
from moto.ec2.models import flow_logs as _flow_logs
from moto.ec2.models import launch_templates as _launch_templates
from moto.ec2.models import nat_gateways as _nat_gateways
from moto.ec2.models import vpcs as _vpcs
from moto.ec2.responses import network_acls as _network_acls_responses
from moto.ec2.utils import is_tag_filter, tag_filter_matches
from moto.ecs import responses as _ecs_responses
from moto.elbv2 import exceptions as _elbv2_exceptions
from moto.elbv2 import models as _elbv2_models
from moto.logs import exceptions as _logs_exceptions
from moto.logs import responses as _logs_responses
from moto.s3 import models as _s3_models

# scripts/realism.py, beside this file (also when this file is run by runpy, as bench/ does)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import instance_refresh  # noqa: E402
import realism  # noqa: E402

_original_user_data = _launch_templates.LaunchTemplateVersion.user_data.fget


def _user_data(self):
    value = self.data.get("UserData")
    if isinstance(value, str):
        self.data["UserData"] = Base64EncodedString(value)
    return _original_user_data(self)


_launch_templates.LaunchTemplateVersion.user_data = property(_user_data)


def _current_tags(self):
    return self.get_tags()


def _ignore_snapshot(self, value):
    """LaunchTemplate.__init__ assigns the snapshot; the property keeps reading the store."""


_launch_templates.LaunchTemplate.tags = property(_current_tags, _ignore_snapshot)


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _log_permissions_enabled_policy(target_bucket, target_prefix):
    """Some statement allows the S3 logging service to put the log objects under target_prefix."""
    if not target_bucket.policy:
        return False
    log_object = "arn:%s:s3:::%s/%s2026-01-01-00-00-00-0123456789ABCDEF" % (
        target_bucket.partition, target_bucket.name, target_prefix or "")
    for stmt in json.loads(target_bucket.policy.decode()).get("Statement", []):
        principal = stmt.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if stmt.get("Effect") != "Allow" or "logging.s3.amazonaws.com" not in services:
            continue
        if not {"s3:PutObject", "s3:*", "*"} & set(_as_list(stmt.get("Action", []))):
            continue
        if any(fnmatch.fnmatchcase(log_object, pattern) for pattern in _as_list(stmt.get("Resource", []))):
            return True
    return False


_s3_models.FakeBucket._log_permissions_enabled_policy = staticmethod(_log_permissions_enabled_policy)


_original_describe_nat_gateways = _nat_gateways.NatGatewayBackend.describe_nat_gateways


def _describe_nat_gateways(self, filters, nat_gateway_ids):
    found = _original_describe_nat_gateways(self, filters, nat_gateway_ids)
    for name, values in (filters or {}).items():
        if is_tag_filter(name):
            found = [nat for nat in found if tag_filter_matches(nat, name, values)]
    return found


_nat_gateways.NatGatewayBackend.describe_nat_gateways = _describe_nat_gateways
_original_delete_nat_gateway = _nat_gateways.NatGatewayBackend.delete_nat_gateway


def _delete_nat_gateway(self, nat_gateway_id):
    nat = _original_delete_nat_gateway(self, nat_gateway_id)
    for eip in list(self.addresses):
        if eip.eni is not None and eip.eni is getattr(nat, "_eni", None):
            self.disassociate_address(address=eip.public_ip)
    return nat


_nat_gateways.NatGatewayBackend.delete_nat_gateway = _delete_nat_gateway

_original_create_flow_logs = _flow_logs.FlowLogsBackend.create_flow_logs


def _create_flow_logs(self, resource_type, resource_ids, traffic_type, deliver_logs_permission_arn,
                      log_destination_type, log_destination, *args, **kwargs):
    bucket_arn = log_destination.split("/", 1)[0] if log_destination_type == "s3" and log_destination else None
    made, failed = _original_create_flow_logs(self, resource_type, resource_ids, traffic_type,
                                              deliver_logs_permission_arn, log_destination_type,
                                              bucket_arn or log_destination, *args, **kwargs)
    for flow_log in made:
        flow_log.log_destination = log_destination
    return made, failed


_flow_logs.FlowLogsBackend.create_flow_logs = _create_flow_logs  # fix 11


_original_delete_load_balancer = _elbv2_models.ELBv2Backend.delete_load_balancer


def _delete_load_balancer(self, arn):
    lb = self.load_balancers.get(arn)
    if lb is not None and lb.attrs.get("deletion_protection.enabled") == "true":
        raise _elbv2_exceptions.ELBClientError(
            "OperationNotPermitted", "Load balancer '%s' cannot be deleted because deletion protection is enabled" % arn)
    return _original_delete_load_balancer(self, arn)


_elbv2_models.ELBv2Backend.delete_load_balancer = _delete_load_balancer  # fix 12

_original_delete_vpc = _vpcs.VPCBackend.delete_vpc


def _delete_vpc(self, vpc_id):
    vpc = _original_delete_vpc(self, vpc_id)
    for acl_id, acl in list(self.network_acls.items()):
        if acl.vpc_id == vpc_id and acl.default:
            self.network_acls.pop(acl_id, None)
    return vpc


_vpcs.VPCBackend.delete_vpc = _delete_vpc  # fix 13


def _with_icmp(method):
    def answer(self):
        result = method(self)
        icmp = self._get_param("IcmpTypeCode") or {}
        if icmp:
            acl = self.ec2_backend.network_acls[self._get_param("NetworkAclId")]
            for entry in acl.network_acl_entries:
                if (str(entry.rule_number) == str(self._get_param("RuleNumber"))
                        and str(entry.egress).lower() == str(self._get_param("Egress")).lower()):
                    entry.icmp_type, entry.icmp_code = icmp.get("Type"), icmp.get("Code")
        return result
    return answer


for _name in ("create_network_acl_entry", "replace_network_acl_entry"):
    setattr(_network_acls_responses.NetworkACLs, _name,
            _with_icmp(getattr(_network_acls_responses.NetworkACLs, _name)))  # fix 14

# After the fixes above: realism wraps some of the same methods, and is inert until switched on.
realism.install()
instance_refresh.install()  # after realism: its launches go through realism's failed launches

# 5. The account's regional quotas. moto reports AWS's defaults (5 VPCs, 5 internet gateways, 5
#    elastic IPs a region) without enforcing them; the collection checks them before installing a
#    rack, and one local AWS holds the racks of a whole test session in one account. The local AWS
#    is an account whose quotas were raised (as any AWS account's can be, through Service Quotas):
#    100 of each. Tests of the refusal answer their own quotas (tests/unit/test_aws_realities.py).
from moto.ec2.responses import account_attributes as _account_attributes  # noqa: E402
from moto.servicequotas.resources.default_quotas import vpc as _vpc_quotas  # noqa: E402

RAISED_QUOTA = 100
for _quota in _vpc_quotas.VPC_DEFAULT_QUOTAS:
    if _quota["QuotaCode"] in ("L-F678F1CE", "L-A4707A72"):
        _quota["Value"] = float(RAISED_QUOTA)
_original_account_attributes = _account_attributes.AccountAttributes.describe_account_attributes


def _raised_account_attributes(self):
    answer = _original_account_attributes(self)
    for attr in answer.result["AccountAttributes"]:
        if attr["AttributeName"] in ("max-elastic-ips", "vpc-max-elastic-ips"):
            attr["AttributeValues"] = [{"AttributeValue": str(RAISED_QUOTA)}]
    return answer


_account_attributes.AccountAttributes.describe_account_attributes = _raised_account_attributes


def _associate_kms_key(self):
    name = self._get_param("logGroupName")
    group = self.logs_backend.groups.get(name)
    if group is None:
        raise _logs_exceptions.ResourceNotFoundException()
    group.kms_key_id = self._get_param("kmsKeyId")
    return ""


_logs_responses.LogsResponse.associate_kms_key = _associate_kms_key


def _update_cluster_settings(self):
    cluster = self.ecs_backend._get_cluster(self._get_param("cluster"))
    settings = {s["name"]: s for s in cluster.settings or []}
    settings.update({s["name"]: s for s in self._get_param("settings") or []})
    cluster.settings = list(settings.values())
    return _ecs_responses.ActionResult({"cluster": cluster})


_ecs_responses.EC2ContainerServiceResponse.update_cluster_settings = _update_cluster_settings


# 9. The ECS agent of each instance (see the docstring).
from moto.autoscaling.models import autoscaling_backends as _autoscaling_backends  # noqa: E402
from moto.ec2.models import ec2_backends as _ec2_backends  # noqa: E402
from moto.ecs import models as _ecs_models  # noqa: E402
from moto.ecs.exceptions import ECSException as _ECSException  # noqa: E402

_ECS_CLUSTER_LINE = re.compile(r"^ECS_CLUSTER=(\S+)\s*$", re.M)


def _agent_cluster(group):
    """The cluster an Auto Scaling group's instances join (ECS_CLUSTER of its user data), or None."""
    try:
        data = group.user_data or ""
    except Exception:  # noqa: BLE001 - a group without a launch template or user data joins none
        return None
    data = str(data)  # moto's Base64EncodedString is no str
    try:
        data = base64.b64decode(data, validate=True).decode("utf-8", "replace")
    except ValueError:
        pass  # user data given as plain text
    found = _ECS_CLUSTER_LINE.search(data)
    return found.group(1) if found else None


def _agents_report(backend):
    """Register the instances whose agents would have by now; deregister the terminated ones."""
    joining = {}
    for group in list(_autoscaling_backends[backend.account_id][backend.region_name].autoscaling_groups.values()):
        name = _agent_cluster(group)
        for state in list(group.instance_states) if name else []:
            if state.lifecycle_state == "InService" and realism.agent_registered(state):
                joining[state.instance.id] = name
    ec2 = _ec2_backends[backend.account_id][backend.region_name]
    alive = {i.id for r in ec2.reservations.values() for i in r.instances
             if i.state not in ("shutting-down", "terminated")}
    for name, cluster in list(backend.clusters.items()):
        if cluster.status == "ACTIVE":
            registered = {ci.ec2_instance_id for ci in backend.container_instances.get(name, {}).values()}
            for instance_id in sorted(i for i, c in joining.items() if c == name and i not in registered):
                backend.register_container_instance(name, instance_id)
        members = backend.container_instances.setdefault(name, {})  # (moto replaces an empty one)
        for key, ci in list(members.items()):
            if ci.ec2_instance_id not in alive:
                del members[key]
        cluster.registered_container_instances_count = len(members)


def _with_agents(method):
    def wrapper(self, *args, **kwargs):
        _agents_report(self)
        return method(self, *args, **kwargs)
    return wrapper


def _delete_cluster(self, cluster_str):
    cluster = self._get_cluster(cluster_str)
    if self.container_instances.get(cluster.name):
        raise _ECSException("ClusterContainsContainerInstancesException",
                            "The Cluster cannot be deleted while Container Instances are active or draining.")
    return _original_delete_cluster(self, cluster_str)


for _method in ("describe_clusters", "list_container_instances", "describe_container_instances",
                "update_container_instances_state"):
    setattr(_ecs_models.EC2ContainerServiceBackend, _method,
            _with_agents(getattr(_ecs_models.EC2ContainerServiceBackend, _method)))
_original_delete_cluster = _ecs_models.EC2ContainerServiceBackend.delete_cluster
_ecs_models.EC2ContainerServiceBackend.delete_cluster = _with_agents(_delete_cluster)


if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
