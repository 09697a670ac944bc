# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's version, as galaxy.yml says (a unit test keeps them equal): recorded on every
rack it converges (convox:version), and sent in the user agent of every AWS call."""

from __future__ import annotations

COLLECTION_VERSION = "0.1.0"
