#!/usr/bin/env bash
# Installs Chromium from Debian's packages for the browser test of the API reference page
# (test/settings/docs-page.test.ts drives /usr/bin/chromium with playwright-core; no browser is
# downloaded by npm). Idempotent: does nothing when it is present; runs `apt-get update` only if the
# install fails on stale package lists.
set -euo pipefail

have() { [ -x /usr/bin/chromium ]; }

if have; then
  echo "chromium: already installed"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
packages=(chromium)

if ! "${SUDO[@]}" apt-get install -y --no-install-recommends "${packages[@]}"; then
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" apt-get install -y --no-install-recommends "${packages[@]}"
fi

have || { echo "chromium install incomplete: /usr/bin/chromium is missing" >&2; exit 1; }
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo installed)"
