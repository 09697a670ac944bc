# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The exceptions a rack service raises; modules catch RackError and fail with its details."""

from __future__ import annotations


class RackError(Exception):
    """A failure to report to the user: a message and result keys."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


class ValidationError(RackError):
    """Bad input, found before any AWS call."""

    def __init__(self, field, rule):
        super().__init__("%s: %s" % (field, rule), field=field)
        self.field = field


class AWSCallError(RackError):
    """An AWS API call failed: names the resource, the operation, the error code and request id."""

    def __init__(self, resource, operation, code, message, request_id):
        msg = "%s: %s failed with %s: %s (request id %s)" % (resource, operation, code, message, request_id or "none")
        super().__init__(msg, resource=resource, operation=operation, error_code=code, request_id=request_id)
        self.code = code


class WaitTimeout(RackError):
    """A wait for AWS to reach a state ran out of wait_timeout."""
