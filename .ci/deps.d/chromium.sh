#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the web console's browser tests
# (crates/server/tests/console.rs starts chromedriver on a free port and drives a headless
# Chromium against a server the test starts). Idempotent.
set -euo pipefail

"$(dirname "$0")/../apt-install" chromium chromium-driver
