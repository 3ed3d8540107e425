#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the web console's browser tests
# (crates/web/tests/browser.rs starts chromedriver on a free port and drives a headless
# Chromium against a server the test starts). Idempotent.
set -euo pipefail

packages=(chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
