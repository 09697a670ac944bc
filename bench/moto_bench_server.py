#!/usr/bin/env python
"""The benchmark's local AWS: scripts/moto_server.py, unchanged (its fixes included), plus
four answers moto 5.2.5 gets wrong that the peer's amazon.aws / community.aws modules trip on.

Each fix makes moto answer as AWS does; none touches a call convox.rack makes in a way that
changes what it reads or how many calls it makes (bench_rack.py's --plain-moto runs without them,
to check that ours counts the same there).

1. Auto Scaling DisableMetricsCollection is not implemented (NotImplementedError, HTTP 500).
   amazon.aws.autoscaling_group calls it on every run that finds its group (update or no-op),
   so without it the peer cannot rerun at all, and botocore retries each 500 four times with
   backoff before failing. The fix removes the named metrics (all when none are named).
2. ECS leaves out lists that AWS returns empty: `capacityProviders` and
   `defaultCapacityProviderStrategy` of DescribeClusters (community.aws.ecs_cluster fails on
   any rerun with KeyError 'capacityProviders') and `tags` of ListTagsForResource on an untagged
   cluster (community.aws.ecs_tag fails with KeyError 'tags'). The fix makes them empty lists.
3. ELBv2 DescribeLoadBalancerAttributes leaves out attributes AWS always returns with their
   defaults; amazon.aws.elb_application_lb reads the ones it manages and fails with KeyError
   (for http_drop_invalid_header_fields, which the rack sets: 'routing_http_drop_invalid_header_fields_enabled').
   The fix adds AWS's defaults to an application load balancer's attributes.
4. EC2 CreateLaunchTemplate copies the template's own tags (its `launch-template` tag
   specification) into version 1's LaunchTemplateData, where AWS keeps only the data sent.
   amazon.aws.ec2_launch_template compares that data with what it would send, so its first
   rerun creates a version 2 for nothing (and its later uninstall then needs
   DeleteLaunchTemplateVersions, which moto lacks). The fix leaves the data as sent.

Usage: moto_bench_server.py [moto_server options], e.g. -H 127.0.0.1 -p 5000
"""

from __future__ import annotations

import os
import runpy

from moto.autoscaling.models import AutoScalingBackend
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import EmptyResult
from moto.ec2.models.launch_templates import LaunchTemplateBackend
from moto.ecs import models as _ecs
from moto.elbv2 import models as _elbv2

SCRIPTS_MOTO_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "scripts", "moto_server.py")


# 1. DisableMetricsCollection -------------------------------------------------------------------
def _backend_disable_metrics_collection(self, group_name, metrics):
    group = self.describe_auto_scaling_groups([group_name])[0]
    group.metrics = [m for m in group.metrics if metrics and m not in metrics]


def _response_disable_metrics_collection(self):
    group_name = self._get_param("AutoScalingGroupName")
    metrics = self._get_param("Metrics")
    self.autoscaling_backend.disable_metrics_collection(group_name, metrics)
    return EmptyResult()


AutoScalingBackend.disable_metrics_collection = _backend_disable_metrics_collection
AutoScalingResponse.disable_metrics_collection = _response_disable_metrics_collection


# 2. ECS empty lists ------------------------------------------------------------------------------
_cluster_init = _ecs.Cluster.__init__


def _cluster_init_with_lists(self, *args, **kwargs):
    _cluster_init(self, *args, **kwargs)
    for attr in ("capacity_providers", "default_capacity_provider_strategy", "tags"):
        if getattr(self, attr, None) is None:
            setattr(self, attr, [])


_ecs.Cluster.__init__ = _cluster_init_with_lists


# 3. ALB attribute defaults ----------------------------------------------------------------------
ALB_DEFAULT_ATTRIBUTES = {
    "access_logs.s3.enabled": "false",
    "idle_timeout.timeout_seconds": "60",
    "routing.http2.enabled": "true",
    "routing.http.desync_mitigation_mode": "defensive",
    "routing.http.drop_invalid_header_fields.enabled": "false",
    "routing.http.x_amzn_tls_version_and_cipher_suite.enabled": "false",
    "routing.http.xff_client_port.enabled": "false",
    "waf.fail_open.enabled": "false",
}
_lb_init = _elbv2.FakeLoadBalancer.__init__


def _lb_init_with_defaults(self, *args, **kwargs):
    _lb_init(self, *args, **kwargs)
    if self.type == "application":
        for key, value in ALB_DEFAULT_ATTRIBUTES.items():
            self.attrs.setdefault(key, value)


_elbv2.FakeLoadBalancer.__init__ = _lb_init_with_defaults


# 4. Launch template data as sent ---------------------------------------------------------------
_create_launch_template = LaunchTemplateBackend.create_launch_template


def _create_launch_template_as_sent(self, name, description, template_data, tag_spec):
    specs = template_data.get("TagSpecifications")
    if specs:
        kept = [s for s in specs if s.get("ResourceType") != "launch-template"]
        if kept:
            template_data["TagSpecifications"] = kept
        else:
            del template_data["TagSpecifications"]
    return _create_launch_template(self, name, description, template_data, tag_spec)


LaunchTemplateBackend.create_launch_template = _create_launch_template_as_sent


if __name__ == "__main__":
    # scripts/moto_server.py applies its own fixes and starts the server with sys.argv[1:].
    runpy.run_path(SCRIPTS_MOTO_SERVER, run_name="__main__")
