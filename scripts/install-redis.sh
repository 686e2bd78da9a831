#!/usr/bin/env bash
# Installs Debian's redis-server for the Redis store tests, benchmark and notebook when it is
# missing (CI runs as root on a clean machine).  The tests start their own redis-server on a free
# loopback port in a temporary directory; the system service is not used (and not started here).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-redis: not root or no apt-get; Redis tests will skip (or fail under CI=true)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# --no-install-recommends: the server binary only (no redis-tools' extras, no service start
# is needed; policy-rc.d may still start the packaged service, which listens on 6379 only).
apt-get install -y -q --no-install-recommends redis-server
