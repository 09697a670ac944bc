# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app module's action: the rack module's (plugins/action/rack.py). From the collection's app
role, its messages name the playbook variables the user typed (`app`, `rack`, `app_purge_data`, ...)
instead of the module's options (`name`, `purge_data`)."""

from __future__ import annotations

from ansible_collections.convox.rack.plugins.action.rack import ActionModule  # noqa: F401  pylint: disable=unused-import

__all__ = ["ActionModule"]
