"""The links between the project's Markdown pages (README.md, docs/*.md) lead somewhere: the page
exists, and an anchor (`page.md#section`, `#section`) names one of its headings as GitHub makes
heading anchors (lowercased; punctuation but hyphens and underscores dropped; spaces made hyphens;
a repeated heading gets -1, -2...)."""

from __future__ import annotations

import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")) + [os.path.join(ROOT, "README.md")])
LINK = re.compile(r"\]\(([^)\s]*)\)")
FENCE = re.compile(r"^(```|~~~)")


def _prose(path):
    """The page's lines outside fenced code blocks."""
    inside = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if FENCE.match(line.strip()):
                inside = not inside
                continue
            if not inside:
                yield line


def slug(heading):
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    seen, out = {}, set()
    for line in _prose(path):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        out.add(base if count == 0 else "%s-%d" % (base, count))
        seen[base] = count + 1
    return out


def test_slug_is_githubs():
    assert slug("The instance role's trust: no confused-deputy condition") == \
        "the-instance-roles-trust-no-confused-deputy-condition"
    assert slug("`make scan` and `docs/`") == "make-scan-and-docs"
    assert slug("1. Build the execution environment") == "1-build-the-execution-environment"


@pytest.mark.parametrize("page", [os.path.relpath(p, ROOT) for p in PAGES])
def test_links_between_pages_lead_somewhere(page):
    path = os.path.join(ROOT, page)
    broken = []
    for line in _prose(path):
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target) or not target:
                continue        # https:, mailto: ...
            file_part, _hash, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not os.path.exists(dest):
                broken.append("%s: no such file" % target)
            elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                broken.append("%s: no heading with that anchor in %s" % (target, os.path.relpath(dest, ROOT)))
    assert not broken, broken
