"""The instance role's permissions boundary (`permissions_boundary`, `rack_permissions_boundary`) against
the local AWS, read back through IAM: install with a boundary, rerun without change, a rack that
keeps it when later runs leave it unset, a new boundary, check mode, the role playbook, uninstall,
and a bad ARN refused before any AWS request (the recording proxy sees none). The module runs are its
main() in this process (conftest.InProcess), against the local AWS; the playbook is a real run.

The local AWS keeps a role's PermissionsBoundary (CreateRole, PutRolePermissionsBoundary, GetRole)
but neither checks that the policy exists nor evaluates it or any IAM condition: that the shipped
operator policy allows these calls only with the boundary is checked by test_security_policy.py
against the policy document, and the order of the calls by tests/unit/test_permissions_boundary.py.
"""

from __future__ import annotations

import os

import pytest

from conftest import ROOT, InProcess, live_tagged

RACK = "bounded"
DOCUMENT = os.path.join(ROOT, "docs", "policies", "instance-boundary.json")
ROLE = "convox-%s-us-east-1-instance" % RACK


@pytest.fixture(scope="module")
def boundaries(local_aws):
    """Two boundary policies made from the shipped document, as an administrator creates them."""
    iam = local_aws.client("iam")
    with open(DOCUMENT, encoding="utf-8") as f:
        document = f.read()
    arns = [iam.create_policy(PolicyName=name, PolicyDocument=document)["Policy"]["Arn"]
            for name in ("convox-rack-instance-boundary", "convox-rack-instance-boundary-v2")]
    yield arns
    for arn in arns:
        iam.delete_policy(PolicyArn=arn)


def role_boundary(local_aws, name=ROLE):
    role = local_aws.client("iam").get_role(RoleName=name)["Role"]
    return (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")


@pytest.fixture(scope="module")
def installed(direct, local_aws, boundaries):
    args = {"name": RACK, "high_availability": False, "instance_count": 1, "permissions_boundary": boundaries[0]}
    planned = direct.module(args, check=True, diff=True)
    assert not planned.get("failed"), planned.get("msg")
    assert live_tagged(local_aws, RACK) == [], "check mode created resources"
    result = direct.module(args)
    assert not result.get("failed"), result.get("msg")
    yield {"planned": planned, "result": result, "args": args}
    direct.module({"name": RACK, "state": "absent", "purge_data": True})


def test_check_mode_plans_the_role_with_its_boundary(installed, boundaries):
    planned = installed["planned"]
    assert planned["changed"] is True
    assert {"resource": "iam_role", "name": ROLE, "action": "create",
            "changes": {"permissions_boundary": boundaries[0]}} in planned["plan"]
    assert planned["diff"]["after"]["parameters"]["permissions_boundary"] == boundaries[0]


def test_the_role_is_created_with_the_boundary_and_it_is_recorded(installed, local_aws, boundaries, direct):
    assert installed["result"]["changed"] is True
    assert installed["result"]["rack"]["parameters"]["permissions_boundary"] == boundaries[0]
    assert role_boundary(local_aws) == boundaries[0]
    bucket = installed["result"]["rack"]["bucket"]
    tags = {t["Key"]: t["Value"] for t in local_aws.client("s3").get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags["convox:permissions_boundary"] == boundaries[0]
    info = direct.module({"name": RACK}, module_name="rack_info")
    assert info["racks"][0]["parameters"]["permissions_boundary"] == boundaries[0]


def test_a_rerun_changes_nothing(installed, direct):
    rerun = direct.module(installed["args"])
    assert rerun["changed"] is False, rerun.get("plan")


def test_a_run_that_leaves_it_unset_keeps_it_and_puts_it_back(installed, direct, local_aws, boundaries):
    """Unset keeps the recorded boundary; removed by hand, the next run puts it back."""
    local_aws.client("iam").delete_role_permissions_boundary(RoleName=ROLE)
    result = direct.module({"name": RACK})
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True
    assert {"resource": "iam_role", "name": ROLE, "action": "update", "changes": {
        "permissions_boundary": {"before": None, "after": boundaries[0]}}} in result["plan"]
    assert role_boundary(local_aws) == boundaries[0]
    assert direct.module({"name": RACK})["changed"] is False


def test_a_new_boundary_is_put_on_the_role(installed, direct, local_aws, boundaries):
    planned = direct.module({"name": RACK, "permissions_boundary": boundaries[1]}, check=True)
    assert planned["changed"] is True and role_boundary(local_aws) == boundaries[0], "check mode wrote"
    assert [c for c in planned["plan"] if c["resource"] == "iam_role"] == [
        {"resource": "iam_role", "name": ROLE, "action": "update",
         "changes": {"permissions_boundary": {"before": boundaries[0], "after": boundaries[1]}}}]
    result = direct.module({"name": RACK, "permissions_boundary": boundaries[1]})
    assert result["changed"] is True
    assert result["rack"]["parameters"]["permissions_boundary"] == boundaries[1]
    assert role_boundary(local_aws) == boundaries[1]
    assert direct.module({"name": RACK, "permissions_boundary": boundaries[1]})["changed"] is False


def test_the_playbook_variable_reaches_the_role(installed, runner, local_aws, boundaries):
    # rack_poll_interval: look at the run every second (not every 15 s) once the first 8 s are past
    runner.playbook(os.path.join(ROOT, "playbooks", "update_rack.yml"),
                    {"rack": RACK, "rack_permissions_boundary": boundaries[0], "rack_poll_interval": 1})
    assert role_boundary(local_aws) == boundaries[0]
    runner.playbook(os.path.join(ROOT, "playbooks", "update_rack.yml"),
                    {"rack": RACK, "rack_permissions_boundary": "", "rack_poll_interval": 1})
    assert role_boundary(local_aws) == boundaries[0], "an empty variable keeps the recorded boundary"


def test_uninstall_deletes_a_bounded_role(direct, local_aws, boundaries):
    """DeleteRole needs no DeleteRolePermissionsBoundary first (the operator policy denies that action)."""
    name = "bounded-gone"
    args = {"name": name, "high_availability": False, "instance_count": 1, "permissions_boundary": boundaries[0]}
    assert not direct.module(args).get("failed")
    assert role_boundary(local_aws, "convox-%s-us-east-1-instance" % name) == boundaries[0]
    result = direct.module({"name": name, "state": "absent", "purge_data": True})
    assert not result.get("failed"), result.get("msg")
    assert live_tagged(local_aws, name) == []


@pytest.mark.parametrize("arn,rule", [
    ("convox-rack-instance-boundary", "must be the ARN of an IAM managed policy"),
    ("arn:aws:iam::123456789012:role/convox-rack-instance-boundary", "must be the ARN of an IAM managed policy"),
    ("arn:aws:iam::12345:policy/x", "must be the ARN of an IAM managed policy"),
    ("arn:aws:iam::123456789012:policy/a,b", "must be the ARN of an IAM managed policy"),
    ("arn:aws:iam::123456789012:policy/" + "p" * 250, "must be at most 256 characters"),
])
def test_a_bad_arn_is_refused_before_any_aws_request(local_aws, aws_proxy, arn, rule):
    result = InProcess(local_aws, proxy=aws_proxy).module({"name": "bounded-bad", "permissions_boundary": arn})
    assert result.get("failed") is True and result["changed"] is False
    assert result["msg"].startswith("permissions_boundary: " + rule), result["msg"]
    assert aws_proxy.records == [], [r.name for r in aws_proxy.records]


def test_another_accounts_policy_is_refused_before_any_write(local_aws, aws_proxy):
    result = InProcess(local_aws, proxy=aws_proxy).module({
        "name": "bounded-other", "permissions_boundary": "arn:aws:iam::999999999999:policy/convox-rack-instance-boundary"})
    assert result.get("failed") is True
    assert result["msg"].startswith("permissions_boundary: must be a policy of the account"), result["msg"]
    writes = [r.name for r in aws_proxy.records if not r.action.startswith(("Get", "Describe", "List", "Head"))]
    assert writes == [], writes
    assert live_tagged(local_aws, "bounded-other") == []
