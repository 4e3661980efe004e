//go:build integration

package main

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/custos-privacy/custos/ingest/kafka"
)

// The "same table" Kafka engine of custos bench -compare must store what
// Custos stores, or the ratio printed against it means nothing: the same
// events on real Kafka and ClickHouse go through both, and every column
// but the pseudonyms (another hash), the Kafka coordinates (18.16's engine
// has none), extra and ingested_at must agree event by event, with as many
// subject_index and event_offsets rows. The same holds for the storage
// ceiling run (ClickHouse storing the decoded events alone).
func TestEquivalentEngineStoresWhatCustosStores(t *testing.T) {
	cfg := testConfig(t, "engine")
	gen := newGen(t, 3000)
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, cfg.Kafka.Brokers, 30*time.Second, topicSpecs(cfg)...); err != nil {
		t.Fatal(err)
	}
	if _, err := produce(ctx, cfg, gen, 0, nil); err != nil {
		t.Fatal(err)
	}
	total := int64(gen.Total())
	runUntilStored(t, cfg, total)
	conn := connect(t, cfg)
	engineDB := cfg.ClickHouse.Database + "_engine"
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+engineDB) })
	if _, err := runKafkaEngine(ctx, io.Discard, cfg, total, engineEquivalent, true); err != nil {
		t.Fatal(err)
	}

	cols := []string{"time", "time_ms", "type", "action", "actor_id", "actor_kind", "actor_role",
		"actor_department", "source_system", "source_dataset", "source_environment", "categories",
		"records", "has_records", "bytes", "length(subjects)", "subjects_truncated", "subject_kinds",
		"recipient_id", "recipient_name", "recipient_domain", "recipient_country", "recipient_kind",
		"channel_kind", "channel_encrypted", "channel_encrypted_set", "purpose", "legal_basis", "outcome",
		"request_id", "request_session", "request_ticket", "request_client_ip", "request_user_agent",
		"attribute_keys", "attribute_values", "schema"}
	custos := rowsByEventID(t, conn, cfg.ClickHouse.Database, cols)
	engine := rowsByEventID(t, conn, engineDB, cols)
	if len(custos) != int(total) || len(engine) != int(total) {
		t.Fatalf("rows: Custos %d, engine %d, want %d each", len(custos), len(engine), total)
	}
	diffs := 0
	for id, c := range custos {
		e, ok := engine[id]
		if !ok {
			t.Errorf("event %s: not stored by the engine", id)
			diffs++
		}
		for i := range cols {
			if ok && !reflect.DeepEqual(c[i], e[i]) {
				t.Errorf("event %s, %s: Custos %v, engine %v", id, cols[i], c[i], e[i])
				diffs++
			}
		}
		if diffs > 10 {
			t.Fatal("too many differences")
		}
	}
	for _, table := range []string{"subject_index", "event_offsets"} {
		want := queryInt(t, conn, "SELECT count() FROM "+cfg.ClickHouse.Database+"."+table)
		if got := queryInt(t, conn, "SELECT count() FROM "+engineDB+"."+table); got != want || want == 0 {
			t.Errorf("%s rows: engine %d, Custos %d", table, got, want)
		}
	}

	// The storage ceiling stores the same rows too, pseudonyms included
	// (same key); only the Kafka coordinates are its own.
	storeDB := cfg.ClickHouse.Database + "_store"
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+storeDB) })
	run, err := storeAlone(ctx, io.Discard, cfg, newGen(t, 3000), true)
	if err != nil {
		t.Fatal(err)
	}
	if run.rows != int(total) {
		t.Errorf("storing alone inserted %d rows, want %d", run.rows, total)
	}
	withSubjects := append([]string{"subjects"}, cols...)
	custos = rowsByEventID(t, conn, cfg.ClickHouse.Database, withSubjects)
	stored := rowsByEventID(t, conn, storeDB, withSubjects)
	if len(stored) != int(total) {
		t.Fatalf("storing alone: %d rows, want %d", len(stored), total)
	}
	for id, c := range custos {
		if s, ok := stored[id]; !ok || !reflect.DeepEqual(c, s) {
			t.Fatalf("event %s: Custos stored %v, storing alone %v", id, c, s)
		}
	}
	for _, table := range []string{"subject_index", "event_offsets"} {
		want := queryInt(t, conn, "SELECT count() FROM "+cfg.ClickHouse.Database+"."+table)
		if got := queryInt(t, conn, "SELECT count() FROM "+storeDB+"."+table); got != want {
			t.Errorf("%s rows: storing alone %d, Custos %d", table, got, want)
		}
	}
}

// rowsByEventID reads cols of db.events, keyed by event id.
func rowsByEventID(t *testing.T, conn ch.Conn, db string, cols []string) map[string][]any {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT event_id, "+strings.Join(cols, ", ")+" FROM "+db+".events")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	out := map[string][]any{}
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		vals := make([]any, len(cols))
		for i := range cols {
			vals[i] = reflect.ValueOf(dest[i+1]).Elem().Interface()
		}
		id := *dest[0].(*string)
		if _, dup := out[id]; dup {
			t.Fatalf("%s.events: event %s stored twice", db, id)
		}
		out[id] = vals
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// custos bench -compare runs on the real services and prints every figure
// issue 8 asks of it: Custos's rate, both engines', the storage ceiling,
// the ratios, CPU and RSS, the hot-partition line, and over two rounds the
// median and range of each; the engine and the ceiling store every event;
// and it leaves none of its databases behind.
func TestBenchCompareSmoke(t *testing.T) {
	const events = 20000
	var out, errOut bytes.Buffer
	args := []string{"bench", "-events", strconv.Itoa(events), "-rate", "0", "-compare", "-rounds", "2", "-log_level", "warn",
		"-rules.partners", "../../deploy/demo/partners.yml", "-rules.policy", "../../deploy/demo/policy.yml"}
	if code := run(context.Background(), args, func(string) string { return "" }, &out, &errOut); code != 0 {
		t.Fatalf("custos bench exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	text := strings.ReplaceAll(out.String(), "\r", "\n")
	find := func(pattern string) []string {
		t.Helper()
		m := regexp.MustCompile(pattern).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("output lacks /%s/:\n%s", pattern, text)
		}
		return m
	}
	num := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	find(`throughput: 20000 events in \S+ = \d+ events/s end to end`)
	find(`Custos: CPU [\d.]+ s \([\d.]+ µs/event\), peak RSS \d+ MB`)
	find(`partitions \(events, share, last stored at\): p0 \d+`)
	for _, row := range []string{`Custos \(validate, rules, DLQ\)`, `ClickHouse Kafka engine \(9 cols\)`,
		`ClickHouse Kafka engine \(same table\)`, `ClickHouse storing alone \(no Kafka\)`} {
		if rate := num(find(`\n  ` + row + ` +(\d+) `)[1]); rate <= 0 {
			t.Errorf("%s: rate %d", row, rate)
		}
	}
	find(`ratio Custos / Kafka engine \(9 cols\): [\d.]+x`)
	find(`ratio Custos / Kafka engine \(same table\): [\d.]+x`)
	find(`share of what ClickHouse alone stores on this machine \(\d+ rows/s`)
	find(`CPU per event, all processes: Custos [\d.]+ µs`)
	find(`over 2 rounds \(median, then min–max\):\n  Custos events/s +\d+ `)
	find(`\n  ratio Custos / Kafka engine \(same table\) +[\d.]+x  \([\d.]+x – [\d.]+x\)`)
	views := find(`also stored: (\d+) subject_index rows, (\d+) event_offsets rows`)
	if subjects, offsets := num(views[1]), num(views[2]); offsets < events || subjects < events {
		t.Errorf("same-table engine: %d subject_index and %d event_offsets rows for %d events", subjects, offsets, events)
	}
	if stored := num(find(`\n  (\d+) rows in \S+ = \d+ rows/s +\n`)[1]); stored < events {
		t.Errorf("storing alone stored %d rows, want at least %d", stored, events)
	}

	// The bench's databases are gone.
	tag := find(`producing \d+ events to custos\.(bench-[a-z0-9]+)\.events`)[1]
	db := "custos_" + strings.ReplaceAll(tag, "-", "_")
	conn, err := ch.Open(&ch.Options{Addr: []string{"127.0.0.1:9000"}, Auth: ch.Auth{Database: "system", Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, name := range []string{db, db + "_engine", db + "_store"} {
		if n := queryInt(t, conn, "SELECT count() FROM system.databases WHERE name = '"+name+"'"); n != 0 {
			t.Errorf("database %s left behind", name)
		}
	}
}
