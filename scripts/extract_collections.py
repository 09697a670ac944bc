#!/usr/bin/env python
"""Extract collections from the ``ansible`` community package wheel.

Galaxy cannot be reached from this project's machines, but PyPI can, and the ``ansible``
wheel carries every collection of the community package under ``ansible_collections/``.
This extracts only the requested ones into an ``ansible_collections/`` tree (each one is
replaced whole, so that no file of an older version stays behind).

Usage: extract_collections.py WHEEL DEST_ANSIBLE_COLLECTIONS_DIR NS/NAME [NS/NAME ...]
"""

from __future__ import annotations

import os
import shutil
import sys
import zipfile


def extract(wheel: str, dest: str, names: list[str]) -> int:
    """Extract each collection of names from the wheel into dest."""
    with zipfile.ZipFile(wheel) as archive:
        members = archive.namelist()
        for name in names:
            prefix = "ansible_collections/%s/" % name
            chosen = [m for m in members if m.startswith(prefix)]
            if not chosen:
                print("%s: no %s in it" % (wheel, name), file=sys.stderr)
                return 1
            target = os.path.join(dest, name)
            staging = target + ".partial"
            shutil.rmtree(staging, ignore_errors=True)
            for member in chosen:
                relative = member[len(prefix):]
                if not relative or member.endswith("/"):
                    continue
                path = os.path.join(staging, relative)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with archive.open(member) as source, open(path, "wb") as out:
                    shutil.copyfileobj(source, out)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
            print("%s: %d files" % (target, len(chosen)))
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(extract(sys.argv[1], sys.argv[2], sys.argv[3:]))
