#!/usr/bin/env bash
# deploy/down.sh: stops the Kafka and ClickHouse servers that deploy/up.sh
# started (services it found already running are left alone).
#
# Usage: deploy/down.sh [--purge]
#   --purge   also delete their data and logs (installed jars are kept).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  "" | --purge) ;;
  *) die "unknown argument: $1 (usage: $0 [--purge])" ;;
esac

"${CUSTOS_REPO_ROOT}/deploy/clickhouse/stop.sh" "$@"
"${CUSTOS_REPO_ROOT}/deploy/kafka/stop.sh" "$@"
