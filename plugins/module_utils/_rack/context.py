# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run's context, made once by a service and handed to every step and part: the AWS access
(with the run's deadline), who the caller is, the names, the plan, what exists (state), what is
wanted and the tags every created resource carries."""

from __future__ import annotations

import datetime
import uuid

from .plan import CHECK_MODE_ID


class Identity:
    """The caller's account and partition (one STS call)."""

    def __init__(self, aws):
        ident = aws.call("sts", "get_caller_identity", "caller identity")
        self.account = ident["Account"]
        self.partition = ident["Arn"].split(":")[1]


class Run:
    def __init__(self, aws, region, identity, names, plan, state=None, wanted=None, tags=None, wait=True):
        self.aws = aws
        self.wait = wait           # wait until the rack is usable (the module's `wait`)
        self.deadline = aws.deadline
        self.region = region
        self.identity = identity
        self.names = names
        self.plan = plan
        self.state = state
        self.wanted = wanted or {}
        self.tags = tags or {}     # the system tags and the user's, on everything created
        self.out = {}              # ids the run made or found, for the result and later steps
        self.warnings = []
        # Calls a part leaves for the end of the converge (install.converge runs them in order): the
        # load balancer's access logs, so that ELB's check of their bucket policy holds up nothing.
        self.later = []
        # The ARN of the KMS key this run created: other services may not see it at once (parts/logs.py).
        self.new_kms_key = None
        self.started = datetime.datetime.now(datetime.timezone.utc)
        # Client tokens of this run's creates: the same for botocore's retries of one request,
        # new for each run (a token AWS still remembers must not return a resource deleted since).
        self._run_token = uuid.uuid4()
        # The status the last run left, read before this run marks the bucket `updating` (record.mark).
        self._status_before = state.recorded_status if state is not None else None

    @property
    def check_mode(self):
        return self.plan.check_mode

    def token(self, name):
        return str(uuid.uuid5(self._run_token, name))

    def res_tags(self, name=None, **extra):
        """The run's tags, with a Name and the part's own convox:* tags (EC2 resources)."""
        tags = dict(self.tags)
        if name:
            tags["Name"] = name
        tags.update(extra)
        return tags

    def last_run_unfinished(self):
        """Whether the rack's last changing run ended before it recorded `running` (killed, or
        failed): it may have created the VPC or the load balancer and stopped before the
        attribute calls that follow each creation (AWS takes those attributes only afterwards).
        Only then are they set again: a healthy rack's no-op rerun makes no extra call."""
        return self._status_before != "running"


def known(value):
    """A value that exists (not CHECK_MODE_ID: a resource check mode would create)."""
    return value not in (None, CHECK_MODE_ID)
