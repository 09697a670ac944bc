#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: app
short_description: Create, converge or delete an app of a Convox rack on AWS
version_added: 0.1.0
description:
  - Creates an app of a Convox rack, converges an existing one, or deletes it, as C(convox apps create)
    and C(convox apps delete) do.
  - An app is a CloudWatch log group C(/convox/<rack>/apps/<name>), an S3 bucket for its release
    artifacts and templates, and an ECR repository C(convox/<rack>/<name>) for its images, all in
    its rack's account and region and tagged C(System=convox), C(Rack=<rack>), C(Type=app),
    C(App=<name>) plus the user's O(tags).
  - The log group is the app's registration with its rack. M(convox.rack.app_info),
    M(convox.rack.rack_info) (RV(convox.rack.rack_info#module:racks[].apps)) and the rack's uninstall,
    which refuses while apps exist, find an app by it. It is created first and deleted last.
  - The bucket is hardened as the rack's is (all four public-access-block flags, owner-enforced
    object ownership, default encryption, versioning, a TLS-only policy, expiry of noncurrent
    versions) and logs its accesses into the rack's log bucket under C(logs/apps/<name>/), where the
    rack's log retention expires them. The log bucket's policy lets the S3 logging service write
    under C(logs/apps/) only, for source buckets of the same account; the module adds that
    statement to the policy of a rack that lacks it, keeping the policy's other statements.
    On a rack installed by convox.rack 0.1.0, which has no log bucket until its next update, the
    bucket logs into the rack's bucket, as then; that update moves it to the log bucket.
  - The repository scans images on push and is encrypted; its tags are immutable unless
    O(immutable_tags=false).
  - The rack must exist. Two apps of the same name on two racks, or on two racks of the same name
    in two regions, never share a resource.
author:
  - convox.rack contributors (@convox-rack)
attributes:
  diff_mode:
    description: Shows the log retention, tag mutability and tags before and after, and the resources to create, update or delete.
notes:
  - Every AWS call is retried with jittered backoff on throttling and transient errors; a failing call
    is reported with the resource, the operation, the error code and the request id.
  - Bad input fails before any AWS call, naming the option and the rule. An app of a rack that does not
    exist fails after reading, before any write.
  - A resource with the app's name that is not tagged as the app's is never adopted or deleted.
extends_documentation_fragment:
  - convox.rack._attributes
  - convox.rack._app_options
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Create the app web on rack production
  convox.rack.app:
    name: web
    rack: production

- name: Keep its logs for 30 days whatever the rack keeps, with immutable image tags
  convox.rack.app:
    name: web
    rack: production
    log_retention: 30
    immutable_tags: true
    tags:
      team: storefront

- name: Delete it, keeping its bucket and repository if they hold data
  convox.rack.app:
    name: web
    rack: production
    state: absent
  register: deleted

- name: Say what was kept
  ansible.builtin.debug:
    msg: "kept: {{ deleted.kept_buckets + deleted.kept_repositories }}"

- name: Delete it with its data
  convox.rack.app:
    name: web
    rack: production
    state: absent
    purge_data: true
"""

RETURN = r"""
app:
  description: The app after the run, with the keys of each item of RV(convox.rack.app_info#module:apps).
  returned: always
  type: dict
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
      description: >-
        V(running) when every resource of the app exists; V(failed) when some is missing (named in
        RV(app.missing)); in check mode V(creating) or V(updating) when changes are planned;
        V(deleted) after O(state=absent) (V(deleting) in check mode).
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
      description: The app's S3 bucket.
      type: str
      sample: convox-production-web-0123456789ab
    repository:
      description: The app's ECR repository.
      type: str
      sample: convox/production/web
    repository_uri:
      description: The repository's URI, to push images to (none in check mode before it exists).
      type: str
      sample: 123456789012.dkr.ecr.us-east-1.amazonaws.com/convox/production/web
    immutable_tags:
      description: Whether image tags are immutable.
      type: bool
    tags:
      description: The user's tags on the app's resources.
      type: dict
    missing:
      description: Resources of the app that are missing (with status V(failed)).
      type: list
      elements: str
kept_buckets:
  description: The app's bucket when O(state=absent) kept it because it holds objects and O(purge_data) was not set.
  returned: when O(state=absent)
  type: list
  elements: str
kept_repositories:
  description: The app's repository when O(state=absent) kept it because it holds images and O(purge_data) was not set.
  returned: when O(state=absent)
  type: list
  elements: str
plan:
  description: Every change made (or, in check mode, that would be made), in the order applied.
  returned: always
  type: list
  elements: dict
  sample: [{"resource": "log_group", "name": "/convox/production/apps/web", "action": "create"}]
aws_calls:
  description: Number of AWS API calls the run made.
  returned: always
  type: int
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.convox.rack.plugins.module_utils._rack import app_service, params, spec
from ansible_collections.convox.rack.plugins.module_utils._rack.glue import run_module


def main():
    module = AnsibleAWSModule(argument_spec=spec.APP_ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, params.validate_app_request, app_service.serve)


if __name__ == "__main__":
    main()
