#!/usr/bin/env bash
# deploy/clickhouse/stop.sh: stops the ClickHouse server started by
# deploy/clickhouse/start.sh (SIGTERM, up to 30 s, then SIGKILL) and removes
# its pid file. Never touches a server these scripts did not start.
# Drop or detach Kafka-engine tables before stopping, or shutdown may abort.
#
# Usage: deploy/clickhouse/stop.sh [--purge]
#   --purge   also delete all databases, tables and logs of that server.
# Env: CUSTOS_RUN_DIR (default <repo>/deploy/.run), CUSTOS_CLICKHOUSE_STOP_TIMEOUT (30)
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

purge=false
for arg in "$@"; do
  case "$arg" in
    --purge) purge=true ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (usage: $0 [--purge])" ;;
  esac
done

take_lock clickhouse
home="${CUSTOS_RUN_DIR}/clickhouse"
stop_pidfile "ClickHouse" "${home}/clickhouse.pid" "${home}/config.xml" "${CUSTOS_CLICKHOUSE_STOP_TIMEOUT:-30}"

if $purge; then
  log "purging ClickHouse data and logs in ${home}"
  rm -rf "${home}/data" "${home}/log"
fi
