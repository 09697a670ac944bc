"""The collection's version: galaxy.yml and version.py say the same, and versions are ordered by
semver precedence (https://semver.org/#spec-item-11), which the rack's version guard relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.convox.rack.plugins.module_utils._rack import record
from ansible_collections.convox.rack.plugins.module_utils._rack.errors import RackError
from ansible_collections.convox.rack.plugins.module_utils._rack.version import (
    COLLECTION_VERSION, compare_versions, parse_version)

ROOT = Path(__file__).resolve().parents[2]


def test_galaxy_yml_and_version_py_say_the_same():
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert galaxy["version"] == COLLECTION_VERSION
    assert parse_version(COLLECTION_VERSION) is not None
    # the execution environment's requirements name the tarball `ansible-galaxy collection build` makes
    awx = yaml.safe_load((ROOT / "examples" / "awx" / "requirements.yml").read_text())
    assert [c["name"] for c in awx["collections"]] == ["collections/convox-rack-%s.tar.gz" % COLLECTION_VERSION]


# semver's own example of precedence, lowest first, plus the releases around a development tree.
ORDERED = ["0.1.0", "0.1.1-dev0", "0.2.0-0", "0.2.0-dev0", "0.2.0-dev1", "0.2.0-dev10", "0.2.0", "0.10.0",
           "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
           "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1", "10.0.0"]


@pytest.mark.parametrize("index", range(len(ORDERED) - 1))
def test_each_version_ranks_below_the_next(index):
    low, high = ORDERED[index], ORDERED[index + 1]
    assert compare_versions(low, high) == -1
    assert compare_versions(high, low) == 1


def test_sorting_by_it_gives_semvers_order():
    import functools

    shuffled = list(reversed(ORDERED))
    assert sorted(shuffled, key=functools.cmp_to_key(compare_versions)) == ORDERED


def test_equal_versions_and_build_metadata():
    assert compare_versions("0.2.0", "0.2.0") == 0
    assert compare_versions("0.2.0-dev0", "0.2.0-dev0") == 0
    assert compare_versions("0.2.0+build.5", "0.2.0") == 0   # build metadata has no precedence


def test_a_development_tree_is_upgraded_by_the_release_it_precedes():
    """The rule of docs/development.md: the tree after release X.Y.Z says X.(Y+1).0-dev0."""
    assert compare_versions("0.1.0", COLLECTION_VERSION) == -1
    assert compare_versions(COLLECTION_VERSION, "0.2.0") == -1


@pytest.mark.parametrize("text", ["", None, "0.1", "v0.1.0", "01.0.0", "0.1.0-", "0.1.0-01", "1.0.0-a..b", "latest",
                                  "0.1.0 ", 1])
def test_what_is_not_a_version(text):
    assert parse_version(text) is None
    with pytest.raises(ValueError) as e:
        compare_versions(text, "0.1.0")
    assert "is not a semantic version" in str(e.value)


def test_parse():
    assert parse_version("1.2.3") == (1, 2, 3, ())
    assert parse_version("1.2.3-rc.1+sha.5114f85") == (1, 2, 3, ("rc", 1))


# -- the rack's version guard (record.check_version), before any AWS write ---------------------------------------


def recorded(version):
    tags = {"System": "convox", "Rack": "prod", "Type": "rack", "convox:status": "running"}
    if version is not None:
        tags["convox:version"] = version
    return tags


@pytest.mark.parametrize("older", ["0.1.0", "0.2.0-0", "0.1.9"])
def test_a_rack_recorded_by_an_older_release_is_an_upgrade(older):
    assert record.check_version("prod", recorded(older), allow_downgrade=False) == older
    assert record.version_change(older) == "upgrade"


def test_a_rack_without_a_bucket_or_of_this_version_is_no_change():
    assert record.check_version("prod", None, allow_downgrade=False) is None
    assert record.check_version("prod", recorded(COLLECTION_VERSION), allow_downgrade=False) == COLLECTION_VERSION
    assert record.version_change(COLLECTION_VERSION) is None


@pytest.mark.parametrize("newer", ["9.9.9", "0.2.0", "0.2.0-dev1", "1.0.0-rc.1"])
def test_a_rack_recorded_by_a_newer_release_is_refused_naming_both_versions(newer):
    with pytest.raises(RackError) as e:
        record.check_version("prod", recorded(newer), allow_downgrade=False)
    msg = e.value.msg
    assert msg.startswith("rack prod was last converged by convox.rack %s, newer than this collection (convox.rack %s)"
                          % (newer, COLLECTION_VERSION)), msg
    assert "set allow_downgrade: true" in msg and msg.endswith("nothing was changed")
    assert record.check_version("prod", recorded(newer), allow_downgrade=True) == newer
    assert record.version_change(newer) == "downgrade"


@pytest.mark.parametrize("bad", ["latest", "0.1", "", "v0.2.0"])
def test_a_version_that_is_not_one_is_refused_as_it_cannot_be_ordered(bad):
    with pytest.raises(RackError) as e:
        record.check_version("prod", recorded(bad), allow_downgrade=False)
    assert "records version %r (tag convox:version of its bucket), which is not a semantic version" % bad in e.value.msg
    assert "set allow_downgrade: true" in e.value.msg
    assert record.check_version("prod", recorded(bad), allow_downgrade=True) == bad
    assert record.version_change(bad) == "upgrade"


def test_a_rack_whose_bucket_records_no_version_is_refused():
    with pytest.raises(RackError) as e:
        record.check_version("prod", recorded(None), allow_downgrade=False)
    assert "rack prod records no version (tag convox:version of its bucket)" in e.value.msg
    assert record.check_version("prod", recorded(None), allow_downgrade=True) is None
