//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/rules"
	"github.com/custos-privacy/custos/sinks/clickhouse"
)

// restartRules are rule files of the restart test, besides the shipped
// ones: an hourly baseline and a baseline over Berlin's calendar days, to
// check that seeding follows a rule's own period, history and time zone.
const restartRules = `
rules:
  - id: it_hourly_downloads
    title: Downloads far above the actor's usual hour
    description: Hourly baseline of downloaded records (restart test).
    severity: medium
    owner: it
    kind: baseline
    condition: event.action == "download" && event.outcome == "success"
    allowed_lateness: 5m
    baseline: {period: 1h, history: 14d, min_history: 5, min_volume: 500, factor: 4, mads: 8}
    summary: "{{.Actor}} downloaded {{.Value}} records this {{.Period}}."
  - id: it_berlin_queries
    title: Queries far above the actor's usual Berlin day
    description: Baseline of queried records per calendar day in Berlin (restart test).
    severity: low
    owner: it
    kind: baseline
    condition: event.action == "query" && event.outcome == "success"
    baseline: {period: 1d, history: 28d, timezone: Europe/Berlin, min_history: 5, min_volume: 1000, factor: 4, mads: 8}
    summary: "{{.Actor}} queried {{.Value}} records on one Berlin day."
`

// restartActor and restartService are the test's actors: an analyst who
// exports, downloads and queries, and the billing service that shares
// with the partner payflux (deploy/demo/partners.yml).
const (
	restartActor   = "fs-alice"
	restartService = "fs-svc-billing"
)

// restartDay0 is the first day of the learning period.
var restartDay0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// restartEvents builds the test's events as contract JSON.
type restartEvents struct {
	msgs []kafkago.Message
}

func (re *restartEvents) add(key string, ev map[string]any) {
	ev["event_id"] = fmt.Sprintf("fs-%s-%d", key, len(re.msgs))
	value, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	re.msgs = append(re.msgs, kafkago.Message{Key: []byte(key), Value: value})
}

// access is an access of restartActor at day d plus at.
func (re *restartEvents) access(d int, at time.Duration, action, system, dataset string, records int) {
	re.add(restartActor, map[string]any{
		"time": restartDay0.AddDate(0, 0, d).Add(at).Format(time.RFC3339), "type": "access", "action": action,
		"actor":  map[string]any{"id": restartActor, "role": "fs_analyst", "department": "finance"},
		"source": map[string]any{"system": system, "dataset": dataset},
		"data":   map[string]any{"categories": []string{"user.contact.email"}, "records": records},
	})
}

// share is a transfer by restartService to payflux at day d plus at.
func (re *restartEvents) share(d int, at time.Duration, categories []string, records int) {
	re.add(restartService, map[string]any{
		"time": restartDay0.AddDate(0, 0, d).Add(at).Format(time.RFC3339), "type": "share", "action": "transfer",
		"actor":     map[string]any{"id": restartService, "kind": "service", "department": "finance"},
		"source":    map[string]any{"system": "billing", "dataset": "invoices"},
		"data":      map[string]any{"categories": categories, "records": records},
		"recipient": map[string]any{"domain": "payflux.eu", "kind": "processor", "country": "NL"},
		"channel":   map[string]any{"kind": "api", "encrypted": true},
		"purpose":   "essential.service.payment_processing", "legal_basis": "contract",
	})
}

func (re *restartEvents) produce(t *testing.T, cfg *Config) int64 {
	t.Helper()
	w := &kafkago.Writer{
		Addr: kafkago.TCP(cfg.Kafka.Brokers...), Transport: kafka.NewTransport(), Topic: cfg.Kafka.EventsTopic,
		Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll, BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	if err := w.WriteMessages(context.Background(), re.msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return int64(len(re.msgs))
}

// runBinaryUntil runs the custos binary until the events table holds want
// rows and the group has committed every event, then stops it cleanly
// (SIGTERM) and checks it exited 0.
func runBinaryUntil(t *testing.T, bin string, cfg *Config, conn ch.Conn, want int64, extra ...string) string {
	t.Helper()
	cmd, logs := startBinary(t, bin, cfg, extra...)
	waitCount(t, conn, "SELECT count() FROM events", want, 3*time.Minute)
	deadline := time.Now().Add(time.Minute)
	for committedLag(t, cfg) != 0 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("custos did not commit every event\n%s", logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, logs)
	}
	return logs.String()
}

// restartAlert is what the test reads of the stored alerts of one rule
// and group.
type restartAlert struct {
	ids         uint64
	windowStart time.Time
	eventTime   time.Time
	summary     string
}

// restartAlerts returns the stored alerts of the watched rules on the
// test's actors and partner, by "rule group_key".
func restartAlerts(t *testing.T, conn ch.Conn) map[string]restartAlert {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT rule, group_key, uniqExact(alert_id), min(window_start), min(event_time), any(summary)
		FROM alerts WHERE rule IN ('first_seen_dataset', 'first_seen_category', 'export_baseline', 'partner_volume_spike',
		'it_hourly_downloads', 'it_berlin_queries') GROUP BY rule, group_key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]restartAlert{}
	for rows.Next() {
		var rule, key string
		var a restartAlert
		if err := rows.Scan(&rule, &key, &a.ids, &a.windowStart, &a.eventTime, &a.summary); err != nil {
			t.Fatal(err)
		}
		out[rule+" "+key] = a
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRestartSeedsFirstSeenAndBaselines runs Custos over a learning
// period (ten days in which fs-alice exports from crm/customers, downloads
// and queries every day, and payflux receives user.name), stops it
// cleanly, starts a new process (empty in-memory state: only ClickHouse
// remembers), and feeds a day more. The restarted process must know what
// the first one learnt, from ClickHouse alone (its replay of recent events
// covers only the last rule window, 70 minutes):
//
//   - first_seen: the known (actor, dataset) and (partner, category) stay
//     quiet; a new dataset and a new category alert exactly once;
//   - baselines: alerts that need the history fire at once (no new
//     warm-up): the shipped export_baseline (UTC days, per actor) and
//     partner_volume_spike (shared by all partitions), an hourly baseline,
//     and a baseline over Berlin's calendar days, whose alert must be for
//     the Berlin day (exports either side of Berlin midnight are two days).
func TestRestartSeedsFirstSeenAndBaselines(t *testing.T) {
	bin := buildBinary(t)
	cfg := testConfig(t, "fsrestart")
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, cfg.Kafka.Brokers, 30*time.Second, topicSpecs(cfg)...); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "restart.yml"), []byte(restartRules), 0o644); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, cfg)
	h := time.Hour

	// Learning: ten days, more than the seven of first_seen's learning
	// period and the five active periods of every baseline's warm-up.
	var learn restartEvents
	for d := range 10 {
		learn.access(d, 10*h, "export", "crm", "customers", 1000)
		learn.access(d, 11*h+20*time.Minute, "download", "crm", "customers", 300)
		learn.access(d, 12*h, "query", "dwh", "sales", 1000)
		learn.share(d, 14*h, []string{"user.name"}, 500)
	}
	stored := learn.produce(t, cfg)
	logs1 := runBinaryUntil(t, bin, cfg, conn, stored, "-rules.dir", dir)
	if got := restartAlerts(t, conn); len(got) != 0 {
		t.Fatalf("the learning period raised alerts of the watched rules: %v\n%s", got, logs1)
	}

	// A day more, for a new process.
	var day restartEvents
	day.access(10, 10*h, "export", "crm", "customers", 1000)                  // known dataset: quiet
	day.access(10, 10*h+5*time.Minute, "export", "dwh", "payments", 100)      // new dataset: first_seen_dataset
	day.access(10, 10*h+10*time.Minute, "export", "dwh", "payments", 100)     // not again
	day.access(10, 10*h+30*time.Minute, "export", "crm", "customers", 8000)   // the day above 4 × 1,300: export_baseline
	day.access(10, 11*h+20*time.Minute, "download", "crm", "customers", 300)  // the usual hour
	day.access(10, 11*h+40*time.Minute, "download", "crm", "customers", 2500) // hour 11 above 4 × 300: it_hourly_downloads
	day.access(10, 12*h, "query", "dwh", "sales", 1000)                       // the usual Berlin day
	day.share(10, 14*h, []string{"user.name"}, 500)                           // known category: quiet
	day.share(10, 14*h+5*time.Minute, []string{"user.financial"}, 300)        // new category: first_seen_category
	day.share(10, 14*h+10*time.Minute, []string{"user.financial"}, 300)       // not again
	day.share(10, 15*h, []string{"user.name"}, 8000)                          // the day above 5,000: partner_volume_spike
	day.access(10, 22*h+30*time.Minute, "query", "dwh", "sales", 2000)        // 23:30 in Berlin: its day holds 3,000
	day.access(10, 23*h+30*time.Minute, "query", "dwh", "sales", 2000)        // 00:30 the next day in Berlin (UTC: 5,000 today)
	day.access(11, 8*h, "query", "dwh", "sales", 3000)                        // Berlin's 13 March: 5,000: it_berlin_queries
	stored += day.produce(t, cfg)
	logs2 := runBinaryUntil(t, bin, cfg, conn, stored, "-rules.dir", dir)

	got := restartAlerts(t, conn)
	at := func(d int, clock time.Duration) time.Time { return restartDay0.AddDate(0, 0, d).Add(clock) }
	for _, w := range []struct {
		rule, key    string
		eventTime    time.Time
		windowStart  time.Time // zero: not checked
		summaryHas   string
		whyItMatters string
	}{
		{"first_seen_dataset", restartActor, at(10, 10*h+5*time.Minute), time.Time{}, "dwh/payments",
			"the actor's datasets must come from ClickHouse, not a new learning period"},
		{"first_seen_category", "payflux", at(10, 14*h+5*time.Minute), time.Time{}, "user.financial",
			"the partner's categories must come from ClickHouse"},
		{"export_baseline", restartActor, at(10, 10*h+30*time.Minute), at(10, 0), "their usual day",
			"the actor's daily history must be seeded (no warm-up after a restart)"},
		{"partner_volume_spike", "payflux", at(10, 15*h), at(10, 0), "its usual day",
			"the partner's daily history must be seeded from every partition"},
		{"it_hourly_downloads", restartActor, at(10, 11*h+40*time.Minute), at(10, 11*h), "this hour",
			"the actor's hourly history must be seeded in hours"},
		{"it_berlin_queries", restartActor, at(11, 8*h), at(10, 23*h), "5000 records",
			"the history must be seeded in Berlin days, and the alert be for Berlin's 13 March"},
	} {
		a, ok := got[w.rule+" "+w.key]
		delete(got, w.rule+" "+w.key)
		switch {
		case !ok:
			t.Errorf("%s on %s: no alert after the restart: %s\n%s", w.rule, w.key, w.whyItMatters, logs2)
		case a.ids != 1:
			t.Errorf("%s on %s: %d alerts, want exactly 1", w.rule, w.key, a.ids)
		case !a.eventTime.Equal(w.eventTime):
			t.Errorf("%s on %s: raised by the event of %s, want %s (%s)", w.rule, w.key, a.eventTime, w.eventTime, a.summary)
		case !w.windowStart.IsZero() && !a.windowStart.Equal(w.windowStart):
			t.Errorf("%s on %s: period from %s, want %s (%s)", w.rule, w.key, a.windowStart, w.windowStart, a.summary)
		case !strings.Contains(a.summary, w.summaryHas):
			t.Errorf("%s on %s: summary %q lacks %q", w.rule, w.key, a.summary, w.summaryHas)
		default:
			t.Logf("%s: %s", w.rule, a.summary)
		}
	}
	for k, a := range got {
		t.Errorf("unexpected alert %s: %s", k, a.summary)
	}

	t.Run("storage totals the periods the rules use", func(t *testing.T) {
		checkStoredPeriods(t, cfg)
	})
}

// checkStoredPeriods reads the stored history of the test's hourly and
// Berlin-day rules as seeding reads it (clickhouse.Store.BaselineHistory,
// over every partition) and checks the periods: Berlin's calendar days,
// the queries of 22:30 and 23:30 UTC on 12 March in two of them, and hours.
func checkStoredPeriods(t *testing.T, cfg *Config) {
	e, err := rules.Compile([]rules.Source{{Name: "restart.yml", Data: []byte(restartRules)}}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seeds, skipped := e.BaselineSeeds()
	if len(skipped) != 0 || len(seeds) != 2 {
		t.Fatalf("seeds %v, skipped %v", seeds, skipped)
	}
	ctx := context.Background()
	store, err := clickhouse.Open(ctx, clickhouse.Config{Addr: cfg.ClickHouse.Addr, Database: cfg.ClickHouse.Database, Username: cfg.ClickHouse.Username})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	action := map[string]event.Action{"it_berlin_queries": event.ActionQuery, "it_hourly_downloads": event.ActionDownload}
	for _, sd := range seeds {
		got := map[string]int64{}
		for p := range int32(cfg.Kafka.Partitions) {
			err := store.BaselineHistory(ctx, cfg.Kafka.EventsTopic, p, sd, restartDay0.AddDate(0, 0, -1), restartDay0.AddDate(0, 0, 13),
				func(ev *event.Event, total, _ int64) error {
					if ev.Actor.ID == restartActor && ev.Action == action[sd.Rule] { // the rule's condition, as SeedBaseline tests it
						got[ev.Time.In(berlin).Format(time.DateTime)] += total
					}
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
		}
		want := map[string]int64{}
		switch sd.Rule {
		case "it_berlin_queries": // local noon of each Berlin day
			if sd.Timezone != "Europe/Berlin" || sd.Periods != 28 {
				t.Fatalf("seed %+v", sd)
			}
			for d := range 10 {
				want[restartDay0.AddDate(0, 0, d).Format(time.DateOnly)+" 12:00:00"] = 1000
			}
			want["2026-03-12 12:00:00"] = 1000 + 2000
			want["2026-03-13 12:00:00"] = 2000 + 3000
		case "it_hourly_downloads": // the start of each UTC hour
			if sd.Period != time.Hour || sd.Periods != 14*24 {
				t.Fatalf("seed %+v", sd)
			}
			for d := range 11 {
				want[restartDay0.AddDate(0, 0, d).Add(11*time.Hour).In(berlin).Format(time.DateTime)] = 300
			}
			want[restartDay0.AddDate(0, 0, 10).Add(11*time.Hour).In(berlin).Format(time.DateTime)] = 2800
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: stored periods (Berlin time) %v, want %v", sd.Rule, got, want)
		}
	}
}
