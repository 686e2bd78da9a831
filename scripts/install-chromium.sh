#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests when it is missing (CI runs as root on a clean
# machine).  Playwright's own browser download cannot work here, so the tests drive /usr/bin/chromium.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: not root or no apt-get; browser tests will skip (or fail under CI=true)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q chromium fonts-dejavu-core
