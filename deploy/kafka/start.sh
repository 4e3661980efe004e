#!/usr/bin/env bash
# deploy/kafka/start.sh: makes sure a Kafka broker answers, starting a local
# single-node KRaft broker (Kafka 3.9.1, broker + controller) on loopback if
# none does. Idempotent: a second run finds the broker and exits at once.
#
# 1. If a broker answers at CUSTOS_KAFKA_BROKERS, it is used as is (this is how
#    you point Custos at your own Kafka) and the script exits 0.
# 2. Otherwise it installs the jars if missing (install.sh), writes
#    $CUSTOS_RUN_DIR/kafka/server.properties, formats the storage once, starts
#    `java -cp 'libs/*' kafka.Kafka` in the background and waits until the
#    broker answers a Metadata request.
#
# Usage: deploy/kafka/start.sh
# Env:
#   CUSTOS_KAFKA_BROKERS          brokers to use/probe (default 127.0.0.1:$CUSTOS_KAFKA_PORT)
#   CUSTOS_KAFKA_PORT             client listener port (default 9092)
#   CUSTOS_KAFKA_CONTROLLER_PORT  KRaft controller port (default 9093)
#   CUSTOS_KAFKA_HEAP             JVM heap, -Xms and -Xmx (default 1g)
#   CUSTOS_KAFKA_START_TIMEOUT    seconds to wait for readiness (default 90)
#   CUSTOS_RUN_DIR                data, logs, pid file (default <repo>/deploy/.run)
# Files: $CUSTOS_RUN_DIR/kafka/{server.properties,kafka.pid,data/,logs/}
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

take_lock kafka
port="${CUSTOS_KAFKA_PORT:-9092}"
cport="${CUSTOS_KAFKA_CONTROLLER_PORT:-9093}"
local_addr="127.0.0.1:${port}"
brokers="${CUSTOS_KAFKA_BROKERS:-${local_addr}}"
heap="${CUSTOS_KAFKA_HEAP:-1g}"
start_timeout="${CUSTOS_KAFKA_START_TIMEOUT:-90}"

home="${CUSTOS_RUN_DIR}/kafka"
libs="${home}/libs"
conf="${home}/server.properties"
data="${home}/data"
logs="${home}/logs"
pidfile="${home}/kafka.pid"
outlog="${logs}/stdout.log"

if kafka_any_answers "$brokers"; then
  if pid_running "$pidfile" "$conf"; then
    log "Kafka already running at ${brokers} (started here, pid $(cat "$pidfile"))"
  else
    log "Kafka answers at ${brokers} (not started by these scripts); using it"
  fi
  exit 0
fi

if [[ "$brokers" != "$local_addr" ]]; then
  die "no Kafka broker answers at CUSTOS_KAFKA_BROKERS=${brokers}; start it, or unset CUSTOS_KAFKA_BROKERS to run a local broker on ${local_addr}"
fi

if pid_running "$pidfile" "$conf"; then
  log "Kafka (pid $(cat "$pidfile")) is starting; waiting for it"
  wait_until "Kafka" "$start_timeout" "${logs}/server.log" "$pidfile" kafka_probe 127.0.0.1 "$port"
  log "Kafka ready at ${local_addr}"
  exit 0
fi
rm -f "$pidfile"

for p in "$port" "$cport"; do
  if port_open 127.0.0.1 "$p"; then
    die "port 127.0.0.1:${p} is taken by something that is not a Kafka broker started here; free it or set CUSTOS_KAFKA_PORT / CUSTOS_KAFKA_CONTROLLER_PORT"
  fi
done

"${CUSTOS_REPO_ROOT}/deploy/kafka/install.sh"

mkdir -p "$data" "$logs"
cat >"$conf" <<PROPS
# Written by deploy/kafka/start.sh; rewritten on every start. Edit the script.
# Single node, KRaft: this process is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${cport}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${cport}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT

log.dirs=${data}

# One node: every internal topic has one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
default.replication.factor=1
min.insync.replicas=1

# A first consumer-group join would otherwise wait 3 s.
group.initial.rebalance.delay.ms=0

# Custos creates its topics itself (with their partition counts).
auto.create.topics.enable=false
num.partitions=6

# Keep a dev/test machine's disk in check: a day, at most 1 GiB per partition.
log.retention.hours=24
log.retention.bytes=1073741824
log.segment.bytes=268435456
log.retention.check.interval.ms=300000
PROPS

if [[ ! -f "${data}/meta.properties" ]]; then
  idfile="${home}/cluster.id"
  if [[ ! -s "$idfile" ]]; then
    java -cp "${libs}/*" -Dlog4j.configuration="file:${CUSTOS_REPO_ROOT}/deploy/kafka/log4j.properties" \
      -Dkafka.logs.dir="$logs" kafka.tools.StorageTool random-uuid >"$idfile" 2>>"$outlog" ||
      die "kafka.tools.StorageTool random-uuid failed; see ${outlog}"
  fi
  log "formatting Kafka storage in ${data} (cluster id $(cat "$idfile"))"
  java -cp "${libs}/*" -Dlog4j.configuration="file:${CUSTOS_REPO_ROOT}/deploy/kafka/log4j.properties" \
    -Dkafka.logs.dir="$logs" kafka.tools.StorageTool format -t "$(cat "$idfile")" -c "$conf" >>"$outlog" 2>&1 ||
    { _tail_log "$outlog"; die "formatting Kafka storage failed; see ${outlog}"; }
fi

log "starting Kafka on ${local_addr} (controller 127.0.0.1:${cport}); logs in ${logs}"
start_background "$pidfile" "$outlog" \
  java "-Xms${heap}" "-Xmx${heap}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
  -Dkafka.logs.dir="$logs" \
  -Dlog4j.configuration="file:${CUSTOS_REPO_ROOT}/deploy/kafka/log4j.properties" \
  -cp "${libs}/*" kafka.Kafka "$conf"

wait_until "Kafka" "$start_timeout" "${logs}/server.log" "$pidfile" kafka_probe 127.0.0.1 "$port"
log "Kafka ready at ${local_addr} (pid $(cat "$pidfile"))"
