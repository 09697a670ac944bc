# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app services: what the app and app_info modules hand over to (glue.run_module).

present(): find the rack -> read the app -> converge its parts (apps.converge).
absent(): read the app -> delete repository, bucket, then log group (apps.delete); a bucket or
repository holding data is kept (and named) unless purge_data. Both under the rack's run lock:
an app changes while no other run changes its rack."""

from __future__ import annotations

from . import apps
from .context import Identity
from .lock import LockedService
from .naming import AppNames, RackNames
from .params import DEFAULTS, merge_user_tags
from .plan import Plan
from .status import app_dict
from .uninstall import Kept


def serve(aws, region, params, check_mode):
    """The app module's run: (result, warnings)."""
    service = AppService(aws, region, params, check_mode)
    result = service.absent() if params.get("state") == "absent" else service.present()
    return result, service.warnings


def serve_info(aws, region, params, _check_mode):
    """The app_info module's run: (result, warnings)."""
    listed = read_apps(aws, region, params["rack"], params.get("name"))
    return {"changed": False, "apps": listed, "aws_calls": len(aws.calls)}, []


class AppService(LockedService):
    def _run(self, plan, tags=None):
        rack_names = RackNames(self.params["rack"], self.region, self.identity.account)
        return apps.app_run(self.aws, self.region, self.identity, rack_names, self.params["name"], plan, tags)

    def _locked(self, operation, run):
        return self.locked(self.params["rack"], "%s of app %s" % (operation, self.params["name"]), run)

    def present(self):
        return self._locked("create or update", self._present)

    def _present(self, first_write):
        p = self.params
        run = self._run(Plan(self.check_mode, before_first_write=first_write))
        rack_parameters = apps.find_rack(self.aws, run.names.rack_names)
        run.state = state = apps.read(self.aws, run.names)
        before_tags = state.user_tags()
        wanted = {
            # Unset: the rack's retention, as recorded now.
            "log_retention": p.get("log_retention") or rack_parameters.get("log_retention", DEFAULTS["log_retention"]),
            "immutable_tags": bool(p.get("immutable_tags")),
            "kms_key": rack_parameters.get("kms_key"),   # the user's key the rack records, if any
            "tags": merge_user_tags(before_tags, p.get("tags"), p.get("purge_tags", True)),
        }
        run.tags = apps.app_tags(run.names.rack, run.names.app, wanted["tags"])
        repository_uri = apps.converge(run, wanted)
        before = {}
        if state.exists:
            repo = state.repository
            before = {"log_retention": (state.log_group or {}).get("retentionInDays"),
                      "immutable_tags": repo.get("imageTagMutability") == "IMMUTABLE" if repo else None}
        after = {k: wanted[k] for k in ("log_retention", "immutable_tags")}
        return {
            "changed": run.plan.changed,
            "app": self._result_app(run, wanted, repository_uri),
            "plan": run.plan.changes,
            "aws_calls": len(self.aws.calls),
            "diff": run.plan.diff(before, after, before_tags, wanted["tags"]),
        }

    def _result_app(self, run, wanted, repository_uri):
        """The app as the run leaves it (in check mode: as it would)."""
        names, state = run.names, run.state
        app = app_dict(state, self.region)
        app.update(log_group=names.log_group, log_retention=wanted["log_retention"], bucket=names.bucket,
                   repository=names.repository, repository_uri=repository_uri, immutable_tags=wanted["immutable_tags"],
                   tags=wanted["tags"], missing=[], status="running")
        if run.plan.changed and self.check_mode:
            app["status"] = "updating" if state.registered else "creating"
        return app

    def absent(self):
        return self._locked("delete", self._absent)

    def _absent(self, first_write):
        run = self._run(Plan(self.check_mode, before_first_write=first_write))
        run.state = state = apps.read(self.aws, run.names)
        kept = Kept()
        apps.delete(run, self.params.get("purge_data", False), kept)
        plan = run.plan
        app = app_dict(state, self.region, status="deleting" if plan.changed and self.check_mode else "deleted")
        before = {"exists": state.exists, "registered": state.registered}
        return {
            "changed": plan.changed,
            "app": app,
            "kept_buckets": kept.buckets,
            "kept_repositories": kept.repositories,
            "plan": plan.changes,
            "aws_calls": len(self.aws.calls),
            "diff": {"before": before, "after": {"exists": bool(kept.buckets or kept.repositories),
                                                 "registered": False, "kept_buckets": kept.buckets,
                                                 "kept_repositories": kept.repositories,
                                                 "delete": plan.by_action("delete")}},
        }


def read_apps(aws, region, rack, name=None):
    """The app dicts of one app (by name) or of every app of a rack: those whose log group exists."""
    identity = Identity(aws)
    rack_names = RackNames(rack, region, identity.account)
    apps.find_rack(aws, rack_names, to_change=False)
    prefix = rack_names.app_log_group_prefix()
    groups = aws.paginate("logs", "describe_log_groups", "log groups of rack %s" % rack,
                          logGroupNamePrefix=prefix + (name or "")).get("logGroups", [])
    names = sorted({g["logGroupName"][len(prefix):] for g in groups})
    if name is not None:
        names = [a for a in names if a == name]
    return [app_dict(apps.read(aws, AppNames.of_rack(rack_names, app), groups), region) for app in names]
