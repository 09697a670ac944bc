# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's version, as galaxy.yml says (tests/unit/test_version.py keeps them equal): recorded
on every rack it converges (convox:version), and sent in the user agent of every AWS call.

Between releases the working tree carries a semver prerelease of the next version (0.2.0-dev0 after
0.1.0; docs/development.md, "Releasing"): higher than the last release, lower than the next one, so
that a rack installed from a checkout is upgraded by the real release later. Versions are compared
by semver precedence (https://semver.org/#spec-item-11): compare_versions."""

from __future__ import annotations

import re

COLLECTION_VERSION = "0.2.0-dev0"

# semver 2.0.0: MAJOR.MINOR.PATCH, an optional prerelease (-a.b.c) and build metadata (+...).
_SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$")


def parse_version(text):
    """(major, minor, patch, prerelease identifiers) of a semver string, or None when it is not one.
    Build metadata is dropped: it has no precedence."""
    match = _SEMVER_RE.match(text or "") if isinstance(text, str) else None
    if match is None:
        return None
    pre = tuple(int(p) if p.isdigit() else p for p in match.group(4).split(".")) if match.group(4) else ()
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), pre


def _pre_key(pre):
    # A version without prerelease ranks above every prerelease of it; numeric identifiers rank below
    # alphanumeric ones, and a longer list above its own prefix.
    if not pre:
        return (1,)
    return (0,) + tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in pre)


def compare_versions(a, b):
    """-1, 0 or 1 as semver version `a` ranks below, equal to or above `b`; ValueError naming the one
    that is not a semver version."""
    parsed = []
    for text in (a, b):
        version = parse_version(text)
        if version is None:
            raise ValueError("%r is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE])" % (text,))
        parsed.append(version[:3] + (_pre_key(version[3]),))
    return (parsed[0] > parsed[1]) - (parsed[0] < parsed[1])
