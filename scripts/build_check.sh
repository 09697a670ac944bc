#!/usr/bin/env bash
# Build the collection artifact, install it offline into an empty collections path (beside
# a copy of amazon.aws, since Galaxy cannot be reached), and use it from a directory outside
# the repository. Called by `make build-check` with the venv's bin first on PATH and the
# local AWS environment exported.
# Usage: scripts/build_check.sh DEPS_ANSIBLE_COLLECTIONS_DIR
set -euo pipefail

repo=$(pwd)
deps=$(cd "$1" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/convox-rack-build-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== build"
ansible-galaxy collection build --output-path "$work/dist" "$repo"
tarball=$(ls "$work"/dist/convox-rack-*.tar.gz)
echo "artifact: $(basename "$tarball"), $(du -k "$tarball" | cut -f1) KiB, $(tar -tzf "$tarball" | wc -l) entries"

# From here on nothing of the repository may be found: no ansible.cfg, no .venv/collections,
# no collections in site-packages.
cd "$work"
printf '[defaults]\nretry_files_enabled = False\n' > "$work/ansible.cfg"
export ANSIBLE_CONFIG="$work/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$work/collections"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
mkdir -p "$work/collections/ansible_collections/amazon"
cp -a "$deps/amazon/aws" "$work/collections/ansible_collections/amazon/aws"

echo "== install --offline (the dependency amazon.aws is resolved from the collections path)"
ansible-galaxy collection install --offline -p "$work/collections" "$tarball"
ansible-galaxy collection list convox.rack
if [ -L "$work/collections/ansible_collections/convox/rack" ]; then
    echo "convox.rack was installed as a symlink, not from the artifact" >&2
    exit 1
fi

echo "== use it"
cp "$repo/tests/build_check/playbook.yml" "$work/playbook.yml"
ansible-playbook -i localhost, "$work/playbook.yml"
