"""A stand-in for AWX's REST API (/api/v2/), enough for the awx.awx modules that examples/awx/setup.yml
uses, for tests/integration/test_awx.py.

It keeps objects in memory and answers as AWX does where the modules look: list views filtered by
the query (name, organization, inventory...) with count and results, objects with url, related and
summary_fields, 201 on create, 202 and a project update that succeeds, associations (credentials of a
job template), survey_spec, tokens, the product headers. Secret inputs of credentials read back as
$encrypted$, as AWX returns them.

Where AWX validates what it is sent, so does this: a survey spec against AWX's rules
(awx_launch.spec_errors), a credential type's injectors (environment variable names AWX refuses;
templates that name no field), a credential's inputs against its type's fields, a job template's
playbook and an inventory source's path against the project's files. A refusal is a 400 with AWX's
shape, which the module reports and fails on.
"""

from __future__ import annotations

import http.server
import itertools
import json
import os
import re
import threading
import urllib.parse

import jinja2
import jinja2.meta

import awx_launch

SINGULAR = {"inventories": "inventory"}
# awx/main/fields.py CredentialTypeInjectorField: environment variables a custom type may not set
BLOCKED_ENV = re.compile(r"^(ANSIBLE_.*|JOB_ID|INVENTORY_ID|INVENTORY_SOURCE_ID|INVENTORY_UPDATE_ID|AWX_HOST|PROJECT_REVISION"
                         r"|SUPERVISOR_CONFIG_PATH|VIRTUAL_ENV|PATH|PYTHONPATH|PROOT_TMP_DIR|HOME|USER)$")


class FakeAwx:
    def __init__(self, project_root=awx_launch.ROOT, version="24.6.1"):
        self.project_root = project_root
        self.version = version
        self.ids = itertools.count(1)
        self.store = {}          # collection -> {id: object}
        self.surveys = {}        # job template id -> survey spec
        self.associations = {}   # (collection, id, sub) -> [ids]
        self.requests = []
        self._server = None
        self.add("organizations", name="Default")
        self.add("credential_types", name="Amazon Web Services", kind="cloud", managed=True, namespace="aws",
                 inputs={"fields": [{"id": "username", "type": "string", "label": "Access Key"},
                                    {"id": "password", "type": "string", "label": "Secret Key", "secret": True},
                                    {"id": "security_token", "type": "string", "label": "STS Token", "secret": True}],
                         "required": ["username", "password"]}, injectors={})

    # -- the store -------------------------------------------------------------------------------------
    def add(self, collection, **fields):
        oid = next(self.ids)
        url = "/api/v2/%s/%d/" % (collection, oid)
        obj = dict(fields, id=oid, url=url, type=SINGULAR.get(collection, collection[:-1]),
                   related={"survey_spec": url + "survey_spec/", "credentials": url + "credentials/",
                            "update": url + "update/"},
                   summary_fields={})
        if collection == "projects":
            obj.setdefault("scm_revision", "")
        self.store.setdefault(collection, {})[oid] = obj
        return obj

    def named(self, collection, name):
        found = [o for o in self.store.get(collection, {}).values() if o.get("name") == name]
        assert len(found) <= 1, "%d %s named %s" % (len(found), collection, name)
        return found[0] if found else None

    def shown(self, collection, obj):
        """An object as AWX shows it: a credential's secret inputs as $encrypted$."""
        obj = json.loads(json.dumps(obj))
        if collection == "credentials":
            ctype = self.store["credential_types"][obj["credential_type"]]
            secret = {f["id"] for f in ctype["inputs"].get("fields", []) if f.get("secret")}
            obj["inputs"] = {k: ("$encrypted$" if k in secret and v else v) for k, v in obj.get("inputs", {}).items()}
        return obj

    # -- AWX's checks ----------------------------------------------------------------------------------
    def refuse(self, collection, data):
        """What AWX answers 400 to (None when it accepts)."""
        if collection == "credential_types":
            fields = {f["id"] for f in (data.get("inputs") or {}).get("fields", [])}
            for var, tmpl in ((data.get("injectors") or {}).get("env") or {}).items():
                if BLOCKED_ENV.match(var):
                    return {"injectors": ["Environment variable %s is not allowed to be used in credentials." % var]}
                names = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(tmpl))
                if names - fields - {"tower"}:
                    return {"injectors": ["%s uses undefined field(s) %s" % (var, sorted(names - fields))]}
        if collection == "credentials":
            ctype = self.store["credential_types"].get(data.get("credential_type"))
            if not ctype:
                return {"credential_type": ["Invalid pk"]}
            fields = {f["id"] for f in ctype["inputs"].get("fields", [])}
            inputs = data.get("inputs") or {}
            if set(inputs) - fields:
                return {"inputs": ["Additional properties are not allowed (%s)" % sorted(set(inputs) - fields)]}
            missing = [f for f in ctype["inputs"].get("required", []) if not inputs.get(f)]
            if missing:
                return {"inputs": {f: ["required for %s" % ctype["name"]] for f in missing}}
        if collection == "job_templates" and data.get("playbook"):
            if not os.path.isfile(os.path.join(self.project_root, data["playbook"])):
                return {"playbook": ['Playbook not found for project.']}
        if collection == "inventory_sources" and data.get("source_path"):
            if not os.path.isfile(os.path.join(self.project_root, data["source_path"])):
                return {"source_path": ["Cannot find the inventory file in the project."]}
        return None

    # -- HTTP ------------------------------------------------------------------------------------------
    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def start(self):
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body=None):
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-API-Product-Name", "AWX")
                self.send_header("X-API-Product-Version", api.version)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _handle(self):
                split = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                data = json.loads(self.rfile.read(length) or b"{}") if length else {}
                api.requests.append((self.command, split.path, data))
                status, body = api.route(self.command, split.path, urllib.parse.parse_qs(split.query), data)
                self._reply(status, body)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-awx", daemon=True).start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def route(self, method, path, query, data):
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["api", "v2"]:
            return 404, {"detail": "Not found."}
        parts = parts[2:]
        if parts == ["tokens"] and method == "POST":
            return 201, {"id": 1, "token": "fake-token"}
        if parts[:1] == ["tokens"] and method == "DELETE":
            return 204, None
        if parts in (["ping"], ["config"], []):
            return 200, {"version": self.version}
        collection = parts[0]
        objects = self.store.setdefault(collection, {})
        if len(parts) == 1:
            if method == "GET":
                return 200, self._list(collection, objects.values(), query)
            if method == "POST":
                refused = self.refuse(collection, data)
                if refused:
                    return 400, refused
                return 201, self.shown(collection, self.add(collection, **data))
        oid = int(parts[1])
        if oid not in objects:
            return 404, {"detail": "Not found."}
        obj = objects[oid]
        if len(parts) == 2:
            if method == "GET":
                return 200, self.shown(collection, obj)
            if method in ("PATCH", "PUT"):
                refused = self.refuse(collection, dict(obj, **data))
                if refused:
                    return 400, refused
                obj.update(data)
                return 200, self.shown(collection, obj)
            if method == "DELETE":
                del objects[oid]
                return 204, None
        sub = parts[2]
        if sub == "survey_spec":
            if method == "GET":
                return 200, self.surveys.get(oid, {})
            errors = awx_launch.spec_errors(data)
            if errors:
                return 400, {"error": errors[0]}
            self.surveys[oid] = data
            return 200, None
        if sub == "update" and collection == "projects" and method == "POST":
            update = self.add("project_updates", project=oid, status="successful", failed=False, finished="2026-11-27T00:00:00Z",
                              event_processing_finished=True, scm_revision="0" * 40, elapsed=1.0, started="2026-11-27T00:00:00Z")
            return 202, {"id": update["id"], "url": update["url"], "project_update": update["id"]}
        key = (collection, oid, sub)
        if method == "GET":
            return 200, self._list(sub, [{"id": i} for i in self.associations.get(key, [])], {})
        if method == "POST":
            ids = self.associations.setdefault(key, [])
            if data.get("disassociate"):
                ids.remove(data["id"])
            elif data["id"] not in ids:
                ids.append(data["id"])
            return 204, None
        return 405, {"detail": "Method not allowed."}

    def _list(self, collection, objects, query):
        out = []
        for obj in objects:
            keep = True
            ors = [(k[4:], v[0]) for k, v in query.items() if k.startswith("or__")]
            for key, values in query.items():
                if key in ("page_size", "page", "order_by") or key.startswith("or__"):
                    continue
                if str(obj.get(key)) != values[0]:
                    keep = False
            if ors and not any(str(obj.get(k)) == v for k, v in ors):
                keep = False
            if keep:
                out.append(self.shown(collection, obj) if "url" in obj else obj)
        return {"count": len(out), "next": None, "previous": None, "results": out}
