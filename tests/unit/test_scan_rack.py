"""`make scan`'s machinery (scripts/scan_rack.py) without Prowler: its list of checks against the
checks Prowler lists, the filter that keeps the findings on a rack's own resources and the verdict,
on the findings of a real run kept in tests/unit/data/scan/ (Prowler 5.46.0 on a private and a
public rack with one app each, installed by the playbooks on the local AWS; the run's own
scan-context.json beside them). Prowler itself is not installed here: `make scan` runs it."""

from __future__ import annotations

import importlib.util
import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "unit", "data", "scan")
_SPEC = importlib.util.spec_from_file_location("scan_rack", os.path.join(ROOT, "scripts", "scan_rack.py"))
scan_rack = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(scan_rack)

PRIVATE, PUBLIC = "scan-private", "scan-public"


@pytest.fixture(scope="module")
def run():
    """The kept run: (findings, context, {rack: rows})."""
    findings = scan_rack.load_findings(DATA)
    with open(os.path.join(DATA, scan_rack.CONTEXT_FILE), encoding="utf-8") as f:
        context = json.load(f)
    return findings, context, scan_rack.rack_findings(findings, context["racks"])


def prowler_checks():
    """Every check Prowler 5.46.0 has for the services of a rack (`prowler aws --list-checks-json
    --service s3 vpc elbv2 ecs iam cloudwatch kms autoscaling ecr ec2`, kept as it printed it)."""
    with open(os.path.join(DATA, "prowler-checks.json"), encoding="utf-8") as f:
        return json.load(f)["aws"]


def test_every_check_of_the_rack_services_is_run_or_left_out_with_a_reason():
    unknown = [c for c in prowler_checks() if scan_rack.classify(c)[0] == "unknown"]
    assert not unknown
    for check in prowler_checks():
        kind, why = scan_rack.classify(check)
        assert kind in ("rack", "advisory", "out") and len(why) > 10, check


def test_every_check_run_is_one_prowler_has():
    # A misspelt check would make Prowler stop with an error, or (worse) silently check less.
    assert set(scan_rack.CHECKS) <= set(prowler_checks())


def test_the_issue_checks_are_judged():
    issue_14 = ["s3_bucket_kms_encryption", "s3_bucket_server_access_logging_enabled",
                "cloudwatch_log_group_kms_encryption_enabled", "vpc_flow_logs_enabled", "elbv2_logging_enabled",
                "elbv2_deletion_protection", "elbv2_ssl_listeners", "ecs_cluster_container_insights_enabled",
                "iam_role_cross_service_confused_deputy_prevention"]
    assert all(scan_rack.CHECKS[c][0] == "rack" for c in issue_14)


def test_the_run_holds_findings_on_other_resources_than_the_racks(run):
    findings, context, rows = run
    on_racks = {r["uid"] for rack_rows in rows.values() for r in rack_rows}
    others = {res["uid"] for f in findings for res in f["resources"]} - on_racks
    # The default VPC's security group and network ACL, and account-wide findings, are in the
    # output, and left out: the filter has something to filter.
    default_sgs = [f["resources"][0] for f in findings
                   if f["metadata"]["event_code"] == "ec2_securitygroup_from_launch_wizard"
                   and scan_rack.owner(f["resources"][0], context["racks"]) is None]
    assert default_sgs and all(r["uid"] in others for r in default_sgs)
    assert any(uid.endswith(":123456789012:vpc") or uid.endswith(":log-group") or ":network-acl/" in uid
               for uid in others)


@pytest.mark.parametrize("rack", [PRIVATE, PUBLIC])
def test_a_racks_rows_are_its_resources_only(run, rack):
    findings, context, rows = run
    ctx = context["racks"][rack]
    other = PUBLIC if rack == PRIVATE else PRIVATE
    by_uid = {res["uid"]: res for f in findings for res in f["resources"]}
    for row in rows[rack]:
        resource = by_uid[row["uid"]]
        tags = scan_rack.resource_tags(resource)
        metadata = resource["data"].get("metadata", {})
        assert tags.get("Rack", rack) == rack and other not in row["uid"]
        assert (tags.get("Rack") == rack or row["uid"] in ctx["uids"] or row["resource"].startswith("/convox/%s" % rack)
                or "/convox-%s-" % rack in row["uid"] or metadata.get("vpc_id") in ctx["vpc_ids"]
                or metadata.get("id") in ctx["network_acl_ids"]), row


@pytest.mark.parametrize("rack", [PRIVATE, PUBLIC])
def test_each_kind_of_rack_resource_is_found(run, rack):
    _findings, context, rows = run
    names = {(r["check"], r["resource"]) for r in rows[rack]}
    checks = {r["check"] for r in rows[rack]}
    # tagged: bucket, load balancer, cluster, VPC, key (tags in metadata only), repository
    assert any(c == "s3_bucket_default_encryption" and n.startswith("convox-%s-" % rack) for c, n in names)
    assert ("elbv2_deletion_protection", "convox-%s" % rack) in names
    assert ("ecs_cluster_container_insights_enabled", "convox-%s" % rack) in names
    assert ("vpc_flow_logs_enabled", context["racks"][rack]["vpc_ids"][0]) in names
    assert "kms_cmk_rotation_enabled" in checks
    assert ("ecr_repositories_tag_immutability", "convox/%s/web" % rack) in names
    # by name: the rack's and the app's log groups; by its role's uid: the inline policy
    assert ("cloudwatch_log_group_kms_encryption_enabled", "/convox/%s" % rack) in names
    assert ("cloudwatch_log_group_kms_encryption_enabled", "/convox/%s/apps/web" % rack) in names
    assert ("iam_inline_policy_no_administrative_privileges",
            "convox-%s-us-east-1-instance/ecs-container-instance" % rack) in names
    # in its VPC: the VPC's default security group; its VPC's network ACL
    assert "ec2_securitygroup_default_restrict_traffic" in checks
    assert {r["uid"].rsplit("/", 1)[-1] for r in rows[rack] if r["check"] == "ec2_networkacl_allow_ingress_tcp_port_22"} \
        == set(context["racks"][rack]["network_acl_ids"])


def test_only_the_checks_of_the_list_are_judged(run):
    _findings, _context, rows = run
    for rack_rows in rows.values():
        assert {r["kind"] for r in rack_rows} <= {"rack", "advisory"}


def fails(rows):
    return sorted((r["check"], r["resource"]) for r in rows if r["status"] == "FAIL" and r["kind"] == "rack")


def test_a_choice_explains_a_fail_only_for_its_check_resource_and_case():
    row = {"check": "elbv2_ssl_listeners", "resource": "convox-prod", "status": "FAIL", "kind": "rack"}
    choices = [{"check": "elbv2_ssl_listeners", "resource": "convox-{rack}", "cases": ["private"],
                "choice": "no certificate", "option": "rack_certificate_arn"}]
    assert scan_rack.user_choice(row, "prod", "private", choices)
    assert not scan_rack.user_choice(row, "prod", "public", choices)
    assert not scan_rack.user_choice(dict(row, resource="convox-other"), "prod", "private", choices)
    assert not scan_rack.user_choice(dict(row, check="elbv2_logging_enabled"), "prod", "private", choices)


def test_what_aws_requires_explains_a_fail_and_the_output_says_so():
    """An entry of `required_by_aws` explains a FAIL as a user's choice does, for its check, resource
    and case only; the line names it `required by AWS` with its short reason, and the summary counts
    the two kinds apart."""
    rows = [{"check": "s3_bucket_kms_encryption", "resource": "convox-prod-0123456789ab", "status": "FAIL", "kind": "rack"},
            {"check": "s3_bucket_kms_encryption", "resource": "convox-prod-web-0123456789ab", "status": "FAIL",
             "kind": "rack"},
            {"check": "elbv2_ssl_listeners", "resource": "convox-prod", "status": "FAIL", "kind": "rack"}]
    choices = [{"check": "elbv2_ssl_listeners", "resource": "convox-{rack}", "cases": ["private"], "option": "rack_certificate_arn"},
               {"check": "s3_bucket_kms_encryption", "resource": "convox-{rack}-????????????", "cases": ["private"],
                "short": "load balancer access logs need SSE-S3", "aws": True}]
    assert scan_rack.user_choice(rows[0], "prod", "private", choices)["aws"]
    assert not scan_rack.user_choice(rows[0], "prod", "public", choices)
    # the app's bucket (another name) is not the rack's: still not explained
    assert not scan_rack.user_choice(rows[1], "prod", "private", choices)
    lines, ok = scan_rack.report(rows, "prod", "private", choices)
    text = "\n".join(lines)
    assert not ok and "convox-prod-web-0123456789ab  <- not explained" in text
    assert "convox-prod-0123456789ab  <- required by AWS: load balancer access logs need SSE-S3" in text
    assert "convox-prod  <- user's choice: rack_certificate_arn" in text
    assert "of the FAIL: 1 the user's choice, 1 required by AWS (docs/security-scan-choices.json), 1 not explained" in text
    assert scan_rack.report(rows[:1] + rows[2:], "prod", "private", choices)[1]


def test_the_shipped_explanations_load_with_their_kind():
    """docs/security-scan-choices.json: the user's choices name an option, what AWS requires names its
    source and is marked as such by load_choices."""
    loaded = scan_rack.load_choices()
    users = [c for c in loaded if not c.get("aws")]
    aws = [c for c in loaded if c.get("aws")]
    assert users and aws
    assert all("option" in c for c in users) and not any("option" in c for c in aws)
    assert all(set(c) >= {"check", "resource", "cases", "why", "short", "source"} for c in aws)
    assert all("https://docs.aws.amazon.com/" in c["source"] for c in aws)


def test_verdict_counts_judged_checks_and_fails_on_an_unexplained_fail(run):
    _findings, _context, rows = run
    choices = scan_rack.load_choices()
    failed, passed, explained, unexplained = scan_rack.verdict(rows[PRIVATE], PRIVATE, "private", choices)
    assert len(failed) == len(explained) + len(unexplained) and passed
    lines, ok = scan_rack.report(rows[PRIVATE], PRIVATE, "private", choices)
    assert "%d FAIL, %d PASS on rack %s" % (len(failed), len(passed), PRIVATE) in lines
    assert ok == (not unexplained)
    # Every FAIL named a choice: the rack passes; the same FAILs with no choice: it does not.
    everything = [{"check": c, "resource": n.replace(PRIVATE, "{rack}"), "cases": ["private"], "option": "x"}
                  for c, n in fails(rows[PRIVATE])]
    assert scan_rack.report(rows[PRIVATE], PRIVATE, "private", everything)[1]
    if failed:
        assert not scan_rack.report(rows[PRIVATE], PRIVATE, "private", [])[1]


def test_advisory_fails_are_printed_and_not_judged(run):
    _findings, _context, rows = run
    advisory = [r for r in rows[PRIVATE] if r["kind"] == "advisory" and r["status"] == "FAIL"]
    assert advisory
    judged = [r for r in rows[PRIVATE] if r["kind"] == "rack"]
    assert scan_rack.report(judged + advisory, PRIVATE, "private", [
        {"check": c, "resource": n.replace(PRIVATE, "{rack}"), "cases": ["private"], "option": "x"}
        for c, n in fails(rows[PRIVATE])])[1]
    text = "\n".join(scan_rack.report(rows[PRIVATE], PRIVATE, "private", [])[0])
    assert all(r["check"] in text for r in advisory)


def test_the_kept_run_judged_from_the_command_line(capsys):
    rc = scan_rack.main(["--findings", DATA])
    out = capsys.readouterr().out
    assert re.search(r"^\d+ FAIL, \d+ PASS on rack scan-private$", out, re.M)
    assert re.search(r"^\d+ FAIL, \d+ PASS on rack scan-public$", out, re.M)
    assert "Prowler 5.46.0" in out
    assert rc == (0 if "0 not explained" in out and out.count("0 not explained") == 2 else 1)


def test_every_choice_is_explained_in_security_md():
    with open(os.path.join(ROOT, "docs", "security.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("## What Prowler finds on a rack"):]
    for choice in scan_rack.load_choices():
        assert set(choice["cases"]) <= set(scan_rack.CASES)
        assert choice["check"] in scan_rack.CHECKS and scan_rack.CHECKS[choice["check"]][0] == "rack"
        assert "`%s`" % choice["check"] in section, choice
        if choice.get("aws"):
            # the table of what AWS requires names the short reason and the page it rests on
            url = re.search(r"https://docs\.aws\.amazon\.com/\S+?\.html", choice["source"]).group(0)
            assert choice["short"] in section and url in section, choice
        else:
            assert set(choice) >= {"check", "resource", "cases", "choice", "option"}
            assert "`%s" % choice["option"] in section, choice


def test_unknown_case_is_refused_before_anything_runs(capsys):
    with pytest.raises(SystemExit):
        scan_rack.main(["--cases", "private,hybrid"])
    assert "unknown case(s) hybrid" in capsys.readouterr().err


def test_the_kept_run_of_main(run):
    """The run docs/security.md shows (main at 0.2.0-dev0): what fails on the private rack, each explained
    (the certificate the user did not give; what AWS requires of the log bucket, which takes every log
    delivery, and of an EC2 role), and what the public rack adds, each a user's choice of a public rack.
    The findings answered since 0.1.0 (flow logs, the router's logs and deletion protection, the VPC's
    defaults, log retention, ECR tag immutability, the rack bucket's KMS key) pass."""
    _findings, _context, rows = run
    private = fails(rows[PRIVATE])
    assert {c for c, _n in private} == {
        "elbv2_ssl_listeners", "iam_role_cross_service_confused_deputy_prevention",
        "s3_bucket_cross_account_access", "s3_bucket_kms_encryption", "s3_bucket_server_access_logging_enabled"}
    choices = scan_rack.load_choices()
    for rack, case in ((PRIVATE, "private"), (PUBLIC, "public")):
        failed, passed, explained, unexplained = scan_rack.verdict(rows[rack], rack, case, choices)
        assert failed and not unexplained, unexplained
    answered = {"vpc_flow_logs_enabled", "elbv2_logging_enabled", "elbv2_deletion_protection",
                "ec2_securitygroup_default_restrict_traffic", "ec2_networkacl_allow_ingress_any_port",
                "cloudwatch_log_group_retention_policy_specific_days_enabled", "ecr_repositories_tag_immutability"}
    passing = {r["check"] for r in rows[PRIVATE] if r["status"] == "PASS"}
    assert answered <= passing
    public = {c for c, _n in fails(rows[PUBLIC])}
    assert public - {c for c, _n in private} == {
        "ec2_instance_public_ip", "vpc_subnet_no_public_ip_by_default", "vpc_subnet_separate_private_public"}
    added = [r for r in rows[PUBLIC] if r["status"] == "FAIL" and r["kind"] == "rack"
             and r["check"] in public - {c for c, _n in private}]
    assert added and all(scan_rack.user_choice(r, PUBLIC, "public", choices)["option"] == "rack_private" for r in added)
    # the rack's and the app's buckets are SSE-KMS and log their accesses: every S3 finding is the log bucket's
    assert {n for c, n in private if c.startswith("s3_")} == {"convox-scan-private-808d3004587e-logs"}
