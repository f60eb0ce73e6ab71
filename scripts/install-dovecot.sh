#!/usr/bin/env bash
# Installs Dovecot (POP3 + IMAP) and openssl for the POP3 tests (test/support/dovecot.ts starts a
# private instance from a temp dir; the system service is not used). Idempotent: does nothing when
# everything is present; runs `apt-get update` only if the install fails on stale package lists.
set -euo pipefail

have() { [ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/pop3 ] && [ -x /usr/lib/dovecot/imap ] && command -v openssl >/dev/null; }

if have; then
  echo "dovecot: $(/usr/sbin/dovecot --version) already installed"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
packages=(dovecot-pop3d dovecot-imapd openssl)

if ! "${SUDO[@]}" apt-get install -y --no-install-recommends "${packages[@]}"; then
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" apt-get install -y --no-install-recommends "${packages[@]}"
fi

have || { echo "dovecot install incomplete" >&2; exit 1; }
echo "dovecot: $(/usr/sbin/dovecot --version) installed"
