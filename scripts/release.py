#!/usr/bin/env python
"""Cut a release of convox.rack: `make release VERSION=x.y.z` (docs/development.md, "Releasing").

Refuses, changing nothing: a working tree that is not clean; no changelog fragment to release; a
VERSION that is not X.Y.Z; a VERSION not greater than the last release tag; a VERSION lower than the
working tree's own (a rack installed from the tree would then be refused by the release).
Then: sets VERSION in galaxy.yml and plugins/module_utils/_rack/version.py, runs `antsibull-changelog
release` (CHANGELOG.rst and changelogs/changelog.yaml from the fragments, which it removes), commits
"Release VERSION" and tags it VERSION (annotated); builds the tag's tarball into
tests/integration/data/releases/ (in place of the older release's: test_upgrade.py upgrades from it,
and a checkout without tags, such as CI's, cannot build it); then sets the next development version, NEXT
(default X.(Y+1).0-dev0: above VERSION and below every later release, so that a rack installed from a
checkout is upgraded by the next release), and commits that. Pushes nothing: prints what to push.

With --dry-run it checks and says what it would do, and changes nothing.
Usage: scripts/release.py VERSION [--next NEXT] [--dry-run] [--root DIR]
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION_PY = os.path.join("plugins", "module_utils", "_rack", "version.py")
GALAXY_YML = "galaxy.yml"
# names the tarball by its version (tests/unit/test_version.py keeps it equal to galaxy.yml's)
AWX_REQUIREMENTS = os.path.join("examples", "awx", "requirements.yml")
FRAGMENTS = os.path.join("changelogs", "fragments")
# the last release's tarball, which tests/integration/test_upgrade.py installs and upgrades from: kept in
# the tree, since a checkout without tags or history (CI's) cannot build it from the tag
RELEASES = os.path.join("tests", "integration", "data", "releases")
RELEASE_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


def _version_module(root):
    """compare_versions and parse_version of the tree's version.py (a pure module: loaded by path)."""
    namespace = {"__name__": "convox_rack_version"}
    with open(os.path.join(root, VERSION_PY), encoding="utf-8") as f:
        exec(compile(f.read(), VERSION_PY, "exec"), namespace)  # pylint: disable=exec-used
    return namespace


class Refused(Exception):
    pass


def git(root, *args, check=True):
    done = subprocess.run(["git", "-C", root] + list(args), capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise Refused("git %s failed: %s" % (" ".join(args), done.stderr.strip()))
    return done.stdout


def tree_version(root):
    with open(os.path.join(root, GALAXY_YML), encoding="utf-8") as f:
        match = re.search(r"^version:\s*(\S+)\s*$", f.read(), re.M)
    if not match:
        raise Refused("%s has no version line" % GALAXY_YML)
    return match.group(1)


def set_version(root, version):
    for path, pattern, line in ((GALAXY_YML, r"^version:.*$", "version: %s" % version),
                                (VERSION_PY, r'^COLLECTION_VERSION = ".*"$', 'COLLECTION_VERSION = "%s"' % version),
                                (AWX_REQUIREMENTS, r"convox-rack-[^/\s]+\.tar\.gz", "convox-rack-%s.tar.gz" % version)):
        full = os.path.join(root, path)
        if path == AWX_REQUIREMENTS and not os.path.exists(full):
            continue
        with open(full, encoding="utf-8") as f:
            text = f.read()
        new, count = re.subn(pattern, line, text, count=1, flags=re.M)
        if count != 1:
            raise Refused("%s: no line matching %s" % (path, pattern))
        with open(full, "w", encoding="utf-8") as f:
            f.write(new)


def build_release_tarball(root, version):
    """Builds the tarball of tag VERSION (`git archive` of the tag, then `ansible-galaxy collection build`)
    into RELEASES, in place of the older release's, and returns its path relative to root."""
    work = tempfile.mkdtemp(prefix="convox-release-")
    try:
        source = os.path.join(work, "source")
        os.mkdir(source)
        archive = subprocess.run("git -C '%s' archive '%s' | tar -x -C '%s'" % (root, version, source), shell=True,
                                 capture_output=True, text=True, check=False)
        if archive.returncode != 0:
            raise Refused("git archive %s failed: %s" % (version, archive.stderr.strip()))
        built = subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", work, source],
                               capture_output=True, text=True, check=False)
        name = "convox-rack-%s.tar.gz" % version
        if built.returncode != 0 or not os.path.exists(os.path.join(work, name)):
            raise Refused("ansible-galaxy collection build of tag %s failed: %s" % (version, (built.stdout + built.stderr).strip()))
        releases = os.path.join(root, RELEASES)
        os.makedirs(releases, exist_ok=True)
        for old in os.listdir(releases):
            if old.startswith("convox-rack-") and old.endswith(".tar.gz"):
                os.remove(os.path.join(releases, old))
        shutil.copy(os.path.join(work, name), os.path.join(releases, name))
        return os.path.join(RELEASES, name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check(root, version, nxt):
    """The refusals, in order; returns (last release tag or None, the tree's version, the next version)."""
    v = _version_module(root)
    compare = v["compare_versions"]
    if not RELEASE_RE.match(version or ""):
        raise Refused("VERSION=%r is not a release version X.Y.Z (such as 0.2.0)" % (version,))
    dirty = git(root, "status", "--porcelain")
    if dirty.strip():
        raise Refused("the working tree is not clean; commit or stash first:\n%s" % dirty.rstrip())
    fragments = sorted(f for f in os.listdir(os.path.join(root, FRAGMENTS))
                       if f.endswith((".yml", ".yaml"))) if os.path.isdir(os.path.join(root, FRAGMENTS)) else []
    if not fragments:
        raise Refused("no changelog fragment in %s/: a release says what changed (docs/development.md)" % FRAGMENTS)
    releases = [t for t in git(root, "tag", "--list").split() if RELEASE_RE.match(t)]
    last = max(releases, key=functools.cmp_to_key(compare)) if releases else None
    if last is not None and compare(version, last) <= 0:
        raise Refused("VERSION=%s is not greater than the last release, %s" % (version, last))
    current = tree_version(root)
    if v["parse_version"](current) is None:
        raise Refused("%s says version %r, which is not a semantic version" % (GALAXY_YML, current))
    if compare(version, current) < 0:
        raise Refused("VERSION=%s is lower than the working tree's version %s: racks installed from this tree would be "
                      "refused by the release as newer; release %s or later"
                      % (version, current, current.split("-", maxsplit=1)[0]))
    if nxt is None:
        major, minor, _patch = (int(p) for p in version.split("."))
        nxt = "%d.%d.0-dev0" % (major, minor + 1)
    if v["parse_version"](nxt) is None or compare(nxt, version) <= 0:
        raise Refused("NEXT=%s must be a semantic version greater than %s (such as %s-dev0 of the next release)"
                      % (nxt, version, "X.Y.Z"))
    return last, current, fragments, nxt


def release(root, version, nxt=None, dry_run=False, out=print):
    last, current, fragments, nxt = check(root, version, nxt)
    branch = git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
    out("release %s: last release %s, working tree %s, %d fragment(s): %s"
        % (version, last or "(none)", current, len(fragments), ", ".join(fragments)))
    steps = ["set version %s in %s, %s and %s" % (version, GALAXY_YML, VERSION_PY, AWX_REQUIREMENTS),
             "antsibull-changelog release --version %s" % version,
             'git commit -m "Release %s"; git tag -a %s' % (version, version),
             "build the tarball of tag %s into %s/ (test_upgrade.py upgrades from it)" % (version, RELEASES),
             'set version %s; git commit -m "Start %s"' % (nxt, nxt)]
    if dry_run:
        out("dry run, nothing changed; would:\n  " + "\n  ".join(steps))
        return 0
    set_version(root, version)
    done = subprocess.run(["antsibull-changelog", "release", "--version", version], cwd=root, check=False)
    if done.returncode != 0:
        git(root, "checkout", "--", ".")
        raise Refused("antsibull-changelog release failed (exit %d); the version files were put back"
                      % done.returncode)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Release %s" % version, "-m",
        "antsibull-changelog release: CHANGELOG.rst and changelogs/changelog.yaml from the fragments.")
    git(root, "tag", "-a", version, "-m", "convox.rack %s" % version)
    tarball = build_release_tarball(root, version)
    set_version(root, nxt)
    git(root, "add", "-u")
    git(root, "add", "-f", "-A", RELEASES)
    git(root, "commit", "-q", "-m", "Start %s" % nxt, "-m",
        "The working tree after release %s is a prerelease of the next one (docs/development.md, Releasing); "
        "%s is the release's tarball, which the upgrade test installs." % (version, tarball))
    out("released %s (tag %s), working tree now %s. Nothing was pushed; push with:\n  git push origin %s %s"
        % (version, version, nxt, branch, version))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("version", metavar="VERSION")
    parser.add_argument("--next", dest="nxt", metavar="NEXT", help="the development version after it (X.(Y+1).0-dev0)")
    parser.add_argument("--dry-run", action="store_true", help="check and say what would be done; change nothing")
    parser.add_argument("--root", default=os.path.dirname(HERE), help="the repository (default: this one)")
    args = parser.parse_args(argv)
    try:
        return release(args.root, args.version, args.nxt or None, args.dry_run)
    except Refused as e:
        print("make release: refused: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
