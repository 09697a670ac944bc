"""scripts/release.py (`make release VERSION=x.y.z`) on a small repository of its own: the collection's
version files, its changelog configuration and changelog, a fragment, a tag 0.1.0 and a working tree at
0.2.0-dev0. Its refusals change nothing; a release commits, tags, runs the real antsibull-changelog and
moves the tree to the next development version. Never run on this repository (it would tag main)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "release.py"
VERSION_PY = Path("plugins/module_utils/_rack/version.py")
RELEASES = Path("tests/integration/data/releases")
GIT_ENV = {"GIT_AUTHOR_NAME": "Release Test", "GIT_AUTHOR_EMAIL": "release@example.com",
           "GIT_COMMITTER_NAME": "Release Test", "GIT_COMMITTER_EMAIL": "release@example.com",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo)] + list(args), capture_output=True, text=True, check=True,
                          env=dict(os.environ, **GIT_ENV)).stdout


def set_tree_version(repo, version):
    galaxy = (repo / "galaxy.yml").read_text()
    (repo / "galaxy.yml").write_text("\n".join("version: %s" % version if line.startswith("version:") else line
                                               for line in galaxy.splitlines()) + "\n")
    text = (repo / VERSION_PY).read_text()
    (repo / VERSION_PY).write_text("\n".join('COLLECTION_VERSION = "%s"' % version
                                             if line.startswith("COLLECTION_VERSION = ") else line
                                             for line in text.splitlines()) + "\n")


@pytest.fixture()
def repo(tmp_path):
    """A repository as this one is after release 0.1.0, with one fragment for the next release."""
    repo = tmp_path / "repo"
    (repo / VERSION_PY.parent).mkdir(parents=True)
    (repo / "changelogs" / "fragments").mkdir(parents=True)
    shutil.copy(ROOT / "galaxy.yml", repo / "galaxy.yml")
    shutil.copy(ROOT / VERSION_PY, repo / VERSION_PY)
    for name in ("config.yaml", "changelog.yaml"):
        shutil.copy(ROOT / "changelogs" / name, repo / "changelogs" / name)
    (repo / "examples" / "awx").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "awx" / "requirements.yml", repo / "examples" / "awx" / "requirements.yml")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    (repo / RELEASES).mkdir(parents=True)
    shutil.copy(ROOT / RELEASES / "convox-rack-0.1.0.tar.gz", repo / RELEASES / "convox-rack-0.1.0.tar.gz")
    set_tree_version(repo, "0.2.0-dev0")
    (repo / "changelogs" / "fragments" / "upgrades.yml").write_text(
        "minor_changes:\n  - rack - a rack recorded by an older release is upgraded.\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "state after 0.1.0")
    git(repo, "tag", "-a", "0.1.0", "-m", "convox.rack 0.1.0")
    return repo


def release(repo, *args):
    env = dict(os.environ, PATH="%s%s%s" % (Path(sys.executable).parent, os.pathsep, os.environ.get("PATH", "")),
               **GIT_ENV)
    return subprocess.run([sys.executable, str(SCRIPT)] + list(args) + ["--root", str(repo)], capture_output=True,
                          text=True, check=False, env=env, timeout=300)


def snapshot(repo):
    return (git(repo, "rev-parse", "HEAD"), git(repo, "tag", "--list"), git(repo, "status", "--porcelain"),
            (repo / "galaxy.yml").read_text(), (repo / VERSION_PY).read_text())


def refused(repo, *args):
    before = snapshot(repo)
    done = release(repo, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert snapshot(repo) == before, "a refusal changed nothing"
    return done.stderr


def test_a_dirty_tree_is_refused(repo):
    (repo / "notes.txt").write_text("work in progress\n")
    assert "the working tree is not clean" in refused(repo, "0.2.0")
    (repo / "notes.txt").unlink()
    (repo / "galaxy.yml").write_text((repo / "galaxy.yml").read_text() + "# edited\n")
    assert "the working tree is not clean" in refused(repo, "0.2.0")


def test_no_fragment_is_refused(repo):
    git(repo, "rm", "-q", "changelogs/fragments/upgrades.yml")
    git(repo, "commit", "-q", "-m", "no fragment")
    assert "no changelog fragment in changelogs/fragments/" in refused(repo, "0.2.0")


@pytest.mark.parametrize("version", ["0.1.0", "0.0.9"])
def test_a_version_not_greater_than_the_last_release_is_refused(repo, version):
    assert "VERSION=%s is not greater than the last release, 0.1.0" % version in refused(repo, version)


@pytest.mark.parametrize("version", ["0.2", "v0.2.0", "0.2.0-rc1", "latest", ""])
def test_what_is_not_x_y_z_is_refused(repo, version):
    assert "is not a release version X.Y.Z" in refused(repo, version)


def test_a_version_below_the_working_trees_is_refused(repo):
    """0.1.1 > 0.1.0, but racks installed from the tree (0.2.0-dev0) would be newer than it."""
    message = refused(repo, "0.1.1")
    assert "VERSION=0.1.1 is lower than the working tree's version 0.2.0-dev0" in message
    assert "release 0.2.0 or later" in message


def test_a_next_version_not_above_the_release_is_refused(repo):
    message = refused(repo, "0.2.0", "--next", "0.2.0-dev1")
    assert "NEXT=0.2.0-dev1 must be a semantic version greater than 0.2.0" in message


def test_dry_run_changes_nothing_and_says_what_it_would_do(repo):
    before = snapshot(repo)
    done = release(repo, "0.2.0", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "release 0.2.0: last release 0.1.0, working tree 0.2.0-dev0, 1 fragment(s): upgrades.yml" in done.stdout
    assert "antsibull-changelog release --version 0.2.0" in done.stdout and 'git commit -m "Start 0.3.0-dev0"' in done.stdout
    assert snapshot(repo) == before


def test_a_release_commits_tags_and_starts_the_next_development_version(repo):
    start = git(repo, "rev-parse", "HEAD").strip()
    done = release(repo, "0.2.0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "git push origin main 0.2.0" in done.stdout
    assert git(repo, "log", "--format=%s", "%s..HEAD" % start).splitlines() == ["Start 0.3.0-dev0", "Release 0.2.0"]
    assert git(repo, "tag", "--list").split() == ["0.1.0", "0.2.0"]
    assert git(repo, "cat-file", "-t", "0.2.0").strip() == "tag"        # annotated
    tagged = git(repo, "show", "0.2.0:galaxy.yml")
    assert "\nversion: 0.2.0\n" in tagged
    assert 'COLLECTION_VERSION = "0.2.0"' in git(repo, "show", "0.2.0:%s" % VERSION_PY.as_posix())
    assert "collections/convox-rack-0.2.0.tar.gz" in git(repo, "show", "0.2.0:examples/awx/requirements.yml")
    assert "collections/convox-rack-0.3.0-dev0.tar.gz" in (repo / "examples" / "awx" / "requirements.yml").read_text()
    changelog = git(repo, "show", "0.2.0:CHANGELOG.rst")
    assert "v0.2.0" in changelog and "a rack recorded by an older release is upgraded" in changelog
    assert "upgrades.yml" not in git(repo, "ls-tree", "-r", "--name-only", "0.2.0")
    assert "version: 0.3.0-dev0" in (repo / "galaxy.yml").read_text()
    assert 'COLLECTION_VERSION = "0.3.0-dev0"' in (repo / VERSION_PY).read_text()
    assert git(repo, "status", "--porcelain") == ""
    # the release's tarball, built from its tag, replaces the older one in the tree with the next version
    releases = RELEASES.as_posix() + "/"
    assert git(repo, "ls-tree", "-r", "--name-only", "HEAD", releases).split() == [releases + "convox-rack-0.2.0.tar.gz"]
    with tarfile.open(repo / releases / "convox-rack-0.2.0.tar.gz") as tar:
        assert json.load(tar.extractfile("MANIFEST.json"))["collection_info"]["version"] == "0.2.0"
    assert "convox-rack-0.2.0.tar.gz" in git(repo, "show", "--stat", "HEAD")
    # the fragments went into the release; with a new one, the same version again is refused
    (repo / "changelogs" / "fragments" / "fix.yml").write_text("bugfixes:\n  - rack - a fix.\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a fix")
    assert "VERSION=0.2.0 is not greater than the last release, 0.2.0" in refused(repo, "0.2.0")
