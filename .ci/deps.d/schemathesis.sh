#!/usr/bin/env bash
# schemathesis (PyPI) for the schema-driven fuzz test of the REST API's OpenAPI document
# (crates/api/tests/fuzz.rs), in a virtual environment under $HOME/.cache so the system's
# Python stays untouched. Idempotent: nothing is done when the pinned version is there.
set -euo pipefail

version=4.32.5
venv="$HOME/.cache/worklane-schemathesis"
if "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
    exit 0
fi
# A fresh Debian machine may lack Python or its venv module.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
