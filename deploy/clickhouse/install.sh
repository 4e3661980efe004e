#!/usr/bin/env bash
# deploy/clickhouse/install.sh: installs Debian's ClickHouse (clickhouse-server
# and clickhouse-client, 18.16 on Debian 12) with apt-get when
# `clickhouse-server` is not on the PATH. Does nothing otherwise. Needs root.
# The packages do not start a service by themselves (no systemd here);
# deploy/clickhouse/start.sh runs the server from its own copy of the config.
#
# Usage: deploy/clickhouse/install.sh   (no arguments; idempotent)
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if command -v clickhouse-server >/dev/null 2>&1 && command -v clickhouse-client >/dev/null 2>&1; then
  log "ClickHouse already installed: $(command -v clickhouse-server)"
  exit 0
fi
apt_install clickhouse-server clickhouse-client
command -v clickhouse-server >/dev/null 2>&1 || die "clickhouse-server still missing after apt-get install"
log "installed ClickHouse: $(command -v clickhouse-server)"
