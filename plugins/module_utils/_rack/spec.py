# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument specs of the four modules, each paired with the doc fragment that documents it.

| constant                 | module                  | documented by (plugins/doc_fragments/) |
|--------------------------|-------------------------|----------------------------------------|
| RACK_ARGUMENT_SPEC       | convox.rack.rack        | _rack_options.py, DOCUMENTATION        |
| RACK_INFO_ARGUMENT_SPEC  | convox.rack.rack_info   | _rack_options.py, INFO                 |
| APP_ARGUMENT_SPEC        | convox.rack.app         | _app_options.py, DOCUMENTATION         |
| APP_INFO_ARGUMENT_SPEC   | convox.rack.app_info    | _app_options.py, INFO                  |

AnsibleAWSModule adds amazon.aws's connection options (documented by amazon.aws's fragments).
tests/unit/test_docs_match_spec.py checks that every option here is documented with the same
type, default, choices, required, elements and aliases, and that nothing else is; ansible-test's
validate-modules checks the same from its side. A change here goes with one in the fragment.

The bottom layer of _rack: it imports nothing from the rest of the package.
"""

from __future__ import annotations

# How long a run may wait for AWS, unless wait_timeout says otherwise.
DEFAULT_WAIT_TIMEOUT = 900

RACK_ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    create=dict(type="bool", default=True),
    # The rack's parameters (params.PARAMETER_KINDS): unset keeps the recorded value, else the default.
    instance_type=dict(type="str"),
    instance_count=dict(type="int"),
    private=dict(type="bool"),
    high_availability=dict(type="bool"),
    vpc_cidr=dict(type="str"),
    internal_only=dict(type="bool"),
    log_retention=dict(type="int"),
    image_id=dict(type="str"),
    permissions_boundary=dict(type="str"),
    kms_key=dict(type="str", no_log=False),   # an ARN, not a secret
    container_insights=dict(type="bool"),
    flow_logs=dict(type="bool"),
    certificate_arn=dict(type="str"),
    tags=dict(type="dict", aliases=["resource_tags"]),
    purge_tags=dict(type="bool", default=True),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=DEFAULT_WAIT_TIMEOUT),
    force=dict(type="bool", default=False),
    purge_data=dict(type="bool", default=False),
    allow_downgrade=dict(type="bool", default=False),
)

RACK_INFO_ARGUMENT_SPEC = dict(
    name=dict(type="str"),
    drift=dict(type="bool", default=False),
)

APP_ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    rack=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    log_retention=dict(type="int"),
    immutable_tags=dict(type="bool", default=True),
    tags=dict(type="dict", aliases=["resource_tags"]),
    purge_tags=dict(type="bool", default=True),
    purge_data=dict(type="bool", default=False),
)

APP_INFO_ARGUMENT_SPEC = dict(
    rack=dict(type="str", required=True),
    name=dict(type="str"),
)
