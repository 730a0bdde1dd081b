#!/usr/bin/env bash
# The browser the static-site tests open pages in (tests/e2e/test_site_browser.py): Debian's chromium.
# Installs only when missing; apt-get update runs at most once. Prints the browser's path.
set -euo pipefail

find_browser() {
    for name in chromium chromium-browser; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if find_browser; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-browser: chromium is missing; run as root: apt-get update && apt-get install -y chromium" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update >&2
apt-get install -y --no-install-recommends chromium fonts-dejavu-core >&2
find_browser
