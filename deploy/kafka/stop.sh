#!/usr/bin/env bash
# deploy/kafka/stop.sh: stops the Kafka broker started by deploy/kafka/start.sh
# (SIGTERM, up to 20 s for a clean shutdown, then SIGKILL) and removes its pid
# file. Never touches a broker these scripts did not start.
#
# Usage: deploy/kafka/stop.sh [--purge]
#   --purge   also delete the broker's data (topics, offsets, cluster id) and
#             logs; the installed jars are kept.
# Env: CUSTOS_RUN_DIR (default <repo>/deploy/.run), CUSTOS_KAFKA_STOP_TIMEOUT (20)
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

take_lock kafka
home="${CUSTOS_RUN_DIR}/kafka"
stop_pidfile "Kafka" "${home}/kafka.pid" "${home}/server.properties" "${CUSTOS_KAFKA_STOP_TIMEOUT:-20}"

if $purge; then
  log "purging Kafka data and logs in ${home}"
  rm -rf "${home}/data" "${home}/logs" "${home}/cluster.id" "${home}/server.properties"
fi
