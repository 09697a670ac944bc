"""How pytest-xdist shares the tests out between its workers (`make test`: -n 2 --dist loadgroup
--no-loadscope-reorder), for tests/unit and tests/integration alike. Nothing else: the fixtures are
in tests/unit/conftest.py and tests/integration/conftest.py (test modules import those as `conftest`;
this one, loaded first, is never the one they get).

- Work is handed out longest first (SLOW_FIRST), so that the two workers end together: a worker that
  is free takes the next unit of work in this order.
- The tests of one file of GROUPS form one unit (run by one worker, one after the other): the files
  whose tests share a module-scoped rack or local AWS (every test file with a module-scoped fixture:
  tests/unit/test_test_groups.py checks it; split, a worker would run a test out of its order, on a
  rack of its own that the tests before it had not brought to where it expects), and the
  two that share one recorded security lifecycle (else the other worker waits on its lock while the
  first records it). Every other test is a unit of its own.

`--dist loadgroup` would group tests by their `xdist_group` marks, but pytest-xdist 3.8 renames a
marked item's `_nodeid`, which pytest 9 no longer reads: the marks take no effect. The scheduler below
is xdist's own LoadScopeScheduling, its units taken from GROUPS by file."""

from __future__ import annotations

GROUPS = {
    "tests/integration/test_apps.py": "apps",
    "tests/integration/test_awx.py": "awx",
    "tests/integration/test_docs_commands.py": "docs",
    "tests/integration/test_drift.py": "drift",
    "tests/integration/test_instance_refresh.py": "instance-refresh",
    "tests/integration/test_inventory.py": "inventory",
    "tests/integration/test_rack_boundary.py": "rack-boundary",
    "tests/integration/test_rack_info.py": "rack-info",
    "tests/integration/test_rack_lifecycle.py": "rack-lifecycle",
    "tests/integration/test_rack_security.py": "rack-security",
    "tests/integration/test_realism.py": "realism",
    "tests/integration/test_secrets.py": "security-lifecycle",
    "tests/integration/test_security_policy.py": "security-lifecycle",
    "tests/integration/test_switch.py": "switch",
    "tests/integration/test_upgrade.py": "upgrade",
}

# Node id prefixes, longest work first (from --durations of full runs on the 2-core CI machine); a
# test takes the place of the first prefix it matches, the others follow in collection order, the unit
# tests (seconds in all) last. The first reliability test records the fault-free baseline (reliability.
# baseline, about a minute) that the others of test_reliability_interrupt.py and _faults.py read: the
# two tests of test_reliability_data.py, which need none, come next, so that no worker waits for it.
SLOW_FIRST = [
    "tests/integration/test_security_policy.py",
    "tests/integration/test_secrets.py",
    "tests/integration/test_switch.py",
    "tests/integration/test_realism.py",
    "tests/integration/test_docs_commands.py",
    "tests/integration/test_instance_refresh.py",
    "tests/integration/test_reliability_interrupt.py::test_killed_runs_are_finished_by_a_rerun[vpc-dns]",
    "tests/integration/test_reliability_data.py",
    "tests/integration/test_reliability_interrupt.py",
    "tests/integration/test_reliability_faults.py::test_ten_percent_faults",
    "tests/integration/test_inventory.py",
    "tests/integration/test_upgrade.py",
    "tests/integration/test_awx.py",
    "tests/integration/test_reliability_faults.py::test_one_fault_on_any_inventory_call",
    "tests/integration/test_reliability_faults.py::test_faults_that_never_stop",
    "tests/integration/test_apps.py",
    "tests/integration/test_reliability_faults.py",
    "tests/integration/test_concurrency.py",
    "tests/integration/test_input_properties_playbooks.py",
    "tests/integration/test_rack_lifecycle.py",
    "tests/integration/test_rack_info.py",
    "tests/integration/test_rack_security.py",
    "tests/integration/test_drift.py",
    "tests/integration/test_rack_partial.py",
    "tests/integration/",
]


def _rank(nodeid):
    for i, prefix in enumerate(SLOW_FIRST):
        if nodeid.startswith(prefix):
            return i
    return len(SLOW_FIRST)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: _rank(item.nodeid))  # stable: the order within a rank is kept


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        """LoadScopeScheduling whose unit of work is a file of GROUPS, else one test."""

        def _split_scope(self, nodeid):
            return GROUPS.get(nodeid.split("::")[0], nodeid)

    return GroupScheduling(config, log)
