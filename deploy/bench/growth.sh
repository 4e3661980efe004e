#!/usr/bin/env bash
# Cost growth (issue 8): measures how Custos's cost grows with the event
# size, the number of rules and the number of active actors, then draws the
# charts. `make bench-growth` runs it; docs/performance.md ("Cost growth")
# explains the figures.
#
# Every measurement runs RUNS times (default 2) and each run's raw output
# goes to docs/perf/raw/ with the date and the load average before it, so
# that figures taken on a shared machine can be judged. plot.py then turns
# the raw output into docs/perf/growth.csv, the SVG charts and the tables of
# docs/performance.md.
#
#   deploy/bench/growth.sh              # everything (needs Kafka and ClickHouse: deploy/up.sh)
#   deploy/bench/growth.sh micro        # decode and rules benchmarks only (no services)
#   deploy/bench/growth.sh e2e          # the end-to-end runs only
#   RUNS=3 EVENTS=1000000 deploy/bench/growth.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-2}
EVENTS=${EVENTS:-500000}
SIZES=${SIZES:-300 600 2048}
BIN=${BIN:-bin/custos}
GO=${GO:-go}
RAW=docs/perf/raw
what=${1:-all}
mkdir -p "$RAW"

# header NAME: the run's name, the date and the load average.
header() { echo "## $1 | $(date -u +%Y-%m-%dT%H:%M:%SZ) | load $(cut -d' ' -f1-3 /proc/loadavg)"; }

micro() {
	: >"$RAW/decode.txt"
	: >"$RAW/rules.txt"
	: >"$RAW/actors.txt"
	for r in $(seq "$RUNS"); do
		echo "decode+validate by event size, run $r" >&2
		{ header "decode run $r"; $GO test ./ingest/event -run '^$' -bench DecodeSize -benchmem -benchtime 1s; } >>"$RAW/decode.txt"
		echo "rules by number of rules, run $r" >&2
		{ header "rules run $r"; $GO test ./rules -run '^$' -bench RuleCount -benchmem -benchtime 2s; } >>"$RAW/rules.txt"
		echo "rules by active actors, run $r" >&2
		{ header "actors run $r"; $GO test ./rules -run '^$' -bench ActiveActors -benchmem -benchtime 2s -timeout 30m; } >>"$RAW/actors.txt"
	done
}

e2e() {
	$GO build -o "$BIN" ./cmd/custos
	: >"$RAW/e2e.txt"
	: >"$RAW/sizes.txt"
	for size in $SIZES; do
		# The bench's stream: seed 7, EVENTS normal events.
		"$BIN" gen -seed 7 -events "$EVENTS" -no-incidents -invalid 0 -event-size "$size" -out - |
			awk -v s="$size" '{n++; b+=length($0)} END {printf "size %s events %d mean_bytes %.1f\n", s, n, b/n}' >>"$RAW/sizes.txt"
	done
	log=$(mktemp)
	for r in $(seq "$RUNS"); do
		for size in $SIZES; do
			echo "custos bench -event-size $size, run $r" >&2
			{
				header "e2e size $size run $r"
				echo "command: $BIN bench -events $EVENTS -rate 0 -event-size $size"
				if ! "$BIN" bench -events "$EVENTS" -rate 0 -event-size "$size" >"$log.out" 2>"$log"; then
					tail -n 20 "$log" >&2
					exit 1
				fi
				tr '\r' '\n' <"$log.out" | grep -E '^(custos bench:|throughput:|  Custos:|  meanwhile|  partitions|  until)'
			} >>"$RAW/e2e.txt"
		done
	done
	rm -f "$log" "$log.out"
}

case $what in
all) micro; e2e ;;
micro) micro ;;
e2e) e2e ;;
plot) ;;
*) echo "usage: $0 [all|micro|e2e|plot]" >&2; exit 2 ;;
esac
python3 deploy/bench/plot.py
