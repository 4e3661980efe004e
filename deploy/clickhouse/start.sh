#!/usr/bin/env bash
# deploy/clickhouse/start.sh: makes sure a ClickHouse server answers, starting
# a local one on loopback if none does. Idempotent.
#
# 1. If something answers "Ok." at http://127.0.0.1:$CUSTOS_CLICKHOUSE_HTTP_PORT/ping
#    it is used as is (your own ClickHouse) and the script exits 0.
# 2. Otherwise it installs ClickHouse if missing (install.sh), copies
#    /etc/clickhouse-server/{config,users}.xml into $CUSTOS_RUN_DIR/clickhouse/,
#    points data, tmp, user_files, format_schemas and logs into that folder,
#    listens on 127.0.0.1 only (native and HTTP ports from the env, no
#    interserver port), makes the Kafka table engine start from the earliest
#    offset, starts `clickhouse-server --config-file=...` in the background
#    (as the current user, root included) and waits for /ping.
#
# Usage: deploy/clickhouse/start.sh
# Env:
#   CUSTOS_CLICKHOUSE_PORT           native protocol port (default 9000)
#   CUSTOS_CLICKHOUSE_HTTP_PORT      HTTP port (default 8123)
#   CUSTOS_CLICKHOUSE_START_TIMEOUT  seconds to wait for readiness (default 60)
#   CUSTOS_RUN_DIR                   (default <repo>/deploy/.run)
# Files: $CUSTOS_RUN_DIR/clickhouse/{config.xml,users.xml,clickhouse.pid,data/,log/}
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

take_lock clickhouse
port="${CUSTOS_CLICKHOUSE_PORT:-9000}"
http_port="${CUSTOS_CLICKHOUSE_HTTP_PORT:-8123}"
start_timeout="${CUSTOS_CLICKHOUSE_START_TIMEOUT:-60}"

home="${CUSTOS_RUN_DIR}/clickhouse"
conf="${home}/config.xml"
data="${home}/data"
logdir="${home}/log"
pidfile="${home}/clickhouse.pid"
outlog="${logdir}/stdout.log"

ping_ok() { [[ "$(http_get 127.0.0.1 "$http_port" /ping)" == Ok.* ]]; }

if ping_ok; then
  if pid_running "$pidfile" "$conf"; then
    log "ClickHouse already running at 127.0.0.1:${port} / http :${http_port} (started here, pid $(cat "$pidfile"))"
  else
    log "ClickHouse answers at http://127.0.0.1:${http_port} (not started by these scripts); using it"
  fi
  exit 0
fi

if pid_running "$pidfile" "$conf"; then
  log "ClickHouse (pid $(cat "$pidfile")) is starting; waiting for it"
  wait_until "ClickHouse" "$start_timeout" "${logdir}/clickhouse-server.err.log" "$pidfile" ping_ok
  exit 0
fi
rm -f "$pidfile"

for p in "$port" "$http_port"; do
  if port_open 127.0.0.1 "$p"; then
    die "port 127.0.0.1:${p} is taken by something that is not a ClickHouse answering /ping on :${http_port}; free it or set CUSTOS_CLICKHOUSE_PORT / CUSTOS_CLICKHOUSE_HTTP_PORT"
  fi
done

"${CUSTOS_REPO_ROOT}/deploy/clickhouse/install.sh"

etc=/etc/clickhouse-server
[[ -f "${etc}/config.xml" && -f "${etc}/users.xml" ]] || die "${etc}/config.xml or users.xml missing; reinstall clickhouse-server"
mkdir -p "$data" "$logdir"

# Our copy of the packaged config: the same settings, our paths and ports.
# Rewritten on every start from /etc, so edit this script, not the copy.
d="$(sed_escape "${data}/")"
l="$(sed_escape "${logdir}/")"
root_tag="$(grep -o -m1 '<\(yandex\|clickhouse\)>' "${etc}/config.xml" | tr -d '<>')"
[[ -n "$root_tag" ]] || die "cannot find the root element of ${etc}/config.xml"
sed -e "s|/var/lib/clickhouse/|${d}|g" \
  -e "s|/var/log/clickhouse-server/|${l}|g" \
  -e "s|<http_port>[0-9]*</http_port>|<http_port>${http_port}</http_port>|" \
  -e "s|<tcp_port>[0-9]*</tcp_port>|<tcp_port>${port}</tcp_port>|" \
  -e '/^[[:space:]]*<interserver_http_port>[0-9]*<\/interserver_http_port>[[:space:]]*$/d' \
  -e '/^[[:space:]]*<listen_host>[^<]*<\/listen_host>[[:space:]]*$/d' \
  -e "s|^</${root_tag}>|    <!-- Added by deploy/clickhouse/start.sh: loopback only. -->\\
    <listen_host>127.0.0.1</listen_host>\\
    <!-- Kafka table engine (benchmark comparisons): start from the earliest offset. -->\\
    <kafka>\\
        <auto_offset_reset>smallest</auto_offset_reset>\\
    </kafka>\\
</${root_tag}>|" \
  "${etc}/config.xml" >"${conf}.tmp"
grep -q '<listen_host>127.0.0.1</listen_host>' "${conf}.tmp" || die "could not rewrite ${etc}/config.xml (no closing </${root_tag}> line?)"
if grep -n '<listen_host>' "${conf}.tmp" | grep -v '127.0.0.1' | grep -v '<!--' >/dev/null; then
  die "a listen_host other than 127.0.0.1 is left in ${conf}.tmp"
fi
mv "${conf}.tmp" "$conf"
cp "${etc}/users.xml" "${home}/users.xml"

log "starting ClickHouse on 127.0.0.1:${port} (http :${http_port}); data in ${data}, logs in ${logdir}"
(cd "$home" && start_background "$pidfile" "$outlog" clickhouse-server --config-file="$conf")

wait_until "ClickHouse" "$start_timeout" "${logdir}/clickhouse-server.err.log" "$pidfile" ping_ok
log "ClickHouse ready at 127.0.0.1:${port} (http :${http_port}, pid $(cat "$pidfile"))"
