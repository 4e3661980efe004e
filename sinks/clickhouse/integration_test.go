//go:build integration

package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules"
)

// Integration tests run against the ClickHouse that deploy/clickhouse/start.sh
// starts (or CUSTOS_CLICKHOUSE_ADDR). An unreachable server is a failure,
// never a skip. Each test gets its own database, dropped at the end.

func testAddr() string {
	if a := os.Getenv("CUSTOS_CLICKHOUSE_ADDR"); a != "" {
		return a
	}
	return DefaultAddr
}

var dbSeq atomic.Int64

func uniqueDB() string {
	return fmt.Sprintf("custos_test_%d_%d_%d", time.Now().Unix(), os.Getpid(), dbSeq.Add(1))
}

// openTest opens a migrated store on a fresh database.
func openTest(tb testing.TB, mod func(*Config)) *Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := Config{Addr: []string{testAddr()}, Database: uniqueDB(), RetryBackoff: 20 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	s, err := Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("open clickhouse at %v (start it with deploy/clickhouse/start.sh): %v", cfg.Addr, err)
	}
	tb.Cleanup(func() {
		if os.Getenv("CUSTOS_KEEP_TEST_DB") == "" {
			_ = s.conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.db)
		}
		_ = s.Close()
	})
	if err := s.Migrate(ctx); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return s
}

func count(t *testing.T, s *Store, q string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := s.conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func events(from, to int) []*event.Event {
	var out []*event.Event
	for i := from; i < to; i++ {
		out = append(out, sampleEvent(i))
	}
	return out
}

func TestIntegrationMigrateTwice(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, nil)
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	major, minor := s.ServerVersion()
	t.Logf("server %d.%d, database %s", major, minor, s.Database())
	applied, err := s.AppliedMigrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint32{1, 3}
	if s.version.AtLeast(21, 1) {
		want = []uint32{1, 2, 3}
	}
	if !slices.Equal(applied, want) {
		t.Fatalf("applied %v, want %v", applied, want)
	}
	if n := count(t, s, "SELECT count() FROM "+s.db+".schema_migrations"); n != uint64(len(want)) {
		t.Errorf("schema_migrations has %d rows after two runs, want %d", n, len(want))
	}
	for _, tbl := range []string{"events", "event_offsets", "event_offsets_mv", "subject_index", "subject_index_mv", "alerts", "subject_status"} {
		if n := count(t, s, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", s.db, tbl); n != 1 {
			t.Errorf("table %s missing", tbl)
		}
	}
}

// A database created before migration 3 (the 20-column subject_index)
// is converted in place: the narrow subject_index is refilled from events
// and the subject queries find every event again.
func TestIntegrationMigrateNarrowSubjectIndex(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Addr: []string{testAddr()}, Database: uniqueDB(), RetryBackoff: 20 * time.Millisecond}
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open clickhouse at %v (start it with deploy/clickhouse/start.sh): %v", cfg.Addr, err)
	}
	t.Cleanup(func() {
		_ = s.conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.db)
		_ = s.Close()
	})
	if err := s.conn.Exec(ctx, createMigrationsTable(s.db)); err != nil {
		t.Fatal(err)
	}
	// The schema as the first release's migration 1 left it.
	old := createTables(s.db, featuresOf(s.version))
	for i, q := range old {
		if strings.Contains(q, ".subject_index") {
			old[i] = ""
		}
	}
	old = append(old, wideSubjectIndex(s.db, featuresOf(s.version))...)
	for _, q := range old {
		if q == "" {
			continue
		}
		if err := s.conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.recordMigration(ctx, Migrations[0]); err != nil {
		t.Fatal(err)
	}
	in := events(0, 40)
	if err := s.InsertEvents(ctx, in); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "SELECT count() FROM system.columns WHERE database = ? AND table = 'subject_index'", s.db); n != uint64(len(wideSubjectIndexColumns)) {
		t.Fatalf("old subject_index has %d columns, want %d", n, len(wideSubjectIndexColumns))
	}

	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if n := count(t, s, "SELECT count() FROM system.columns WHERE database = ? AND table = 'subject_index'", s.db); n != uint64(len(subjectRefColumns())) {
		t.Errorf("subject_index has %d columns after migration 3, want %d", n, len(subjectRefColumns()))
	}
	// Rows from before the migration (refilled) and after it (the view).
	if err := s.InsertEvents(ctx, events(40, 60)); err != nil {
		t.Fatal(err)
	}
	in = append(in, events(40, 60)...)
	want := map[string][]string{}
	for _, e := range in {
		for _, sub := range e.Data.Subjects {
			want[sub] = append(want[sub], e.ID)
		}
	}
	for sub, ids := range want {
		rows, err := s.SubjectEvents(ctx, sub, baseTime.Add(-time.Hour), baseTime.Add(2*time.Hour), 1000)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			got = append(got, r.EventID)
		}
		if !slices.Equal(got, ids) {
			t.Errorf("subject %s after migration: events %v, want %v", sub, got, ids)
		}
		recips, err := s.SubjectRecipients(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		if len(recips) != 1 || recips[0].Shares != uint64(len(ids)) {
			t.Errorf("subject %s recipients %+v, want one recipient with %d shares", sub, recips, len(ids))
		}
	}
	// Running the migrations again changes nothing.
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "SELECT count() FROM (SELECT subject, event_id FROM "+s.db+".subject_index GROUP BY subject, event_id)"); n != uint64(len(in)*2) {
		t.Errorf("subject_index holds %d (subject, event) pairs, want %d", n, len(in)*2)
	}
}

// readEvents reads every stored event back into the contract type.
func readEvents(t *testing.T, s *Store) map[string]*event.Event {
	t.Helper()
	rows, err := s.conn.Query(context.Background(), "SELECT "+columnNames(eventColumns(featuresOf(s.version)))+" FROM "+s.db+".events")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]*event.Event{}
	for rows.Next() {
		var (
			e                                         event.Event
			tm                                        time.Time
			tms                                       uint16
			typ, action, akind, rkind, ckind, outcome string
			hasRec, trunc, enc, encSet                uint8
			keys, vals                                []string
			extra                                     string
		)
		err := rows.Scan(&e.ID, &tm, &tms, &typ, &action, &e.Actor.ID, &akind, &e.Actor.Role, &e.Actor.Department,
			&e.Source.System, &e.Source.Dataset, &e.Source.Environment, &e.Data.Categories, &e.Data.Records, &hasRec,
			&e.Data.Bytes, &e.Data.Subjects, &trunc, &e.Data.SubjectKinds, &e.Recipient.ID, &e.Recipient.Name,
			&e.Recipient.Domain, &e.Recipient.Country, &rkind, &ckind, &enc, &encSet, &e.Purpose, &e.LegalBasis,
			&outcome, &e.Request.ID, &e.Request.Session, &e.Request.Ticket, &e.Request.ClientIP, &e.Request.UserAgent,
			&keys, &vals, &extra, &e.Schema, &e.Origin.Topic, &e.Origin.Partition, &e.Origin.Offset)
		if err != nil {
			t.Fatal(err)
		}
		e.Time = tm.UTC().Add(time.Duration(tms) * time.Millisecond)
		e.Type, e.Action, e.Actor.Kind, e.Outcome = event.Type(typ), event.Action(action), event.ActorKind(akind), event.Outcome(outcome)
		e.Recipient.Kind, e.Channel.Kind = event.RecipientKind(rkind), event.ChannelKind(ckind)
		e.Data.HasRecords, e.Data.SubjectsTruncated, e.Channel.Encrypted, e.Channel.EncryptedSet = hasRec == 1, trunc == 1, enc == 1, encSet == 1
		for i := range keys {
			e.Attributes = append(e.Attributes, event.Attribute{Key: keys[i], Value: vals[i]})
		}
		if extra != "" {
			e.Extra = []byte(extra)
		}
		out[e.ID] = &e
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIntegrationInsertReadBack(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, nil)
	in := events(1, 21) // crosses from March into April: two partitions
	in[3].Attributes, in[3].Extra, in[3].Data.Subjects, in[3].Data.Categories = nil, nil, nil, nil
	in[4].Type, in[4].Action, in[4].Recipient, in[4].Channel = event.TypeAccess, event.ActionRead, event.Recipient{}, event.Channel{}
	if err := s.InsertEvents(ctx, in); err != nil {
		t.Fatal(err)
	}
	got := readEvents(t, s)
	if len(got) != len(in) {
		t.Fatalf("read %d events, want %d", len(got), len(in))
	}
	for _, want := range in {
		g := got[want.ID]
		if g == nil {
			t.Fatalf("event %s missing", want.ID)
		}
		w := *want
		w.Data.Categories, g.Data.Categories = nilIfEmpty(w.Data.Categories), nilIfEmpty(g.Data.Categories)
		w.Data.Subjects, g.Data.Subjects = nilIfEmpty(w.Data.Subjects), nilIfEmpty(g.Data.Subjects)
		rw, rg := reflect.ValueOf(w), reflect.ValueOf(*g)
		for i := range rw.NumField() {
			if !reflect.DeepEqual(rw.Field(i).Interface(), rg.Field(i).Interface()) {
				t.Errorf("event %s field %s: got %+v, want %+v", w.ID, rw.Type().Field(i).Name, rg.Field(i).Interface(), rw.Field(i).Interface())
			}
		}
	}
	if n := count(t, s, "SELECT uniqExact(_part) FROM "+s.db+".events"); n != 2 {
		t.Errorf("events in %d parts, want 2 (one per month)", n)
	}

	// Alerts: read back through the query and the raw columns.
	ws := time.Date(2026, 3, 31, 23, 0, 0, 250_000_000, time.UTC)
	alerts := []*rules.Alert{{
		ID: rules.StableID("bulk_export", "user-001", ws), Rule: "bulk_export", Title: "Bulk export",
		Severity: rules.SeverityHigh, Actor: "user-001", GroupKey: "user-001",
		WindowStart: ws, WindowEnd: ws.Add(time.Hour), Events: 12, Records: 50_000, Threshold: 10_000,
		Summary: "user-001 exported 50000 records in 1h", Evidence: []string{"evt-00000001", "evt-00000002"},
		Recipient: "api.adnet.example", Partition: 2, EventTime: ws.Add(30*time.Minute + 7*time.Millisecond),
	}, {
		ID: rules.StableID("unknown_recipient", "x.example", ws), Rule: "unknown_recipient", Title: "Unknown recipient",
		Severity: rules.SeverityMedium, WindowStart: ws, WindowEnd: ws, Events: 1, Partition: 3, EventTime: ws,
	}}
	if err := s.InsertAlerts(ctx, alerts); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Alerts(ctx, ws.Add(-time.Hour), ws.Add(time.Hour), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("alerts: %d rows", len(rows))
	}
	a := rows[0]
	if rows[0].ID != alerts[0].ID {
		a = rows[1]
	}
	w := alerts[0]
	if a.ID != w.ID || a.Rule != w.Rule || a.Title != w.Title || a.Severity != string(w.Severity) || a.Actor != w.Actor ||
		a.GroupKey != w.GroupKey || !a.WindowStart.Equal(w.WindowStart.Truncate(time.Second)) || !a.WindowEnd.Equal(w.WindowEnd.Truncate(time.Second)) ||
		a.Events != w.Events || a.Records != w.Records || a.Threshold != w.Threshold || a.Summary != w.Summary ||
		!slices.Equal(a.Evidence, w.Evidence) || a.Recipient != w.Recipient {
		t.Errorf("alert read back %+v, want %+v", a, w)
	}
	var wsMs, evMs uint16
	var part int32
	var evTime time.Time
	err = s.conn.QueryRow(ctx, "SELECT window_start_ms, event_time_ms, event_time, kafka_partition FROM "+s.db+".alerts WHERE alert_id = ?", w.ID).Scan(&wsMs, &evMs, &evTime, &part)
	if err != nil || wsMs != 250 || evMs != 257 || part != 2 || !evTime.Equal(w.EventTime.Truncate(time.Second)) {
		t.Errorf("alert ms/partition: %d %d %v %d %v", wsMs, evMs, evTime, part, err)
	}
	if got, err := s.Alerts(ctx, ws.Add(-time.Hour), ws.Add(time.Hour), "high", ""); err != nil || len(got) != 1 || got[0].ID != w.ID {
		t.Errorf("alerts by severity: %v %v", got, err)
	}
	if got, err := s.Alerts(ctx, ws.Add(-time.Hour), ws.Add(time.Hour), "", "unknown_recipient"); err != nil || len(got) != 1 || got[0].ID != alerts[1].ID {
		t.Errorf("alerts by rule: %v %v", got, err)
	}
	// Re-raising an alert adds a version; the query still shows one.
	w2 := *w
	w2.Events = 13
	time.Sleep(1100 * time.Millisecond) // stored_at has second resolution
	if err := s.InsertAlerts(ctx, []*rules.Alert{&w2}); err != nil {
		t.Fatal(err)
	}
	got2, err := s.Alerts(ctx, ws.Add(-time.Hour), ws.Add(time.Hour), "high", "")
	if err != nil || len(got2) != 1 || got2[0].Events != 13 {
		t.Errorf("re-raised alert: %+v %v", got2, err)
	}
	ids, ends, err := s.AlertIDs(ctx, 2, ws)
	if err != nil || !slices.Equal(ids, []string{w.ID}) || len(ends) != 1 || !ends[0].Equal(w.WindowEnd.Truncate(time.Second)) {
		t.Errorf("AlertIDs(2) = %v %v %v, want [%s] ending %v", ids, ends, err, w.ID, w.WindowEnd)
	}
	if ids, _, _ := s.AlertIDs(ctx, 2, ws.Add(2*time.Hour)); len(ids) != 0 {
		t.Errorf("AlertIDs after window = %v", ids)
	}

	// Subject statuses.
	st := []*event.SubjectStatus{
		{Subject: subjectID(1), Time: ws.Add(1500 * time.Millisecond), Status: event.StatusOptedOut, Uses: []string{"marketing"}, Origin: event.Origin{Topic: "custos.subjects", Partition: 1, Offset: 77}},
		{Subject: subjectID(2), Time: ws, Status: event.StatusClosed, Origin: event.Origin{Topic: "custos.subjects", Partition: 0, Offset: 5}},
	}
	if err := s.InsertSubjectStatuses(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertSubjectStatuses(ctx, st[:1]); err != nil { // re-delivery
		t.Fatal(err)
	}
	var subj, status, topic string
	var tm time.Time
	var tms uint16
	var uses []string
	var off int64
	err = s.conn.QueryRow(ctx, "SELECT subject, time, time_ms, status, uses, kafka_topic, kafka_partition, kafka_offset FROM "+s.db+
		".subject_status WHERE subject = ? LIMIT 1", subjectID(1)).Scan(&subj, &tm, &tms, &status, &uses, &topic, &part, &off)
	if err != nil {
		t.Fatal(err)
	}
	if !tm.Add(time.Duration(tms)*time.Millisecond).Equal(st[0].Time) || status != "opted_out" || !slices.Equal(uses, st[0].Uses) ||
		topic != "custos.subjects" || part != 1 || off != 77 {
		t.Errorf("status read back: %s %v %d %s %v %s %d %d", subj, tm, tms, status, uses, topic, part, off)
	}
	if n := count(t, s, "SELECT count() FROM (SELECT * FROM "+s.db+".subject_status FINAL)"); n != 2 {
		t.Errorf("subject_status after re-delivery and merge: %d rows, want 2", n)
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestIntegrationOffsetsAndSubjectIndex(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, nil)
	in := events(0, 40)
	in[10].Origin.Partition = 5 // another partition
	if err := s.InsertEvents(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.StoredOffsets(ctx, "custos.events", 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, e := range in {
		if e.Origin.Partition == 2 {
			want = append(want, e.Origin.Offset)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("StoredOffsets = %v, want %v", got, want)
	}
	if got, _ := s.StoredOffsets(ctx, "custos.events", 2, 1030); !slices.Equal(got, want[29:]) {
		t.Errorf("StoredOffsets from 1030 = %v", got)
	}
	if got, _ := s.StoredOffsets(ctx, "custos.events", 5, 0); !slices.Equal(got, []int64{1010}) {
		t.Errorf("StoredOffsets partition 5 = %v", got)
	}
	if got, _ := s.StoredOffsets(ctx, "other", 2, 0); len(got) != 0 {
		t.Errorf("StoredOffsets other topic = %v", got)
	}

	// subject_index: one row per (subject, event), pointing into events.
	var pairs uint64
	wantIDs := map[string][]string{}
	for _, e := range in {
		pairs += uint64(len(e.Data.Subjects))
		for _, sub := range e.Data.Subjects {
			wantIDs[sub] = append(wantIDs[sub], e.ID)
		}
	}
	if n := count(t, s, "SELECT count() FROM "+s.db+".subject_index"); n != pairs {
		t.Errorf("subject_index has %d rows, want %d", n, pairs)
	}
	for sub, ids := range wantIDs {
		rows, err := s.SubjectEvents(ctx, sub, baseTime.Add(-time.Hour), baseTime.Add(time.Hour), 1000)
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs []string
		for _, r := range rows {
			gotIDs = append(gotIDs, r.EventID)
			if r.ActorID == "" || r.SourceSystem != "crm" || r.RecipientDomain != "api.adnet.example" || r.Type != "share" {
				t.Errorf("subject_index row %+v", r)
			}
		}
		if !slices.Equal(gotIDs, ids) {
			t.Errorf("subject %s: events %v, want %v", sub, gotIDs, ids)
		}
	}
	var mism uint64
	err = s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+".subject_index AS si ANY INNER JOIN (SELECT event_id, time, actor_id, records FROM "+s.db+
		".events) AS e USING event_id WHERE si.time != e.time OR si.actor_id != e.actor_id").Scan(&mism)
	if err != nil || mism != 0 {
		t.Errorf("subject_index rows differing from events: %d %v", mism, err)
	}

	// RecentEvents: the partition's events since a time, in offset order.
	var seen []*event.Event
	since := in[20].Time
	err = s.RecentEvents(ctx, "custos.events", 2, since, func(e *event.Event) error { seen = append(seen, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 20 || seen[0].ID != in[20].ID || seen[19].ID != in[39].ID {
		t.Fatalf("RecentEvents: %d events", len(seen))
	}
	g, w := seen[0], in[20]
	if !g.Time.Equal(w.Time) || g.Type != w.Type || g.Action != w.Action || g.Actor != w.Actor || g.Source != w.Source ||
		g.Data.Records != w.Data.Records || g.Data.Bytes != w.Data.Bytes || !slices.Equal(g.Data.Categories, w.Data.Categories) ||
		!slices.Equal(g.Data.Subjects, w.Data.Subjects) || g.Recipient != w.Recipient || g.Channel != w.Channel ||
		g.Outcome != w.Outcome || g.Purpose != w.Purpose || g.Origin != w.Origin || !g.Data.HasRecords {
		t.Errorf("RecentEvents event %+v, want %+v", g, w)
	}
	stop := errors.New("stop")
	if err := s.RecentEvents(ctx, "custos.events", 2, since, func(*event.Event) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("fn error not returned: %v", err)
	}
}

// skipStored is what the ingest path does on re-delivery.
func skipStored(t *testing.T, s *Store, evs []*event.Event) []*event.Event {
	t.Helper()
	from := evs[0].Origin.Offset
	for _, e := range evs {
		from = min(from, e.Origin.Offset)
	}
	stored, err := s.StoredOffsets(context.Background(), evs[0].Origin.Topic, evs[0].Origin.Partition, from)
	if err != nil {
		t.Fatal(err)
	}
	var out []*event.Event
	for _, e := range evs {
		if _, found := slices.BinarySearch(stored, e.Origin.Offset); !found {
			out = append(out, e)
		}
	}
	return out
}

func TestIntegrationRedelivery(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, nil)
	all := events(0, 60)
	if err := s.InsertEvents(ctx, all[:40]); err != nil {
		t.Fatal(err)
	}
	// The consumer crashed before committing; Kafka re-delivers 20..59.
	redelivered := events(20, 60)
	rest := skipStored(t, s, redelivered)
	if len(rest) != 20 || rest[0].ID != all[40].ID {
		t.Fatalf("after skipping stored offsets %d events remain", len(rest))
	}
	if err := s.InsertEvents(ctx, rest); err != nil {
		t.Fatal(err)
	}
	// A producer re-sent two events under the same id at new offsets.
	resent := []*event.Event{sampleEvent(5), sampleEvent(6)}
	resent[0].Origin.Offset, resent[1].Origin.Offset = 5000, 5001
	if err := s.InsertEvents(ctx, resent); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "SELECT count() FROM "+s.db+".events WHERE kafka_offset < 5000"); n != 60 {
		t.Errorf("events from the re-delivered range: %d rows, want 60", n)
	}
	checkCountsOnce(t, s, all)
}

// checkCountsOnce checks that every forensic query counts each event once.
func checkCountsOnce(t *testing.T, s *Store, all []*event.Event) {
	t.Helper()
	ctx := context.Background()
	from, to := baseTime.Add(-time.Hour), baseTime.Add(time.Hour)
	perActor := map[string]int{}
	perSubject := map[string]map[string]bool{}
	subjectsOf := map[string]map[string]bool{}
	var records int64
	for _, e := range all {
		perActor[e.Actor.ID]++
		if subjectsOf[e.Actor.ID] == nil {
			subjectsOf[e.Actor.ID] = map[string]bool{}
		}
		for _, sub := range e.Data.Subjects {
			if perSubject[sub] == nil {
				perSubject[sub] = map[string]bool{}
			}
			perSubject[sub][e.ID] = true
			subjectsOf[e.Actor.ID][sub] = true
		}
		if e.Actor.ID == "user-001" {
			records += e.Data.Records
		}
	}
	for actor, n := range perActor {
		rows, err := s.ActorEvents(ctx, actor, from, to, 1000)
		if err != nil || len(rows) != n {
			t.Errorf("ActorEvents(%s) = %d rows (%v), want %d", actor, len(rows), err, n)
		}
		scope, err := s.BreachScope(ctx, actor, from, to)
		if err != nil || len(scope) != len(subjectsOf[actor]) {
			t.Errorf("BreachScope(%s) = %d subjects (%v), want %d", actor, len(scope), err, len(subjectsOf[actor]))
		}
	}
	sum, err := s.BreachScopeSummary(ctx, "user-001", from, to)
	if err != nil || sum.Events != uint64(perActor["user-001"]) || sum.Records != records || sum.ListedSubjects != uint64(len(subjectsOf["user-001"])) {
		t.Errorf("BreachScopeSummary = %+v (%v), want %d events, %d records", sum, err, perActor["user-001"], records)
	}
	for sub, ids := range perSubject {
		rows, err := s.SubjectEvents(ctx, sub, from, to, 1000)
		if err != nil || len(rows) != len(ids) {
			t.Errorf("SubjectEvents(%s) = %d (%v), want %d", sub, len(rows), err, len(ids))
		}
		rec, err := s.SubjectRecipients(ctx, sub)
		if err != nil || len(rec) != 1 || rec[0].Shares != uint64(len(ids)) || rec[0].Name != "AdNet Ltd" || rec[0].Country != "IE" {
			t.Errorf("SubjectRecipients(%s) = %+v (%v), want %d shares", sub, rec, err, len(ids))
		}
	}
}

// proxy forwards TCP to ClickHouse and can cut a connection in the middle
// of a large client write.
type proxy struct {
	ln       net.Listener
	upstream string
	cutAfter atomic.Int64 // > 0: cut the connection that writes this many bytes
	cuts     atomic.Int64
}

func newProxy(t *testing.T, upstream string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream}
	go p.serve()
	t.Cleanup(func() { _ = ln.Close() })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = c.Close()
			continue
		}
		go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
		go func() {
			buf := make([]byte, 32<<10)
			var sent int64
			for {
				n, err := c.Read(buf)
				if n > 0 {
					sent += int64(n)
					if lim := p.cutAfter.Load(); lim > 0 && sent > lim && p.cutAfter.CompareAndSwap(lim, 0) {
						_, _ = u.Write(buf[:n/2])
						p.cuts.Add(1)
						_ = c.Close()
						_ = u.Close()
						return
					}
					if _, werr := u.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					_ = u.Close()
					return
				}
			}
		}()
	}
}

func TestIntegrationRetry(t *testing.T) {
	ctx := context.Background()
	t.Run("connection cut mid-send", func(t *testing.T) {
		p := newProxy(t, testAddr())
		s := openTest(t, func(c *Config) { c.Addr = []string{p.ln.Addr().String()} })
		in := events(0, 3000)
		p.cutAfter.Store(64 << 10) // the data block is several hundred KB
		if err := s.InsertEvents(ctx, in); err != nil {
			t.Fatalf("insert with one cut connection: %v", err)
		}
		if p.cuts.Load() != 1 {
			t.Fatalf("proxy cut %d connections, want 1", p.cuts.Load())
		}
		if n := count(t, s, "SELECT count() FROM "+s.db+".events"); n != 3000 {
			t.Errorf("events after retry: %d, want 3000", n)
		}
	})
	t.Run("failure after the server stored the rows", func(t *testing.T) {
		s := openTest(t, nil)
		var sends atomic.Int64
		s.afterSend = func(table string, attempt int) error {
			sends.Add(1)
			if attempt == 0 {
				return fmt.Errorf("simulated: %w", io.ErrUnexpectedEOF)
			}
			return nil
		}
		in := events(0, 500)
		if err := s.InsertEvents(ctx, in); err != nil {
			t.Fatal(err)
		}
		if sends.Load() != 1 {
			t.Errorf("sent %d times; the retry should have found every offset stored", sends.Load())
		}
		if n := count(t, s, "SELECT count() FROM "+s.db+".events"); n != 500 {
			t.Errorf("events: %d, want 500", n)
		}
	})
	t.Run("permanent error is not retried", func(t *testing.T) {
		s := openTest(t, nil)
		var attempts atomic.Int64
		s.beforeSend = func(string, int) error { attempts.Add(1); return errors.New("permanent") }
		if err := s.InsertEvents(ctx, events(0, 5)); err == nil || attempts.Load() != 1 {
			t.Errorf("err %v after %d attempts", err, attempts.Load())
		}
	})
	t.Run("retries are bounded and honour ctx", func(t *testing.T) {
		s := openTest(t, func(c *Config) { c.MaxRetries = 2 })
		var attempts atomic.Int64
		s.beforeSend = func(string, int) error { attempts.Add(1); return io.EOF }
		if err := s.InsertAlerts(ctx, []*rules.Alert{{ID: "a"}}); err == nil || attempts.Load() != 3 {
			t.Errorf("err %v after %d attempts, want 3", err, attempts.Load())
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		s.cfg.MaxRetries, s.cfg.RetryBackoff = 100, 10*time.Millisecond
		if err := s.InsertAlerts(cctx, []*rules.Alert{{ID: "a"}}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v, want deadline exceeded", err)
		}
	})
}

func TestIntegrationQueriesRun(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	all := events(0, 30)
	if err := s.InsertEvents(ctx, all); err != nil {
		t.Fatal(err)
	}
	// Every registered query runs as written.
	from, to := baseTime.Add(-time.Hour), baseTime.Add(time.Hour)
	vals := map[string]any{"actor": "user-001", "subject": subjectID(1), "from": from, "to": to, "limit": 100, "severity": "", "rule": ""}
	for _, q := range Queries {
		var args []any
		for _, p := range q.Params {
			args = append(args, named(p, vals[p]))
		}
		rows, err := s.conn.Query(ctx, q.SQL, args...)
		if err != nil {
			t.Errorf("query %s: %v", q.Name, err)
			continue
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Errorf("query %s: %v", q.Name, err)
		}
		rows.Close()
		t.Logf("query %s: %d rows", q.Name, n)
	}
	checkCountsOnce(t, s, all)
}

// TestIntegrationChDB runs the modern schema and every query in chDB
// (current ClickHouse, in process), with the venv deploy/chdb/install.sh
// makes.
func TestIntegrationChDB(t *testing.T) {
	py := os.Getenv("CUSTOS_CHDB_PYTHON")
	if py == "" {
		out, err := exec.Command("bash", "../../deploy/chdb/install.sh").Output()
		if err != nil {
			t.Fatalf("deploy/chdb/install.sh: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		py = strings.TrimSpace(lines[len(lines)-1])
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("chdb python %q: %v", py, err)
	}
	const db = "custos_chdb"
	f := featuresOf(VersionModern)
	tables := map[string][][2]string{}
	for name, cols := range map[string][]column{"events": eventColumns(f), "alerts": alertColumns(f), "subject_status": subjectStatusColumns(f)} {
		for _, c := range cols {
			tables[name] = append(tables[name], [2]string{c.name, c.typ})
		}
	}
	from, to := baseTime.Add(-time.Hour), baseTime.Add(time.Hour)
	vals := map[string]string{
		"actor": "'user-001'", "subject": "'" + subjectID(1) + "'", "limit": "100", "severity": "''", "rule": "''",
		"from": "toDateTime('" + from.Format(time.DateTime) + "', 'UTC')", "to": "toDateTime('" + to.Format(time.DateTime) + "', 'UTC')",
	}
	type q struct {
		Name    string `json:"name"`
		SQL     string `json:"sql"`
		MinRows int    `json:"min_rows"`
	}
	var queries []q
	for _, query := range Queries {
		sql := query.SQL
		// Longest names first so @to does not eat a prefix of another.
		params := slices.Clone(query.Params)
		sort.Slice(params, func(i, j int) bool { return len(params[i]) > len(params[j]) })
		for _, p := range params {
			sql = strings.ReplaceAll(sql, "@"+p, vals[p])
		}
		queries = append(queries, q{query.Name, sql, 1})
	}
	spec := map[string]any{
		"database": db, "ddl": Statements(db, VersionModern), "tables": tables, "queries": queries,
		"actor": "user-001", "subject": subjectID(1), "time": baseTime.Add(time.Minute).Format(time.DateTime),
	}
	path := filepath.Join(t.TempDir(), "chdb_spec.json")
	b, _ := json.MarshalIndent(spec, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "testdata/chdb_check.py", path).CombinedOutput()
	t.Logf("chdb_check.py:\n%s", out)
	if err != nil {
		t.Fatalf("chdb check failed: %v", err)
	}
}

// BenchmarkInsertEvents inserts 100k-row batches of realistic events and
// reports rows/s.
func BenchmarkInsertEvents(b *testing.B) {
	s := openTest(b, nil)
	ctx := context.Background()
	const batch = 100_000
	evs := make([]*event.Event, batch)
	for i := range evs {
		e := sampleEvent(i)
		e.Time = baseTime.Add(-time.Duration(batch-i) * 10 * time.Millisecond)
		e.Actor.ID = fmt.Sprintf("user-%04d", i%5000)
		e.Data.Subjects = []string{subjectID(i), subjectID(i + 7)}
		evs[i] = e
	}
	b.ResetTimer()
	start := time.Now()
	for n := range b.N {
		for _, e := range evs {
			e.Origin.Offset += batch // new offsets each round
		}
		_ = n
		if err := s.InsertEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "rows/s")
}
