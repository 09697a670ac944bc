"""parts/refresh.py's pure pieces: the progress words read from DescribeInstanceRefreshes'
PercentageComplete and InstancesToUpdate (Amazon EC2 Auto Scaling API Reference, InstanceRefresh),
the refresh's own timeout, and which refresh is the rack's. The refresh itself against the local AWS:
tests/integration/test_instance_refresh.py."""

from __future__ import annotations

import pytest

from ansible_collections.convox.rack.plugins.module_utils._rack.parts import refresh


@pytest.mark.parametrize("answer, words", [
    ({"Status": "InProgress", "PercentageComplete": 0, "InstancesToUpdate": 2}, "replacing instances: 0% (0/2 replaced)"),
    ({"Status": "InProgress", "PercentageComplete": 50, "InstancesToUpdate": 1}, "replacing instances: 50% (1/2 replaced)"),
    ({"Status": "InProgress", "PercentageComplete": 66, "InstancesToUpdate": 1}, "replacing instances: 66% (2/3 replaced)"),
    ({"Status": "Successful", "PercentageComplete": 100, "InstancesToUpdate": 0}, "replacing instances: 100%"),
    ({"Status": "Pending"}, "replacing instances: 0% (0/0 replaced)"),
])
def test_progress_words(answer, words):
    assert refresh.progress_words(answer) == words


def test_the_timeout_is_sized_by_instance_count_not_wait_timeout():
    assert refresh.timeout(1) == 900 and refresh.timeout(2) == 1200 and refresh.timeout(10) == 3600
    assert refresh.timeout(0) == refresh.timeout(1)


def test_preferences_launch_before_terminate_and_roll_back():
    assert refresh.preferences() == {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200, "SkipMatching": True,
                                     "AutoRollback": True, "InstanceWarmup": 60}
    assert refresh.preferences(skip_matching=False)["SkipMatching"] is False


def test_a_refresh_is_the_racks_when_it_moves_the_group_to_the_wanted_version():
    spec = {"LaunchTemplateId": "lt-1", "Version": "3"}
    ours = {"DesiredConfiguration": {"LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "3"}}}
    assert refresh.is_for(ours, spec)
    assert not refresh.is_for({"DesiredConfiguration": {"LaunchTemplate": {"LaunchTemplateId": "lt-1",
                                                                           "Version": "2"}}}, spec)
    assert not refresh.is_for({}, spec) and not refresh.is_for(None, spec)
