# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rack service: what the rack module hands over to (glue.run_module), options validated.

present(): read what exists -> merge parameters with the record -> converge the parts in
dependency order (install.py) -> record parameters -> wait until usable -> replace outdated
instances. absent(): read what exists -> refuse while apps exist -> remove the parts (uninstall.py).
Both run under the rack's run lock (lock.py) from their first write on."""

from __future__ import annotations

import contextlib

from . import install, record, uninstall
from .aws import Progress
from .context import Run
from .errors import RackError, ValidationError
from .lock import LockedService, locked_first
from .naming import system_tags
from .params import (check_certificate_arn, check_immutable, check_kms_key, check_permissions_boundary, effective_parameters,
                     merge_user_tags, user_tag_limit)
from .plan import CHECK_MODE_ID, Plan
from .reading import read_rack
from .status import Outcome, decide, rack_dict
from .version import COLLECTION_VERSION

OUT_KEYS = ("vpc_id", "public_subnet_ids", "private_subnet_ids", "cluster_name", "autoscaling_group_name", "bucket",
            "log_bucket", "flow_log_id",
            "log_group", "load_balancer", "kms_key")


def serve(aws, region, params, check_mode):
    """The rack module's run: (result, warnings)."""
    service = RackService(aws, region, params, check_mode)
    result = service.absent() if params.get("state") == "absent" else service.present()
    return result, service.warnings


class RackService(LockedService):
    @property
    def progress(self):
        """Where the run notes its step (aws.Progress, through the run's deadline)."""
        return getattr(self.aws.deadline, "progress", None) or Progress()

    def _read(self):
        self.progress.note("reading rack %s" % self.params["name"])
        return read_rack(self.aws, self.params["name"], self.region, self.identity)

    def _locked(self, operation, run, removed=None):
        name = self.params["name"]
        return self.locked(name, "%s of rack %s" % (operation, name), run, removed)

    # -- present ---------------------------------------------------------------------------------------------
    def present(self):
        return self._locked("install or update", self._present)

    def _present(self, first_write):
        p = self.params
        state = self._read()
        if p.get("create") is False and not state.exists:
            # create: false converges only a rack that exists (update_rack.yml): before any write, and in check
            # mode too. A bucket kept by an uninstall (convox:status=uninstalled) is no rack.
            raise RackError(
                "could not find rack %s: install it with playbooks/install_rack.yml (or convox.rack.rack with"
                " create: true); looked in region %s of account %s, nothing was changed"
                % (p["name"], self.region, self.identity.account))
        # Before any write (and in check mode): a rack recorded by a newer release, or by none that can be told, is
        # refused unless allow_downgrade; an older one is upgraded, the record being the plan's entry for it.
        version = record.check_version(p["name"], state.tags if state.bucket is not None else None,
                                       p.get("allow_downgrade", False))
        previous_version = version if state.exists else None
        recorded = {} if state.recorded_status == "uninstalled" else state.recorded_parameters
        wanted, tags = self._wanted(state, recorded)
        plan = Plan(self.check_mode, progress=self.progress)
        run = Run(self.aws, self.region, self.identity, state.names, plan, state, wanted,
                  dict(system_tags(p["name"]), **tags), wait=p.get("wait", True))
        plan.before_first_write = locked_first(first_write, lambda: record.mark(run, install.first_status(run)))
        plan.take_lock = first_write
        with self._failed_marked(run):
            rolled = install.plan_all(run, previous_version)
            waited = run.wait and not self.check_mode
            if waited:
                install.wait_usable(run)
                if rolled:
                    install.replace(run, rolled)
        self.warnings.extend(run.warnings)
        status, _missing = decide(state, Outcome("install", plan.changed, self.check_mode, waited))
        diff = plan.diff(recorded, wanted, state.user_tags, tags)
        if previous_version != COLLECTION_VERSION and state.exists:
            diff["before"]["version"], diff["after"]["version"] = previous_version, COLLECTION_VERSION
        return {
            "changed": plan.changed,
            "rack": self._result_rack(run, tags, status),
            "plan": plan.changes,
            "aws_calls": len(self.aws.calls),
            "diff": diff,
            "version": COLLECTION_VERSION,
            "previous_version": previous_version,
        }

    @contextlib.contextmanager
    def _failed_marked(self, run):
        """A run that fails after its first write records `failed` with its step and error (record.mark_failed);
        an uninstall only on the bucket it found (none is made for it)."""
        try:
            yield
        except RackError as e:
            if run.plan.wrote and (run.state.bucket is not None or run.wanted):
                try:
                    record.mark_failed(run, self.progress.step, e.msg)
                except RackError:
                    pass
            raise

    def _wanted(self, state, recorded):
        """(the parameters to converge to, the user's tags), refused when they cannot be."""
        p = self.params
        wanted = effective_parameters(p, recorded)
        check_immutable(recorded, wanted)
        check_permissions_boundary(wanted["permissions_boundary"], self.identity.partition, self.identity.account)
        check_kms_key(wanted["kms_key"], self.identity.partition, self.region)
        check_certificate_arn(wanted["certificate_arn"], self.identity.partition, self.region)
        tags = merge_user_tags(state.user_tags, p.get("tags"), p.get("purge_tags", True))
        limit = user_tag_limit(wanted["permissions_boundary"], wanted["kms_key"], wanted["certificate_arn"])
        if len(tags) > limit:
            raise ValidationError(
                "tags", "the rack would have %d tags of yours; at most %d fit next to the collection's own with a"
                " permissions_boundary, a kms_key or a certificate_arn (AWS allows 50 a resource)" % (len(tags), limit))
        return wanted, tags

    def _result_rack(self, run, tags, status):
        """The rack as the run leaves it (in check mode: as it would, ids of what is to be made unknown)."""
        rack = rack_dict(run.state, self.region, status, [], parameters=run.wanted)
        rack.update(tags=tags, version=COLLECTION_VERSION)
        rack.update({k: run.out[k] for k in OUT_KEYS if k in run.out})
        for key, value in list(rack.items()):
            if value == CHECK_MODE_ID:
                rack[key] = None
        if rack["load_balancer"].get("arn") == CHECK_MODE_ID:
            rack["load_balancer"] = dict(rack["load_balancer"], arn=None, dns_name=None)
        rack["public_subnet_ids"] = [s for s in rack["public_subnet_ids"] if s != CHECK_MODE_ID]
        rack["private_subnet_ids"] = [s for s in rack["private_subnet_ids"] if s != CHECK_MODE_ID]
        if "instances" in run.out:
            rack["instances"] = run.out["instances"]
        return rack

    # -- absent -----------------------------------------------------------------------------------------------
    def absent(self):
        return self._locked("uninstall", self._absent, removed=lambda r: r["rack"]["status"] == "uninstalled")

    def _absent(self, first_write):
        p = self.params
        state = self._read()
        before = {"parameters": state.recorded_parameters, "exists": state.exists}
        recorded_version = record.recorded_version(state.tags)
        if state.exists and record.version_change(recorded_version) == "downgrade":
            self.warnings.append(
                "rack %s was last converged by convox.rack %s, newer than this collection (convox.rack %s): what that"
                " release added to racks may be left behind; uninstall it with convox.rack %s or later"
                % (p["name"], recorded_version, COLLECTION_VERSION, recorded_version))
        plan = Plan(self.check_mode, progress=self.progress)
        run = Run(self.aws, self.region, self.identity, state.names, plan, state)
        plan.before_first_write = locked_first(first_write, lambda: record.mark(run, "uninstalling"))
        with self._failed_marked(run):
            kept = uninstall.teardown(run, p.get("force", False), p.get("purge_data", False))
        status, _missing = decide(state, Outcome("uninstall", plan.changed, self.check_mode))
        rack = rack_dict(state, self.region, status, [])
        rack.update(kept_buckets=kept.buckets, kept_repositories=kept.repositories, kept_keys=kept.keys)
        return {
            "changed": plan.changed,
            "rack": rack,
            "kept_buckets": kept.buckets,
            "kept_repositories": kept.repositories,
            "kept_keys": kept.keys,
            "plan": plan.changes,
            "aws_calls": len(self.aws.calls),
            "diff": {"before": before, "after": {"exists": False, "kept_buckets": kept.buckets, "kept_keys": kept.keys,
                                                 "delete": plan.by_action("delete")}},
        }
