#!/usr/bin/env bash
# What storing Custos's rows costs ClickHouse 18.16 (the server CI and this
# machine run) against a current ClickHouse (chDB, in process): the same
# rows, the same schema as Custos creates it on each version, the same
# inserts, then the merges until none runs. `make bench-storecost` runs it;
# BENCHMARKS.md ("Fourth session") has the figures and
# deploy/bench/modern_store.py says how they are taken.
#
#   deploy/bench/storecost.sh                 # 1M generator events
#   EVENTS=300000 deploy/bench/storecost.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

EVENTS=${EVENTS:-1000000}
BIN=${BIN:-bin/custos}
PY=${PY:-deploy/.run/venv/bin/python}
DB=custos_storecost
work=$(mktemp -d /tmp/custos-storecost.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
# The rows: the generator's events as Custos stores them (decoded,
# pseudonymised), kept in ClickHouse by a storage-ceiling run.
out=$("$BIN" bench -store-only -keep -events "$EVENTS" | tr '\r' '\n' | tail -3)
echo "$out"
kept=$(echo "$out" | sed -n 's/^kept database //p')
[ -n "$kept" ] || { echo "storecost: no kept database in the bench output" >&2; exit 1; }
# 18.16's system.columns has no position column; it lists a table's
# columns in their order.
cols=$(clickhouse-client -q "SELECT arrayStringConcat(groupArray(name), ', ') FROM (SELECT name FROM system.columns WHERE database = '$kept' AND table = 'events' AND name != 'ingested_at')")
rows=$(clickhouse-client -q "SELECT count() FROM $kept.events")
clickhouse-client -q "SELECT $cols FROM $kept.events FORMAT Native" >"$work/events.native"
clickhouse-client -q "DROP DATABASE $kept"
"$BIN" migrate -print 18.16 -clickhouse.database "$DB" >"$work/old.sql"
"$BIN" migrate -print "$("$PY" -c 'import chdb; print(".".join(chdb.query("SELECT version()").bytes().decode().strip().strip("\"").split(".")[:2]))')" \
	-clickhouse.database "$DB" >"$work/new.sql"
"$PY" deploy/bench/modern_store.py --native "$work/events.native" --columns "$cols" --rows "$rows" \
	--ddl-old "$work/old.sql" --ddl-new "$work/new.sql" --db "$DB"
