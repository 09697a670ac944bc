"""Interruptions: ansible-playbook is SIGKILLed after its Nth AWS call, at points spread over install,
update and uninstall (shares of a fault-free run's calls, and the calls right after the creates and
deletes whose follow-up matters), and each time the rerun of the same playbook converges to exactly
the rack a fault-free run builds (the whole account is pictured and compared, untagged leftovers
included), and the uninstall leaves the account empty.

A kill ends the whole run, as a killed CI job or container would: ansible-playbook's process group
and the async module the rack role starts, which lives on detached from ansible-playbook otherwise
(every process whose environment carries the run's mark). The request the kill lands on either
never reaches AWS ("drop": killed before sending) or reaches it with its answer lost ("lost": killed
while AWS acted). One chain kills ansible-playbook alone (scope "playbook"): the detached module
finishes the run by itself (a rerun started meanwhile waits for its lock).

Each chain is one rack in an account of its own: install killed, rerun; update killed, rerun;
uninstall killed, rerun.
Kill points, reruns and the locks killed runs left are printed (pytest -rA)."""

from __future__ import annotations

import pytest

import reliability as R

# (install, update, uninstall) kill points: {"at": share of the fault-free run's calls} or
# {"action": the first call of that action}, with "then": "drop" | "lost"; None: not run.
CHAINS = {
    "vpc-dns": ({"action": "ec2:ModifyVpcAttribute"}, {"action": "autoscaling:UpdateAutoScalingGroup"},
                {"action": "ec2:DeleteNatGateway", "then": "lost"}),
    "lb-attributes": ({"action": "elasticloadbalancing:ModifyLoadBalancerAttributes"},
                      {"action": "ssm:PutParameter", "then": "lost"}, {"action": "ec2:DeleteVpc"}),
    "bucket-record": ({"action": "s3:PutBucketTagging"}, {"at": 0.95},
                      {"action": "s3:PutBucketTagging", "then": "lost"}),
    # ansible-playbook alone (its async module lives on): install and uninstall only, for time
    "playbook-only": ({"at": 0.55, "scope": "playbook"}, None, {"at": 0.55, "scope": "playbook"}),
}


def kill_point(point, actions):
    """(N, counting): kill at the Nth request that counting(record) accepts (all when None). An
    "action" point is the first request of that action in the run itself (parallel reads make
    the order of a run's first calls vary); an "at" point a share of the fault-free run's calls."""
    if "action" in point:
        assert point["action"] in actions, "%s is not a call of the fault-free run" % point["action"]
        return 1, lambda record: record.name == point["action"]
    return max(1, min(len(actions), round(point["at"] * len(actions)))), None


def killed_then_rerun(driver, playbook, extra_vars, point, actions, figures):
    n, counting = kill_point(point, actions)
    scope = point.get("scope", "all")
    killed = driver.playbook(playbook, extra_vars, kill_after=n, kill_then=point.get("then", "drop"), kill_scope=scope,
                             kill_counting=counting)
    assert killed.killed_at, "%s ended (rc %s) before the kill point %s" % (playbook, killed.rc, point)
    assert killed.rc == -9, "%s was not killed: rc %s" % (playbook, killed.rc)
    if scope == "all":
        assert R.processes_of(killed.mark) == [], "a process of the killed run lives on"
    rerun = driver.playbook(playbook, extra_vars)
    if scope != "all":
        R.wait_gone(killed.mark)  # the detached module of the killed run, if it still runs
    said = rerun.stdout + rerun.stderr  # Ansible prints the module's warnings on stderr
    figures.append({"playbook": playbook, "killed_at": "%s of %d" % (killed.killed_at, len(actions)),
                    "dead_lock_left": bool(R.dead_lock(driver.account, R.RACK)),
                    "then": point.get("then", "drop"), "scope": scope, "rerun_seconds": round(rerun.seconds, 1),
                    "rerun_calls": rerun.calls, "lock_taken_over": "took over the run lock" in said,
                    "waited_for_lock": "for another run of rack" in said})
    return rerun


def converged(account, expected, what):
    """The account is the fault-free one, but for the run lock a killed run may have left: a run that
    changes nothing (the rerun of an update killed after its changes, during its wait) never takes
    the lock, by design, so the lock stays until the next changing run takes it over at once (its
    holder's process on this host is gone). That much is checked; the lock itself is left out."""
    pic = R.picture(account, [R.RACK])
    if R.dead_lock(account, R.RACK):
        pic = pic.without("ssm_parameter", name="/convox/%s/lock" % R.RACK)
    R.assert_same(pic, expected, what)


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_killed_runs_are_finished_by_a_rerun(local_aws, aws_proxy, base, chain):
    install_at, update_at, uninstall_at = CHAINS[chain]
    account = R.Account(local_aws, "interrupt-" + chain)
    driver = R.Driver(local_aws, account, aws_proxy)
    actions = {step: base["runs"][step]["actions"] for step in ("install", "update", "uninstall")}
    figures = []

    killed_then_rerun(driver, "install_rack.yml", dict(R.RACK_VARS, rack=R.RACK, **R.POLL), install_at,
                      actions["install"], figures)
    converged(account, base["pictures"]["install"],
              "the account after a killed install and its rerun (%s)" % figures[-1]["killed_at"])

    if update_at:
        killed_then_rerun(driver, "update_rack.yml", dict(R.UPDATE_VARS, rack=R.RACK, **R.POLL), update_at,
                          actions["update"], figures)
        converged(account, base["pictures"]["update"],
                  "the account after a killed update and its rerun (%s)" % figures[-1]["killed_at"])

    killed_then_rerun(driver, "uninstall_rack.yml", dict(R.POLL, rack=R.RACK, rack_purge_data=True), uninstall_at,
                      actions["uninstall"], figures)
    R.report("interrupted chain %s" % chain, figures)
    left = R.picture(account, [R.RACK]).as_dict()
    assert left == {}, "the rerun uninstall left %s" % left
