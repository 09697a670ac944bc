"""tests/conftest.py's GROUPS holds every integration test file with a module-scoped fixture: split
across pytest-xdist workers, such a file's tests would each meet a rack (or a local AWS) of their own
worker, that the tests before them had not brought to where they expect. (CI failed so once:
test_instance_refresh.py's fourth test ran on a worker whose rack no earlier test had changed.)"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
MODULE_SCOPED = re.compile(r"@pytest\.fixture\([^)]*scope=\"module\"")


def groups():
    spec = importlib.util.spec_from_file_location("convox_rack_test_scheduling", TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.GROUPS, module.SLOW_FIRST


def test_every_file_with_a_module_scoped_fixture_is_one_unit_of_work():
    grouped, _slow_first = groups()
    files = sorted(p for p in (TESTS / "integration").glob("test_*.py") if MODULE_SCOPED.search(p.read_text()))
    assert files, "no module-scoped fixture found: the pattern no longer matches how fixtures are written"
    missing = [p.relative_to(TESTS.parent).as_posix() for p in files
               if p.relative_to(TESTS.parent).as_posix() not in grouped]
    assert not missing, "add these to GROUPS in tests/conftest.py: %s" % missing


def test_every_grouped_file_exists():
    grouped, slow_first = groups()
    root = TESTS.parent
    assert [name for name in grouped if not (root / name).is_file()] == []
    assert [p for p in slow_first if not (root / p.split("::")[0]).exists()] == []
