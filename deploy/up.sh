#!/usr/bin/env bash
# deploy/up.sh: installs (if missing) and starts, on loopback, the services
# Custos runs on: a single-node Kafka 3.9.1 (KRaft) and ClickHouse. Services
# that already answer are used as they are, so running it twice is a fast
# no-op. Tests, CI and the demo call it.
#
# On success prints the addresses on stdout as shell assignments, e.g.
#   CUSTOS_KAFKA_BROKERS=127.0.0.1:9092
#   CUSTOS_CLICKHOUSE_ADDR=127.0.0.1:9000
#   CUSTOS_CLICKHOUSE_HTTP_URL=http://127.0.0.1:8123
# so callers can `eval "$(deploy/up.sh)"`. Progress goes to stderr.
#
# Env: see deploy/README.md (CUSTOS_RUN_DIR, CUSTOS_KAFKA_*, CUSTOS_CLICKHOUSE_*).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"${CUSTOS_REPO_ROOT}/deploy/kafka/start.sh"
"${CUSTOS_REPO_ROOT}/deploy/clickhouse/start.sh"

printf 'CUSTOS_KAFKA_BROKERS=%s\n' "${CUSTOS_KAFKA_BROKERS:-127.0.0.1:${CUSTOS_KAFKA_PORT:-9092}}"
printf 'CUSTOS_CLICKHOUSE_ADDR=127.0.0.1:%s\n' "${CUSTOS_CLICKHOUSE_PORT:-9000}"
printf 'CUSTOS_CLICKHOUSE_HTTP_URL=http://127.0.0.1:%s\n' "${CUSTOS_CLICKHOUSE_HTTP_PORT:-8123}"
