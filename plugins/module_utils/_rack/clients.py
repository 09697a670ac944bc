# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The boto3 clients of a run: one boto3 session per set of credentials, for every module run
(glue.make_aws), the region-wide reads of rack_info and the inventory."""

from __future__ import annotations

import threading

try:
    import boto3
    import botocore.config
    import botocore.exceptions
except ImportError:  # pragma: no cover - AnsibleAWSModule and the inventory plugin report missing boto3
    boto3 = None

from .errors import RackError
from .version import COLLECTION_VERSION


class SessionClients:
    """boto3 clients of one set of credentials, all from one boto3 session.

    amazon.aws makes a new session per client, which loads the service models again every time
    (about 0.3 s a client here); one session per account loads each model once. Clients are
    made under a lock (a session is not thread-safe), then used from any thread (clients are)."""

    def __init__(self, region, endpoint_url, params):
        params = dict(params)
        self.region = region
        self.endpoint_url = endpoint_url
        # A missing profile fails here, as botocore's ProfileNotFound (glue and the inventory say so).
        self._session = boto3.session.Session(profile_name=params.pop("profile_name", None))
        config = botocore.config.Config(user_agent_extra="convox.rack/%s" % COLLECTION_VERSION)
        for key in ("config", "aws_config"):
            if params.get(key) is not None:
                config = config.merge(params.pop(key))
            params.pop(key, None)
        self._config = config
        self._params = params
        self._clients = {}
        self._lock = threading.Lock()

    def client(self, service, region=None):
        key = (service, region or self.region)
        with self._lock:
            if key not in self._clients:
                try:
                    self._clients[key] = self._session.client(service, region_name=key[1], config=self._config,
                                                              endpoint_url=self.endpoint_url, **self._params)
                except botocore.exceptions.BotoCoreError as e:
                    raise RackError("cannot reach AWS %s: %s" % (service, e), error_code=type(e).__name__)
            return self._clients[key]

    def factory(self, region=None):
        """A client factory for aws.Aws, bound to a region."""
        return lambda service: self.client(service, region)
