"""What a user sees (issue 13): live progress that names the step, an honest summary, misspelt
variables refused, the playbooks run from their own directory. Every test runs real
ansible-playbook and reads its output, its rc and the local AWS."""

from __future__ import annotations

import os
import re
import subprocess

from conftest import ROOT, VENV_BIN, Runner

from ansible_collections.convox.rack.plugins.module_utils._rack.version import COLLECTION_VERSION

PROGRESS = re.compile(r"^rack (?P<rack>[a-z0-9-]+): (?P<step>(reading|creating|updating|deleting|replacing|waiting for) .+)"
                      r" \((?:(?P<m>\d+)m)?(?P<s>\d+)s\)$")
# every timing of the realism mode (scripts/realism.py); the slow install sets all but one to 0
REALISM_TIMINGS = ("latency", "nat_pending", "nat_deleting", "lb_provisioning", "instance_pending", "agent_registration",
                   "asg_delete", "lb_eni_linger", "profile_propagation", "s3_consistency", "ec2_consistency",
                   "tagging_lag", "bucket_policy_propagation", "kms_consistency")
SUMMARY = re.compile(r"^rack (?P<rack>[a-z0-9-]+) is (?P<status>[a-z]+)(?: at (?P<router>\S+))?: "
                     r"(?:no change|(?P<count>\d+) changes?)(?P<check> would be made \(check mode\))?$")


def playbook(name):
    return os.path.join(ROOT, "playbooks", name)


# The VPC's default security group and network ACL, which every install closes (parts/firewall.close_defaults)
VPC_DEFAULTS = re.compile(r"^(updated|would update) (security group sg-\S+|network ACL acl-\S+|"
                          r"security group default of the new VPC|network ACL default of the new VPC)$")


def shown_msg(stdout, task):
    """The lines of the msg a debug task printed (a list, or one string)."""
    block = stdout[stdout.index("TASK [%s" % task):]
    body = block[block.index('"msg": ') + len('"msg": '):]
    if body.startswith("["):
        body = body[:body.index("\n    ]")]
        return [line.strip().rstrip(",")[1:-1].strip() for line in body.splitlines()[1:]]
    return [body[1:body.index('"\n')]]


def progress_lines(stdout):
    return [m for m in (PROGRESS.match(line) for line in stdout.splitlines()) if m]


def test_a_slow_healthy_install_shows_its_steps_and_no_failure(local_aws, aws_proxy):
    """Findings 1 and 2: on a local AWS slowed down (every call answered 0.1 to 0.3 s late, and the
    load balancer provisioning for 6 s in the realism mode, so that the run certainly waits) an
    install lasts well over 8 s; the user sees a line naming the step and the elapsed time at
    most every rack_poll_interval seconds and at least every twice that, and nothing that says
    FAILED, RETRYING or ERROR."""
    aws_proxy.configure(fault_rate=1.0, faults=["slow"], slow_seconds=(0.1, 0.3))
    local_aws.realism(scale=1, timings=dict({t: 0 for t in REALISM_TIMINGS}, lb_provisioning=6))
    try:
        proc = Runner(local_aws, proxy=aws_proxy).playbook(
            playbook("install_rack.yml"), {"rack": "uxslow", "rack_high_availability": False, "rack_instance_count": 1,
                                           "rack_poll_interval": 2})
    finally:
        local_aws.realism(enabled=False)
    out = proc.stdout + proc.stderr
    for word in ("FAILED", "RETRYING", "ERROR", "retries left"):
        assert word not in out, out
    lines = progress_lines(proc.stdout)
    assert len(lines) >= 3, proc.stdout
    assert {m["rack"] for m in lines} == {"uxslow"}
    assert any(m["step"].startswith("creating ") for m in lines), proc.stdout
    assert any(m["step"].startswith("waiting for ") for m in lines), proc.stdout
    seconds = [int(m["m"] or 0) * 60 + int(m["s"]) for m in lines]
    assert seconds[0] >= 2
    gaps = [b - a for a, b in zip(seconds, seconds[1:])]
    assert all(2 <= g <= 5 for g in gaps), (gaps, proc.stdout)   # at most every 2 s, at least every 4 s (+1 s of polling)
    summary = shown_msg(proc.stdout, "convox.rack.rack : Show what was done")
    assert SUMMARY.match(summary[0])["status"] == "running", summary


def test_summary_names_router_and_each_change_and_check_mode_plans_the_same_list(runner, local_aws):
    """Findings 10 and 5: the last message names the rack, its status, its router and the count,
    then one line per change; an update's check-mode plan lists exactly the changes the real
    update then makes (no extra load-balancer entry 'last run unfinished')."""
    proc = runner.playbook(playbook("install_rack.yml"),
                           {"rack": "uxsum", "rack_high_availability": False, "rack_instance_count": 1})
    lines = shown_msg(proc.stdout, "convox.rack.rack : Show what was done")
    m = SUMMARY.match(lines[0])
    assert m and m["rack"] == "uxsum" and m["status"] == "running", lines
    lb = local_aws.client("elbv2").describe_load_balancers(Names=["convox-uxsum"])["LoadBalancers"][0]
    assert m["router"] == lb["DNSName"]
    assert int(m["count"]) == len(lines) - 1
    # one line per resource: the bucket created then its record written, the role created then its policy
    # put, the cluster created then its capacity providers set, are each one line
    assert len(set(lines[1:])) == len(lines) - 1, lines
    # everything created, and the two defaults AWS makes with the VPC closed (docs/security.md)
    assert [line for line in lines[1:] if VPC_DEFAULTS.match(line)] == [
        line for line in lines[1:] if line.startswith("updated ")] and len(
        [line for line in lines[1:] if VPC_DEFAULTS.match(line)]) == 2, lines
    assert all(re.match(r"^created \S", line) for line in lines[1:] if not VPC_DEFAULTS.match(line)), lines
    assert "created NAT gateway" not in " ".join(lines)           # a public rack has none
    assert any(line.startswith("created load balancer convox-uxsum") for line in lines)

    update = {"rack": "uxsum", "rack_instance_count": 2, "rack_log_retention": 14}
    plan = shown_msg(runner.playbook(playbook("install_rack.yml"), update, check=True).stdout,
                     "convox.rack.rack : Show what was done")
    done = shown_msg(runner.playbook(playbook("install_rack.yml"), update).stdout, "convox.rack.rack : Show what was done")
    assert SUMMARY.match(plan[0])["check"] and SUMMARY.match(plan[0])["count"] == SUMMARY.match(done[0])["count"]
    assert all(line.startswith("would update ") for line in plan[1:]), plan
    words = {"would update": "updated", "would create": "created", "would delete": "deleted"}
    assert [re.sub(r"^would \w+", lambda w: words[w.group(0)], line) for line in plan[1:]] == done[1:]
    assert not any("last run unfinished" in line for line in done), done
    again = shown_msg(runner.playbook(playbook("install_rack.yml"), update).stdout, "convox.rack.rack : Show what was done")
    assert again == ["rack uxsum is running at %s: no change" % lb["DNSName"]]


def test_a_misspelt_variable_fails_before_any_aws_call(local_aws, aws_proxy):
    """Finding 4: -e rack_instance_typ=t3.large is refused, naming the closest known variable,
    with no AWS call at all; the same for an app_ variable."""
    runner = Runner(local_aws, proxy=aws_proxy)
    proc = runner.playbook(playbook("install_rack.yml"), {"rack": "uxtypo", "rack_instance_typ": "t3.large"}, expect_rc=2)
    assert "rack_instance_typ: unknown; did you mean rack_instance_type? Nothing was changed." in proc.stdout
    proc = runner.playbook(playbook("create_app.yml"), {"rack": "uxtypo", "app": "web", "app_log_retension": 3},
                           expect_rc=2)
    assert "app_log_retension: unknown; did you mean app_log_retention? Nothing was changed." in proc.stdout
    assert aws_proxy.summary()["requests"] == 0


def test_playbooks_run_from_their_own_directory(local_aws):
    """Finding 3: `cd playbooks && ansible-playbook install_rack.yml -e rack=...` finds the collection."""
    env = dict(local_aws.env)
    env.pop("ANSIBLE_CONFIG")
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "install_rack.yml", "-e", "rack=uxcwd", "--check"],
                          cwd=os.path.join(ROOT, "playbooks"), env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "was not found" not in proc.stdout + proc.stderr
    summary = shown_msg(proc.stdout, "convox.rack.rack : Show what was done")
    assert SUMMARY.match(summary[0])["check"] and summary[0].startswith("rack uxcwd is installing:")
    assert all(line.startswith("would create ") for line in summary[1:] if not VPC_DEFAULTS.match(line))
    assert [line for line in summary[1:] if VPC_DEFAULTS.match(line)] == [
        "would update security group default of the new VPC", "would update network ACL default of the new VPC"]


def test_refusals_come_first_and_name_the_playbook_variables(runner):
    """Findings 7 and 8: turning high_availability on is refused as such (not for its instance
    count), and from a playbook the messages name the variables typed (rack_high_availability,
    rack_force), in the [ERROR] line as in the result."""
    runner.playbook(playbook("install_rack.yml"),
                    {"rack": "uxref", "rack_high_availability": False, "rack_instance_count": 1})
    proc = runner.playbook(playbook("update_rack.yml"), {"rack": "uxref", "rack_high_availability": True}, expect_rc=2)
    assert "rack_high_availability: cannot change after install (the number of availability zones is fixed at" \
           " install): the rack has False, asked True" in proc.stdout + proc.stderr
    assert "instance_count" not in proc.stdout + proc.stderr
    runner.playbook(playbook("create_app.yml"), {"rack": "uxref", "app": "web"})
    proc = runner.playbook(playbook("uninstall_rack.yml"), {"rack": "uxref"}, expect_rc=2)
    out = proc.stdout + proc.stderr
    assert "rack uxref has apps (web): delete them first, or set rack_force: true" in out
    assert "set force" not in out


def test_a_failed_run_leaves_the_rack_failed_with_its_step_and_error(runner, local_aws, aws_proxy):
    """Finding 6: a run that fails after its first write leaves the rack reading `failed`, with the
    step and the error, in racks.yml and rack_status.yml (not `installing` until the status
    expiry); the next run that finishes makes it `running` again."""
    aws_proxy.configure(fault_rate=1.0, faults=["500"], match=lambda r: r.name == "elasticloadbalancing:CreateLoadBalancer")
    proc = Runner(local_aws, proxy=aws_proxy).playbook(
        playbook("install_rack.yml"), {"rack": "uxfail", "rack_high_availability": False, "rack_instance_count": 1,
                                       "rack_wait_timeout": 20}, expect_rc=2)
    assert "create_load_balancer failed with InternalError" in proc.stdout, proc.stdout[-3000:]
    racks = shown_msg(runner.playbook(playbook("racks.yml")).stdout, "Show racks")
    # NAME STATUS VERSION: the version of the collection that wrote the failed record
    assert any(re.match(r"^local/uxfail\s+failed\s+%s$" % re.escape(COLLECTION_VERSION), line.strip())
               for line in racks), racks
    status = runner.playbook(playbook("rack_status.yml"), {"rack": "uxfail"}).stdout
    assert re.search(r'"Status\s+failed', status), status
    assert "creating load balancer convox-uxfail" in status, status
    proc = runner.playbook(playbook("install_rack.yml"), {"rack": "uxfail"})
    assert SUMMARY.match(shown_msg(proc.stdout, "convox.rack.rack : Show what was done")[0])["status"] == "running"
    racks = shown_msg(runner.playbook(playbook("racks.yml")).stdout, "Show racks")
    assert any(re.match(r"^local/uxfail\s+running\s+%s$" % re.escape(COLLECTION_VERSION), line.strip())
               for line in racks), racks


def quoted_lines(block):
    """The quoted lines of a ```text block of the docs (the lines of a msg), "..." left out."""
    return [line.strip().rstrip(",")[1:-1].strip() for line in block.splitlines()
            if line.strip().startswith('"') and not line.strip().startswith('"msg"')]


def text_blocks(path, after):
    """The ```text blocks of a document that follow the first line containing `after`."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        doc = f.read()
    doc = doc[doc.index(after):]
    return re.findall(r"```text\n(.*?)```", doc, re.S)


def test_the_readme_and_playbooks_md_show_what_a_user_sees(runner):
    """Finding 11 (in part): the install output and the status shown in README.md and
    docs/playbooks.md, line by line, as a real install of rack production on the local AWS prints
    them (the lines the docs trim with "..." aside)."""
    install = runner.playbook(playbook("install_rack.yml"), {"rack": "production"}).stdout
    status = runner.playbook(playbook("rack_status.yml"), {"rack": "production"}).stdout
    real = set(shown_msg(install, "convox.rack.rack : Show what was done")) | set(shown_msg(status, "Show rack production"))
    readme = text_blocks("README.md", "It ends like this")[0]
    summary, _racks, rack = readme.split("TASK [")[1:4]
    for line in quoted_lines(summary) + quoted_lines(rack):
        assert line in real, (line, sorted(real))
    playbooks_md = text_blocks("docs/playbooks.md", "## install_rack.yml")[0]
    for line in quoted_lines(playbooks_md):
        if line.endswith("..."):  # trimmed by the docs: what is shown starts a real line
            assert any(r.startswith(line[:-3]) for r in real), (line, sorted(real))
        else:
            assert line in real, (line, sorted(real))


def test_progress_counts_what_aws_has_made_so_far(realistic_aws):
    """Issue 13: the waits say how far AWS is (`waiting for NAT gateways 1/2 available`, `instances 1/2 in
    service`), read from a real run under the realism mode (scripts/realism.py at 1/20 of AWS's time: NAT
    gateways pending 6 s, instances pending 12 s, the load balancer provisioning 9 s)."""
    realistic_aws.reset()
    realistic_aws.realism(scale=0.05, timings={"profile_propagation": 0, "s3_consistency": 0, "ec2_consistency": 0,
                                               "instance_pending": 240})
    try:
        proc = Runner(realistic_aws).playbook(playbook("install_rack.yml"), {
            "rack": "uxcount", "rack_private": True, "rack_high_availability": False, "rack_instance_count": 2,
            "rack_poll_interval": 1})
    finally:
        realistic_aws.realism(enabled=False)
    steps = [m["step"] for m in progress_lines(proc.stdout)]
    nat = [re.match(r"waiting for NAT gateways (\d)/2 available \((nat-\S+(, nat-\S+)?) pending\)$", s) for s in steps]
    nat = [m for m in nat if m]
    assert nat, steps
    assert all(len(m.group(2).split(", ")) == 2 - int(m.group(1)) for m in nat), steps   # the pending ones named
    instances = [re.match(r"waiting for (?:instances (\d)/2 in service|the load balancer to be active \(\w+; "
                          r"instances 2/2 in service\))$", s) for s in steps]
    assert any(instances), "\n".join(steps)
    assert not any(re.search(r"NAT gateways nat-\S+, nat-\S+ to be available", s) for s in steps)
    summary = shown_msg(proc.stdout, "convox.rack.rack : Show what was done")
    assert SUMMARY.match(summary[0])["status"] == "running", summary


def test_app_errors_name_the_playbook_variables(local_aws, aws_proxy):
    """Finding 8, for the app role as for the rack role: from create_app.yml and delete_app.yml, the
    messages name the variables typed (`app`, `app_log_retention`), not the module's options (`name`,
    `log_retention`), in the [ERROR] line as in the result; before any AWS call for bad input."""
    runner = Runner(local_aws, proxy=aws_proxy)
    bad_name = runner.playbook(playbook("create_app.yml"), {"rack": "uxapp", "app": "Bad_Name"}, expect_rc=2)
    assert '"msg": "app: must be lowercase letters' in bad_name.stdout
    # nowhere the option's name: not in the result, nor in the [ERROR] line of ansible-core 2.19 and later
    assert '"variable": "app"' in bad_name.stdout and "name: must be" not in bad_name.stderr + bad_name.stdout
    retention = runner.playbook(playbook("create_app.yml"), {"rack": "uxapp", "app": "web", "app_log_retention": 8},
                                expect_rc=2)
    assert '"msg": "app_log_retention: must be one of CloudWatch Logs\' retention periods' in retention.stdout
    assert '"variable": "app_log_retention"' in retention.stdout
    assert aws_proxy.summary()["requests"] == 0
    gone = runner.playbook(playbook("delete_app.yml"), {"rack": "uxapp", "app": "-web"}, expect_rc=2)
    assert '"msg": "app: must be lowercase letters' in gone.stdout
    assert aws_proxy.summary()["requests"] == 0
    missing = runner.playbook(playbook("create_app.yml"), {"rack": "uxapp-none", "app": "web"}, expect_rc=2)
    assert '"msg": "rack: no rack named uxapp-none in us-east-1' in missing.stdout


def test_a_wrong_type_is_one_line_naming_the_variable_and_the_type(local_aws, aws_proxy):
    """Finding 8: `-e rack_instance_count=three` (and an app's equivalent) fails in one line naming the
    variable and the type it takes, before any AWS call, not with Ansible's dump of the role's whole
    argument specification (argument_spec_data)."""
    runner = Runner(local_aws, proxy=aws_proxy)
    cases = [
        ("install_rack.yml", {"rack": "uxtype", "rack_instance_count": "three"},
         "rack_instance_count: must be an integer (a whole number, such as 3) (got 'three'). Nothing was changed."),
        ("update_rack.yml", {"rack": "uxtype", "rack_private": "maybe", "rack_instance_count": "2"},
         "rack_private: must be a boolean (true or false) (got 'maybe'). Nothing was changed."),
        ("uninstall_rack.yml", {"rack": "uxtype", "rack_purge_data": "please"},
         "rack_purge_data: must be a boolean (true or false) (got 'please'). Nothing was changed."),
        ("create_app.yml", {"rack": "uxtype", "app": "web", "app_log_retention": "week"},
         "app_log_retention: must be an integer (a whole number, such as 3) (got 'week'). Nothing was changed."),
        ("delete_app.yml", {"rack": "uxtype", "app": "web", "app_purge_data": "yes please"},
         "app_purge_data: must be a boolean (true or false) (got 'yes please'). Nothing was changed."),
    ]
    for name, extra_vars, message in cases:
        proc = runner.playbook(playbook(name), extra_vars, expect_rc=2)
        out = proc.stdout + proc.stderr
        assert '"msg": "%s"' % message in proc.stdout, (name, out)
        assert "argument_spec_data" not in out and "Validating arguments" not in out, (name, out)
    assert aws_proxy.summary()["requests"] == 0


DEPRECATED_IMPORTS = re.compile(r"^\s*(from|import) ansible\.module_utils\.(_text|six|common\._collections_compat)\b", re.M)


def test_no_deprecation_warning(runner, tmp_path):
    """Finding 12: on ansible-core 2.21 every module run printed two deprecation warnings (amazon.aws 10's
    imports of ansible.module_utils._text, an error from 2.24). The collection's own code imports no
    deprecated API, and its playbooks, modules and inventory print no deprecation warning at all: amazon.aws
    comes from an `ansible` bundle whose amazon.aws (11.3.0 and later) no longer imports it (Makefile,
    ANSIBLE_BUNDLE_VERSION). The ansible-core matrix (scripts/matrix.py) runs this on 2.17, 2.19 and 2.21."""
    own = [os.path.relpath(os.path.join(d, f), ROOT) for d, _dirs, files in os.walk(os.path.join(ROOT, "plugins"))
           for f in files if f.endswith(".py")]
    importing = [path for path in own if DEPRECATED_IMPORTS.search(open(os.path.join(ROOT, path), encoding="utf-8").read())]
    assert importing == []
    env = {"ANSIBLE_DEPRECATION_WARNINGS": "True"}
    inventory = tmp_path / "racks.convox.yml"
    inventory.write_text("plugin: convox.rack.racks\nregions: [us-east-1]\n")
    outputs = [
        runner.playbook(playbook("install_rack.yml"), {"rack": "uxdeprecated"}, check=True, env=env),
        runner.playbook(playbook("racks.yml"), env=env),
        runner.playbook(playbook("apps.yml"), {"rack": "uxdeprecated"}, env=env, expect_rc=None),
        subprocess.run([os.path.join(VENV_BIN, "ansible-inventory"), "-i", str(inventory), "--list"], cwd=ROOT,
                       env=dict(runner.env, **env), capture_output=True, text=True, timeout=300, check=False),
    ]
    for proc in outputs:
        out = proc.stdout + proc.stderr
        assert "DEPRECATION WARNING" not in out, out
