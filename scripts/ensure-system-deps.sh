#!/usr/bin/env bash
# Installs the Debian packages the test suite drives as real peers (headless Chromium, openssl)
# or checks with (systemd-analyze),
# so `npm test` works on a fresh machine. Does nothing when they are already there.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# systemd-analyze verify checks deploy/ratls-proxy.service (tests/deploy/systemd-unit.test.ts)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ratls tests need: ${need[*]} (Debian packages). Install them as root: apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "Installing test dependencies: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
