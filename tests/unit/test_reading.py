"""Reading a rack: its log group and apps, and refusing what is not tagged as the rack's.

These run against moto in-process (mock_aws): it pages describe_log_groups as AWS does
(ASCII-sorted by name, 50 groups a page, nextToken), which is what decides which apps a rack
appears to have, so no Stubber is needed here.
"""

from __future__ import annotations

import pytest
from moto import mock_aws

from ansible_collections.convox.rack.plugins.module_utils._rack.aws import Aws
from ansible_collections.convox.rack.plugins.module_utils._rack.errors import RackError
from ansible_collections.convox.rack.plugins.module_utils._rack.naming import RackNames, system_tags
from ansible_collections.convox.rack.plugins.module_utils._rack.parts import logs as log_part
from ansible_collections.convox.rack.plugins.module_utils._rack.state import RackState

ACCOUNT = "123456789012"
NAMES = RackNames("prod", "us-east-1", ACCOUNT)


@pytest.fixture
def logs(client_pool, monkeypatch):
    # moto itself opens a default boto3 session, which a stray AWS_PROFILE would break
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    with mock_aws():
        # an explicit AWS endpoint: moto intercepts it even when AWS_ENDPOINT_URL points elsewhere
        yield client_pool.session.client("logs", region_name="us-east-1",
                                         endpoint_url="https://logs.us-east-1.amazonaws.com")


def make_groups(logs, names, tags=None):
    for name in names:
        rack = name.split("/")[2]
        logs.create_log_group(logGroupName=name, tags=tags if tags is not None else system_tags(rack))


def read(logs):
    state = RackState(NAMES)
    aws = Aws(lambda service: logs)
    log_part.read_rack(aws, state)
    return state


def test_rack_log_group_and_apps_are_read(logs):
    make_groups(logs, ["/convox/prod", "/convox/prod/apps/web", "/convox/prod/apps/api"])
    state = read(logs)
    assert state.apps == ["api", "web"]
    assert state.log_group["logGroupName"] == "/convox/prod"
    assert state.log_group_tags == system_tags("prod")


def test_another_racks_groups_are_not_this_racks_apps(logs):
    make_groups(logs, ["/convox/prod", "/convox/prod-eu", "/convox/prod-eu/apps/api", "/convox/production/apps/web"])
    assert read(logs).apps == []


def test_log_group_not_tagged_as_the_racks_is_refused(logs):
    make_groups(logs, ["/convox/prod"], tags={"Team": "someone-else"})
    with pytest.raises(RackError) as e:
        read(logs)
    assert e.value.msg == ("log group /convox/prod exists but is not tagged as part of rack prod (System=convox, "
                           "Rack=prod, Type=rack); refusing to adopt or delete it")
    assert e.value.details == {"resource": "log group /convox/prod"}


@pytest.mark.parametrize("groups, apps", [
    # a rack with 60 apps: all 60 are listed
    (["/convox/prod"] + ["/convox/prod/apps/a%02d" % i for i in range(60)], ["a%02d" % i for i in range(60)]),
    # '-' sorts before '/': another rack's 49 groups fill the first page, this rack's one app is on the second
    (["/convox/prod", "/convox/prod/apps/web"] + ["/convox/prod-eu/apps/a%02d" % i for i in range(49)], ["web"]),
], ids=["sixty-apps", "apps-on-page-two"])
def test_apps_on_later_pages_are_found(logs, groups, apps):
    make_groups(logs, groups)
    assert read(logs).apps == apps
