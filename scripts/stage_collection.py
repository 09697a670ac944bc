#!/usr/bin/env python
"""Mirror the collection into an ``ansible_collections/`` tree for ansible-test.

ansible-test wants the collection physically at ``.../ansible_collections/convox/rack/``
(a copy, not a symlink) with the collections it depends on beside it. This copies the
files of the work tree that git would consider (tracked and untracked, minus what
.gitignore ignores; every file when there is no git), always leaving out ``.venv/``,
``.git/`` and ``tests/output/``, then removes from the copy what is no longer in the
work tree (keeping the copy's own ``tests/output/``, where ansible-test keeps its work).
The copy gets a git repository of its own (empty: no commit, nothing added), because
ansible-test looks for ``.git`` in the copy and its parents to list the collection's files:
without it, it would find the outer repository, which ignores ``.venv/``, and skip every
target. Dependencies are copied from another ``ansible_collections/`` tree.

Usage: stage_collection.py SRC DEST_ROOT NAMESPACE/NAME [--dep NS/NAME --deps-from DIR]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys

ALWAYS_EXCLUDED = (".venv", ".venv-scan", ".git", "tests/output", ".ansible")
KEPT_IN_COPY = ("tests/output", ".git")  # the copy's own, never removed


def excluded(path: str) -> bool:
    """Tell whether a relative path is never copied."""
    parts = path.split("/")
    if "__pycache__" in parts or ".pytest_cache" in parts:
        return True
    return any(path == top or path.startswith(top + "/") for top in ALWAYS_EXCLUDED)


def source_files(src: str) -> list[str]:
    """Return the relative paths of the files to copy."""
    if os.path.isdir(os.path.join(src, ".git")):
        output = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=src, check=True, stdout=subprocess.PIPE,
        ).stdout.decode("utf-8")
        paths = [path for path in output.split("\0") if path]
    else:
        paths = []
        for root, dirs, files in os.walk(src):
            rel_root = os.path.relpath(root, src)
            dirs[:] = [d for d in dirs if not excluded(os.path.normpath(os.path.join(rel_root, d)).replace(os.sep, "/"))]
            paths.extend(os.path.normpath(os.path.join(rel_root, name)).replace(os.sep, "/") for name in files)
    # a tracked file deleted from the work tree is not copied
    return sorted({p for p in paths if not excluded(p) and os.path.lexists(os.path.join(src, p))})


def mirror(src: str, dest: str) -> tuple[int, int]:
    """Make dest hold exactly the source files (plus its tests/output). Return (copied, removed)."""
    wanted = set(source_files(src))
    copied = removed = 0
    for rel in sorted(wanted):
        source, target = os.path.join(src, rel), os.path.join(dest, rel)
        if os.path.isfile(target) and not os.path.islink(target) and filecmp.cmp(source, target, shallow=False):
            shutil.copymode(source, target)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.lexists(target):
            os.remove(target)
        shutil.copy2(source, target)
        copied += 1
    for root, dirs, files in os.walk(dest, topdown=False):
        rel_root = os.path.relpath(root, dest).replace(os.sep, "/")
        rel_root = "" if rel_root == "." else rel_root + "/"
        if any((rel_root + "x").startswith(kept + "/") for kept in KEPT_IN_COPY):
            continue
        for name in files:
            if rel_root + name not in wanted:
                os.remove(os.path.join(root, name))
                removed += 1
        for name in dirs:
            path = os.path.join(root, name)
            if rel_root + name not in KEPT_IN_COPY and not os.path.islink(path) and not os.listdir(path):
                os.rmdir(path)
    return copied, removed


def main() -> int:
    """Copy the collection and its dependencies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dest_root", help="the ansible_collections/ directory to fill")
    parser.add_argument("name", help="namespace/name of the collection in src")
    parser.add_argument("--dep", action="append", default=[], help="namespace/name of a dependency")
    parser.add_argument("--deps-from", help="ansible_collections/ directory holding the dependencies")
    args = parser.parse_args()

    dest = os.path.join(args.dest_root, args.name)
    os.makedirs(dest, exist_ok=True)
    copied, removed = mirror(os.path.abspath(args.src), dest)
    if not os.path.isdir(os.path.join(dest, ".git")):
        subprocess.run(["git", "init", "--quiet", dest], check=True)
    print("%s: %d files copied, %d removed" % (dest, copied, removed))
    for dep in args.dep:
        source = os.path.realpath(os.path.join(args.deps_from, dep))
        target = os.path.join(args.dest_root, dep)
        if not os.path.isdir(source):
            print("dependency %s not found in %s" % (dep, args.deps_from), file=sys.stderr)
            return 1
        if os.path.isdir(target) and filecmp.cmp(os.path.join(source, "MANIFEST.json"), os.path.join(target, "MANIFEST.json"), shallow=False):
            continue
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, symlinks=True)
        print("%s: copied from %s" % (target, source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
