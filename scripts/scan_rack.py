#!/usr/bin/env python
"""Scan racks installed by this collection with Prowler, an independent AWS security scanner.

`make scan` builds Prowler in a venv of its own (.venv-scan, a pinned version from PyPI), then
runs this script: it starts a local AWS of its own on a free port (scripts/moto_server.py),
installs a private rack and a public rack, each with one app, through the real playbooks
(install_rack.yml, create_app.yml), runs the Prowler checks of CHECKS below (those the local AWS
answers as AWS would; OUT says why every other check of those services is left out), keeps the
findings on the racks' own resources (by their tags, names and VPC: not the account's defaults
such as the default VPC), and prints them with a summary line per rack:

    N FAIL, M PASS on rack scan-private

It exits 1 when a FAIL of a "rack" check remains that docs/security-scan-choices.json (shown in
docs/security.md) does not explain, as the user's choice (with the option that removes it) or as
what AWS requires of that resource (with AWS's own words and where they are); "advisory" checks
are printed, not judged.

    .venv/bin/python scripts/scan_rack.py [--cases private,public] [--output-dir DIR]
    .venv/bin/python scripts/scan_rack.py --findings DIR   # judge a kept run again, no install

Standard library and subprocess only: boto3 runs in the playbooks and in Prowler, not here.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PROWLER = os.path.join(ROOT, ".venv-scan", "bin", "prowler")
CHOICES = os.path.join(ROOT, "docs", "security-scan-choices.json")
REGION = "us-east-1"
APP = "web"
# The racks a scan installs: name, playbook variables.
CASES = {
    "private": ("scan-private", {"rack_private": True}),
    "public": ("scan-public", {"rack_private": False}),
}
FINDINGS_FILE = "scan.ocsf.json"
CONTEXT_FILE = "scan-context.json"

# --- which checks run, and why ------------------------------------------------------------------
# "rack": a check of a resource a rack makes (or AWS makes with it: its VPC's default security
# group and network ACL), answered by the local AWS from the same API fields as on AWS. A FAIL
# fails the scan unless docs/security-scan-choices.json names it as the user's choice or as what
# AWS requires.
# "advisory": runs and is printed, never fails the scan: a paid or operational add-on that is the
# account owner's decision, not a setting of how a rack is built (the reason says which).
_ANSWERED = "the local AWS answers it from the same API fields as AWS"
CHECKS = {
    # S3: the rack's bucket and each app's bucket
    "s3_bucket_default_encryption": ("rack", _ANSWERED),
    "s3_bucket_kms_encryption": ("rack", _ANSWERED),
    "s3_bucket_secure_transport_policy": ("rack", _ANSWERED),
    "s3_bucket_level_public_access_block": ("rack", _ANSWERED),
    "s3_bucket_acl_prohibited": ("rack", _ANSWERED),
    "s3_bucket_public_access": ("rack", _ANSWERED),
    "s3_bucket_public_list_acl": ("rack", _ANSWERED),
    "s3_bucket_public_write_acl": ("rack", _ANSWERED),
    "s3_bucket_policy_public_write_access": ("rack", _ANSWERED),
    "s3_bucket_cross_account_access": ("rack", _ANSWERED),
    "s3_bucket_object_versioning": ("rack", _ANSWERED),
    "s3_bucket_lifecycle_enabled": ("rack", _ANSWERED),
    "s3_bucket_server_access_logging_enabled": ("rack", _ANSWERED),
    "s3_bucket_shadow_resource_vulnerability": ("rack", _ANSWERED),
    "s3_bucket_cross_region_replication": (
        "advisory", "a copy in a second region: cost and data residency are the owner's call"),
    "s3_bucket_object_lock": (
        "advisory", "WORM retention; it would forbid deleting what uninstall with purge_data deletes"),
    "s3_bucket_event_notifications_enabled": ("advisory", "no consumer of bucket events in a rack"),
    "s3_bucket_no_mfa_delete": (
        "advisory", "only the root user with MFA can turn it on (S3 user guide, 'Configuring MFA delete')"),
    # CloudWatch Logs: the rack's and each app's log group
    "cloudwatch_log_group_kms_encryption_enabled": ("rack", _ANSWERED),
    "cloudwatch_log_group_not_publicly_accessible": ("rack", _ANSWERED),
    "cloudwatch_log_group_no_secrets_in_logs": ("rack", _ANSWERED),
    "cloudwatch_log_group_retention_policy_specific_days_enabled": ("rack", _ANSWERED),
    # VPC and EC2: the rack's network, security groups, launch template, instances, addresses
    "vpc_flow_logs_enabled": ("rack", _ANSWERED),
    "vpc_subnet_no_public_ip_by_default": ("rack", _ANSWERED),
    "vpc_subnet_separate_private_public": ("rack", _ANSWERED),
    "vpc_subnet_different_az": ("rack", _ANSWERED),
    "vpc_endpoint_for_ec2_enabled": (
        "advisory", "an interface endpoint per AZ, charged by the hour; the rack reaches EC2 through NAT or IGW"),
    "ec2_securitygroup_default_restrict_traffic": ("rack", _ANSWERED),
    "ec2_securitygroup_allow_ingress_from_internet_to_all_ports": ("rack", _ANSWERED),
    "ec2_securitygroup_allow_ingress_from_internet_to_any_port": ("rack", _ANSWERED),
    "ec2_securitygroup_allow_ingress_from_internet_to_any_port_from_ip": ("rack", _ANSWERED),
    "ec2_securitygroup_allow_ingress_from_internet_to_high_risk_tcp_ports": ("rack", _ANSWERED),
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22": ("rack", _ANSWERED),
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_3389": ("rack", _ANSWERED),
    "ec2_securitygroup_allow_wide_open_public_ipv4": ("rack", _ANSWERED),
    "ec2_securitygroup_from_launch_wizard": ("rack", _ANSWERED),
    "ec2_securitygroup_with_many_ingress_egress_rules": ("rack", _ANSWERED),
    "ec2_securitygroup_not_used": ("rack", _ANSWERED),
    "ec2_networkacl_allow_ingress_any_port": ("rack", _ANSWERED),
    "ec2_networkacl_allow_ingress_tcp_port_22": ("rack", _ANSWERED),
    "ec2_networkacl_allow_ingress_tcp_port_3389": ("rack", _ANSWERED),
    "ec2_launch_template_imdsv2_required": ("rack", _ANSWERED),
    "ec2_launch_template_no_public_ip": ("rack", _ANSWERED),
    "ec2_launch_template_no_secrets": ("rack", _ANSWERED),
    "ec2_instance_public_ip": ("rack", _ANSWERED),
    "ec2_instance_secrets_user_data": ("rack", _ANSWERED),
    "ec2_instance_uses_single_eni": ("rack", _ANSWERED),
    "ec2_instance_port_ssh_exposed_to_internet": ("rack", _ANSWERED),
    "ec2_instance_port_rdp_exposed_to_internet": ("rack", _ANSWERED),
    "ec2_elastic_ip_unassigned": ("rack", _ANSWERED),
    "ec2_instance_detailed_monitoring_enabled": (
        "advisory", "1-minute EC2 metrics are charged; Container Insights (on by default) watches the cluster"),
    # Auto Scaling
    "autoscaling_group_using_ec2_launch_template": ("rack", _ANSWERED),
    "autoscaling_group_multiple_az": ("rack", _ANSWERED),
    "autoscaling_group_multiple_instance_types": (
        "advisory", "resilience, not security: a rack runs one instance type (rack_instance_type)"),
    "autoscaling_group_capacity_rebalance_enabled": ("advisory", "for Spot capacity; resilience, not security"),
    "autoscaling_group_elb_health_check_enabled": (
        "advisory", "the group is ECS capacity: its instances are not load balancer targets, tasks are"),
    # Elastic Load Balancing: the router
    "elbv2_logging_enabled": ("rack", _ANSWERED),
    "elbv2_deletion_protection": ("rack", _ANSWERED),
    "elbv2_ssl_listeners": ("rack", _ANSWERED),
    "elbv2_insecure_ssl_ciphers": ("rack", _ANSWERED),
    "elbv2_alb_drop_invalid_header_fields_enabled": ("rack", _ANSWERED),
    "elbv2_desync_mitigation_mode": ("rack", _ANSWERED),
    "elbv2_internet_facing": ("rack", _ANSWERED),
    "elbv2_is_in_multiple_az": ("rack", _ANSWERED),
    "elbv2_listeners_underneath": ("rack", _ANSWERED),
    "elbv2_cross_zone_load_balancing_enabled": ("rack", _ANSWERED),
    "elbv2_listener_fips_tls_enabled": (
        "advisory", "a FIPS TLS policy is a compliance regime's requirement (FedRAMP), a choice of TLS policy"),
    "elbv2_listener_pqc_tls_enabled": ("advisory", "a post-quantum TLS policy: a choice of TLS policy"),
    "elbv2_waf_acl_attached": (
        "advisory", "AWS WAF is a paid service whose rules depend on the apps; the collection manages none"),
    # ECS, ECR
    "ecs_cluster_container_insights_enabled": ("rack", _ANSWERED),
    "ecr_repositories_not_publicly_accessible": ("rack", _ANSWERED),
    "ecr_repositories_scan_images_on_push_enabled": ("rack", _ANSWERED),
    "ecr_repositories_tag_immutability": ("rack", _ANSWERED),
    "ecr_repositories_lifecycle_policy_enabled": ("advisory", "storage hygiene (old images), not security"),
    # IAM: the instance role and its inline policy
    "iam_role_cross_service_confused_deputy_prevention": ("rack", _ANSWERED),
    "iam_role_service_trust_restricts_source_to_account": ("rack", _ANSWERED),
    "iam_role_administratoraccess_policy": ("rack", _ANSWERED),
    "iam_role_cross_account_readonlyaccess_policy": ("rack", _ANSWERED),
    "iam_inline_policy_allows_privilege_escalation": ("rack", _ANSWERED),
    "iam_inline_policy_no_administrative_privileges": ("rack", _ANSWERED),
    "iam_inline_policy_no_full_access_to_cloudtrail": ("rack", _ANSWERED),
    "iam_inline_policy_no_full_access_to_kms": ("rack", _ANSWERED),
    "iam_inline_policy_no_wildcard_marketplace_subscribe": ("rack", _ANSWERED),
    # KMS: the rack's key
    "kms_cmk_rotation_enabled": ("rack", _ANSWERED),
    "kms_key_not_publicly_accessible": ("rack", _ANSWERED),
    "kms_cmk_not_deleted_unintentionally": ("rack", _ANSWERED),
    "kms_cmk_not_multi_region": ("rack", _ANSWERED),
    "kms_cmk_are_used": ("rack", _ANSWERED),
}

# Every other check of the services above, not run: (pattern, why). First match wins.
_MOTO = "the local AWS cannot answer it as AWS would: "
OUT = [
    ("ec2_instance_imdsv2_enabled", _MOTO + "instances an Auto Scaling group launches do not get the launch "
     "template's MetadataOptions (measured: HttpTokens optional); ec2_launch_template_imdsv2_required checks it"),
    ("ec2_instance_profile_attached", _MOTO + "the launch template's instance profile is not applied to the "
     "instances (measured); the template names it"),
    ("ec2_instance_internet_facing_with_instance_profile", _MOTO + "no instance profile on the instances, as above"),
    ("ec2_ebs_volume_encryption", _MOTO + "each instance gets an extra unencrypted /dev/sda1 besides the template's "
     "encrypted /dev/xvda root volume (the AMI's root device, which AWS replaces; measured)"),
    ("ec2_instance_managed_by_ssm", _MOTO + "no SSM agent registers; and it needs SSM rights the instance role "
     "leaves out on purpose (docs/security.md, the instance role)"),
    ("ec2_instance_with_outdated_ami", _MOTO + "its AMIs are fixtures without AWS's deprecation dates"),
    ("ec2_instance_paravirtual_type", _MOTO + "its AMIs are fixtures"),
    ("ec2_instance_older_than_specific_days", "an instance installed seconds ago always passes"),
    ("ec2_instance_stopped_older_than_specific_days", "an instance installed seconds ago always passes"),
    ("ec2_instance_port_*_exposed_to_internet", "databases and other services a rack does not run; the two "
     "remote-access ports (SSH, RDP) and every security-group check run"),
    ("ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_*", "ports of databases and services a rack does "
     "not run; ..._to_any_port, ..._to_all_ports and ..._high_risk_tcp_ports cover every port"),
    ("ec2_ebs_volume_protected_by_backup_plan", "instances are disposable (the group replaces them): nothing "
     "to back up on their volumes"),
    ("ec2_ebs_volume_snapshots_exists", "instances are disposable: nothing to snapshot"),
    ("ec2_elastic_ip_shodan", "needs a Shodan API key and the Internet"),
    ("ec2_ebs_default_encryption", "an account setting, not a rack's"),
    ("ec2_ebs_snapshot_account_block_public_access", "an account setting, not a rack's"),
    ("ec2_ebs_public_snapshot", "a rack makes no snapshot (the local AWS lists its fixtures')"),
    ("ec2_ebs_snapshots_encrypted", "a rack makes no snapshot (the local AWS lists its fixtures')"),
    ("ec2_ami_*", "a rack makes no AMI; account settings"),
    ("ec2_instance_account_imdsv2_enabled", "an account default, not a rack's (its template requires IMDSv2)"),
    ("ec2_networkacl_unused", "a rack's network ACLs are its VPC's default, always associated"),
    ("ec2_client_vpn_*", "a rack makes no Client VPN"),
    ("ec2_transitgateway_*", "a rack makes no transit gateway"),
    ("ec2_confidential_workload_*", "a rack runs no Nitro Enclaves"),
    ("vpc_different_regions", "an account's layout, not a rack's"),
    ("vpc_endpoint_*", "a rack makes no VPC endpoint"),
    ("vpc_peering_*", "a rack makes no peering"),
    ("vpc_vpn_*", "a rack makes no VPN"),
    ("s3_account_level_public_access_blocks", "an account setting (each rack bucket has its own block)"),
    ("s3_access_point_public_access_block", "a rack makes no access point"),
    ("s3_multi_region_access_point_public_access_block", "a rack makes no access point"),
    ("s3_bucket_object_public", "reads every object's ACL; the buckets enforce BucketOwnerEnforced (no ACLs), "
     "checked by s3_bucket_acl_prohibited"),
    ("cloudwatch_log_group_agentcore_data_protection_policy_enabled", "for Bedrock AgentCore log groups"),
    ("cloudwatch_cross_account_sharing_disabled", "an account setting"),
    ("cloudwatch_alarm_*", "a rack makes no alarm"),
    ("cloudwatch_changes_to_*", "account alarms on CloudTrail events, not a rack's"),
    ("cloudwatch_log_metric_filter_*", "account alarms on CloudTrail events, not a rack's"),
    ("autoscaling_*launch_configuration*", "a rack uses a launch template, no launch configuration"),
    ("elbv2_nlb_tls_termination_enabled", "the router is an ALB"),
    ("ecs_service_*", "the collection makes no ECS service (apps deploy their own)"),
    ("ecs_task_*", "the collection makes no task definition or task set"),
    ("ecr_registry_*", "an account's registry settings, not a rack's"),
    ("ecr_repositories_scan_vulnerabilities_in_latest_image", "an app repository is empty until a build"),
    ("ecr_repository_image_no_secrets", "an app repository is empty until a build"),
    ("kms_key_enclave_*", "Nitro Enclaves attestation: a rack has none"),
    ("iam_*", "the account's users, root, password policy and managed policies: a rack makes only its instance "
     "role and inline policy, checked above"),
]


def classify(check):
    """("rack"|"advisory", why) for a check that runs, ("out", why) for one left out."""
    if check in CHECKS:
        return CHECKS[check]
    for pattern, why in OUT:
        if fnmatch.fnmatchcase(check, pattern):
            return ("out", why)
    return ("unknown", "not classified: add it to CHECKS or OUT in scripts/scan_rack.py")


# --- which findings are a rack's -----------------------------------------------------------------

def resource_tags(resource):
    """A resource's tags as Prowler reports them: its labels ("Key:Value") and its metadata's tag list
    (Key/Value, key/value or TagKey/TagValue, by service)."""
    tags = {}
    for label in resource.get("labels") or []:
        key, sep, value = label.partition(":")
        if sep:
            tags[key] = value
    metadata = (resource.get("data") or {}).get("metadata") or {}
    for tag in metadata.get("tags") or []:
        if not isinstance(tag, dict):
            continue
        for key_name, value_name in (("Key", "Value"), ("key", "value"), ("TagKey", "TagValue")):
            if key_name in tag:
                tags[tag[key_name]] = tag.get(value_name, "")
    return tags


def _metadata(resource):
    return (resource.get("data") or {}).get("metadata") or {}


def tagged_rack(resource, racks):
    """The rack whose ownership tags (System=convox, Rack=<rack>) the resource carries, else None."""
    tags = resource_tags(resource)
    if tags.get("System") == "convox" and tags.get("Rack") in racks:
        return tags["Rack"]
    return None


def rack_context(findings, racks):
    """What the tagged resources tell of each rack: their ids (uids) and the rack's VPC ids."""
    context = {rack: {"uids": [], "vpc_ids": [], "network_acl_ids": []} for rack in racks}
    for finding in findings:
        for resource in finding.get("resources", []):
            rack = tagged_rack(resource, racks)
            if rack is None:
                continue
            ctx = context[rack]
            if resource["uid"] not in ctx["uids"]:
                ctx["uids"].append(resource["uid"])
            vpc = _metadata(resource).get("vpc_id") or (
                resource["uid"].rsplit("/", 1)[-1] if ":vpc/vpc-" in resource["uid"] else None)
            if vpc and vpc not in ctx["vpc_ids"]:
                ctx["vpc_ids"].append(vpc)
    return context


def owner(resource, context, region=REGION):
    """The rack a resource belongs to, or None (the account's own, the default VPC's, another's):
    tagged as the rack's; the same resource as a tagged one (an inline policy's uid is its role's);
    named as the rack names it (log groups /convox/<rack> and /convox/<rack>/..., the instance role);
    in the rack's VPC (its default security group); or its VPC's network ACL."""
    racks = list(context)
    rack = tagged_rack(resource, racks)
    if rack:
        return rack
    uid, name = resource.get("uid", ""), resource.get("name", "")
    metadata = _metadata(resource)
    for rack, ctx in context.items():
        if uid in ctx["uids"]:
            return rack
        if name == "/convox/%s" % rack or name.startswith("/convox/%s/" % rack):
            return rack
        if uid.endswith(":role/convox/convox-%s-%s-instance" % (rack, region)):
            return rack
        if metadata.get("vpc_id") and metadata["vpc_id"] in ctx["vpc_ids"]:
            return rack
        if metadata.get("id") and metadata["id"] in ctx["network_acl_ids"]:
            return rack
    return None


def rack_findings(findings, context):
    """{rack: [row]} of the findings on each rack's resources; a row is a dict of check, status,
    resource (name or id), uid, kind, detail."""
    rows = {rack: [] for rack in context}
    for finding in findings:
        check = finding["metadata"]["event_code"]
        for resource in finding.get("resources", []):
            rack = owner(resource, context)
            if rack is None:
                continue
            rows[rack].append({
                "check": check, "status": finding["status_code"], "kind": classify(check)[0],
                "resource": resource.get("name") or resource["uid"], "uid": resource["uid"],
                "detail": finding.get("status_detail", "")})
    for rack_rows in rows.values():
        rack_rows.sort(key=lambda r: (r["status"] != "FAIL", r["kind"] != "rack", r["check"], r["resource"]))
    return rows


# --- the verdict -----------------------------------------------------------------------------------

def load_choices(path=CHOICES):
    """The explanations of docs/security-scan-choices.json: the user's choices (each with the option
    that removes the FAIL) and what AWS requires (each with its source, marked `"aws": true`)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return data["choices"] + [dict(entry, aws=True) for entry in data.get("required_by_aws", [])]


def user_choice(row, rack, case, choices):
    """The entry of docs/security-scan-choices.json that explains this FAIL (the user's choice, or
    what AWS requires: `"aws": true`), or None."""
    for choice in choices:
        if choice["check"] != row["check"] or case not in choice["cases"]:
            continue
        if fnmatch.fnmatchcase(row["resource"], choice["resource"].format(rack=rack)):
            return choice
    return None


def verdict(rows, rack, case, choices):
    """(fails, passes, explained, unexplained) for the "rack" checks of one rack."""
    gated = [r for r in rows if r["kind"] == "rack"]
    fails = [r for r in gated if r["status"] == "FAIL"]
    passes = [r for r in gated if r["status"] == "PASS"]
    explained = [r for r in fails if user_choice(r, rack, case, choices)]
    unexplained = [r for r in fails if not user_choice(r, rack, case, choices)]
    return fails, passes, explained, unexplained


def _note(choice):
    if choice is None:
        return "  <- not explained"
    if choice.get("aws"):
        return "  <- required by AWS: %s" % choice["short"]
    return "  <- user's choice: %s" % choice["option"]


def report(rows, rack, case, choices):
    """The lines printed for one rack, and whether it passed."""
    fails, passes, explained, unexplained = verdict(rows, rack, case, choices)
    lines = ["", "rack %s (%s, one app)" % (rack, case),
             "  %-6s %-9s %-58s %s" % ("STATUS", "KIND", "CHECK", "RESOURCE")]
    for row in rows:
        if row["status"] not in ("FAIL", "PASS"):
            continue
        note = ""
        if row["status"] == "FAIL" and row["kind"] == "rack":
            note = _note(user_choice(row, rack, case, choices))
        lines.append("  %-6s %-9s %-58s %s%s" % (row["status"], row["kind"], row["check"], row["resource"], note))
    advisory = [r for r in rows if r["kind"] == "advisory" and r["status"] == "FAIL"]
    lines.append("%d FAIL, %d PASS on rack %s" % (len(fails), len(passes), rack))
    by_aws = [r for r in explained if user_choice(r, rack, case, choices).get("aws")]
    lines.append("  of the FAIL: %d the user's choice, %d required by AWS (docs/security-scan-choices.json), "
                 "%d not explained; %d advisory FAIL (not judged)"
                 % (len(explained) - len(by_aws), len(by_aws), len(unexplained), len(advisory)))
    return lines, not unexplained


# --- running it ------------------------------------------------------------------------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_local_aws(workdir):
    port = _free_port()
    log = open(os.path.join(workdir, "moto.log"), "w", encoding="utf-8")  # pylint: disable=consider-using-with
    proc = subprocess.Popen([os.path.join(VENV_BIN, "python"), os.path.join(ROOT, "scripts", "moto_server.py"),
                             "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    for _attempt in range(300):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/moto-api/data.json" % port, timeout=1):
                return proc, "http://127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("the local AWS did not start (see %s)" % log.name)


def aws_env(endpoint):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_NOCOLOR="1")
    return env


def run(argv, env, what):
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit("%s failed (rc %d):\n%s\n%s" % (what, proc.returncode, proc.stdout[-4000:],
                                                         proc.stderr[-2000:]))
    return proc.stdout


def playbook(env, name, extra):
    run([os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(ROOT, "playbooks", name), "-e", json.dumps(extra)],
        env, name)


def module(env, name, args):
    """An ad-hoc module run on localhost; its result."""
    out = run([os.path.join(VENV_BIN, "ansible"), "localhost", "-c", "local", "-m", name, "-a", json.dumps(args),
               "-e", "ansible_python_interpreter=%s" % os.path.join(VENV_BIN, "python")], env, name)
    return json.loads(out[out.index("{"):])


def network_acls(env, vpc_ids):
    """The network ACL ids of these VPCs, each confirmed to be in one of them (not trusting the filter)."""
    if not vpc_ids:
        return []
    result = module(env, "amazon.aws.ec2_vpc_nacl_info", {"filters": {"vpc-id": vpc_ids}})
    return [n["nacl_id"] for n in result.get("nacls", []) if n.get("vpc_id") in vpc_ids]


def prowler(env, outdir):
    """Prowler's checks of CHECKS on the local AWS. --scan-unused-services: without it Prowler skips a
    VPC's default security group when no network interface uses it and subnets without one, which on
    the local AWS depends on its quirks (it gives NAT gateways' interfaces the default security group,
    which AWS does not; it puts every instance of a group in its first subnet): with it, every subnet
    and default security group of a rack is checked, on AWS as here."""
    version = run([PROWLER, "--version"], env, "prowler --version").strip()
    checks = sorted(CHECKS)
    run([PROWLER, "aws", "--region", REGION, "--check", *checks, "--output-formats", "json-ocsf",
         "--output-directory", outdir, "--output-filename", "scan", "--no-banner", "--no-color",
         "--ignore-exit-code-3", "--scan-unused-services"], env, "prowler")
    return version


def scan(cases, outdir):
    """Install the racks, run Prowler, keep its findings and the racks' context in outdir."""
    local, endpoint = start_local_aws(outdir)
    env = aws_env(endpoint)
    timings = {}
    try:
        clock = time.monotonic()
        for case in cases:
            rack, variables = CASES[case]
            playbook(env, "install_rack.yml", dict(variables, rack=rack))
            playbook(env, "create_app.yml", {"rack": rack, "app": APP})
        timings["install"] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()
        version = prowler(env, outdir)
        timings["prowler"] = round(time.monotonic() - clock, 1)
        findings = load_findings(outdir)
        context = rack_context(findings, [CASES[c][0] for c in cases])
        for ctx in context.values():
            ctx["network_acl_ids"] = network_acls(env, ctx["vpc_ids"])
    finally:
        local.terminate()
        local.wait(timeout=30)
    with open(os.path.join(outdir, CONTEXT_FILE), "w", encoding="utf-8") as f:
        json.dump({"prowler": version, "cases": {c: CASES[c][0] for c in cases}, "racks": context,
                   "timings": timings}, f, indent=1)
    return timings


def load_findings(outdir):
    """Prowler's findings kept in outdir (scan.ocsf.json, or scan.ocsf.json.gz as tests keep them)."""
    path = os.path.join(outdir, FINDINGS_FILE)
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz", "rt", encoding="utf-8") as f:
            return json.load(f)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def judge(outdir, choices):
    """Print the table of each rack of a run kept in outdir; True when no FAIL is left unexplained."""
    with open(os.path.join(outdir, CONTEXT_FILE), encoding="utf-8") as f:
        saved = json.load(f)
    rows = rack_findings(load_findings(outdir), saved["racks"])
    print("%s, %d checks (%d judged, %d advisory); findings on the racks' resources only"
          % (saved["prowler"], len(CHECKS), sum(1 for kind, _why in CHECKS.values() if kind == "rack"),
             sum(1 for kind, _why in CHECKS.values() if kind == "advisory")))
    ok = True
    for case, rack in saved["cases"].items():
        lines, passed = report(rows[rack], rack, case, choices)
        print("\n".join(lines))
        ok = ok and passed
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, of %s" % ", ".join(CASES))
    parser.add_argument("--private", dest="cases", action="store_const", const="private", help="the private rack only")
    parser.add_argument("--public", dest="cases", action="store_const", const="public", help="the public rack only")
    parser.add_argument("--output-dir", help="keep Prowler's findings and the racks' context here")
    parser.add_argument("--findings", help="judge the run kept in this directory again (no install, no Prowler)")
    args = parser.parse_args(argv)
    choices = load_choices()
    if args.findings:
        return 0 if judge(args.findings, choices) else 1
    cases = args.cases.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error("unknown case(s) %s: choose among %s" % (", ".join(unknown), ", ".join(CASES)))
    if not os.access(PROWLER, os.X_OK):
        parser.error("%s not found: `make scan` builds it" % PROWLER)
    outdir = args.output_dir or tempfile.mkdtemp(prefix="scan-rack-")
    os.makedirs(outdir, exist_ok=True)
    timings = scan(cases, outdir)
    ok = judge(outdir, choices)
    print("\ninstall %.0fs, prowler %.0fs; findings kept in %s" % (timings["install"], timings["prowler"], outdir))
    print("scan: %s" % ("no unexplained FAIL" if ok else "FAIL explained neither as the user's choice nor as what AWS requires (exit 1)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
