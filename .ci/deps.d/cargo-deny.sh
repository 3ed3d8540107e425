#!/usr/bin/env bash
# cargo-deny (crates.io) for the dependency checks .ci/run makes (deny.toml): licences,
# bans, sources and RustSec advisories. Installed under $HOME/.cache, built from source
# with the Rust toolchain. Idempotent: nothing is done when the pinned version is there.
set -euo pipefail

version=0.20.2
root="$HOME/.cache/worklane-tools"
if "$root/bin/cargo-deny" --version 2>/dev/null | grep -q "$version"; then
    exit 0
fi
# Its own build directory: the workspace's target directory is not for tools.
CARGO_TARGET_DIR="$root/build" cargo install cargo-deny --locked --version "$version" --root "$root"
rm -rf "$root/build"
