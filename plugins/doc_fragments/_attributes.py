# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This doc fragment is PRIVATE to convox.rack; it may change at any time. Do not use it from other
# collections or standalone modules.

from __future__ import annotations


class ModuleDocFragment:
    """The attributes (check mode, diff mode, idempotence) the modules share."""

    # convox.rack.rack and convox.rack.app, which change AWS. Each module adds the description of
    # its diff_mode (what its diff shows).
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Reads everything, plans every change and makes no AWS write.
    support: full
  diff_mode:
    support: full
  idempotent:
    description: A second run with the same arguments makes no AWS write and reports no change.
    support: full
"""

    # convox.rack.rack_info and convox.rack.app_info, which only read (complete: use it alone).
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    description: Reads only; runs the same in check mode.
    support: full
  diff_mode:
    description: Returns no diff.
    support: none
  idempotent:
    description: Reads only.
    support: full
"""
