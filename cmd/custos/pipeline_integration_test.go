//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/ingest/synth"
)

// TestMain starts the real Kafka and ClickHouse through the project's own
// deploy script (a no-op when they already run). If they cannot be started
// the tests fail: they never skip.
func TestMain(m *testing.M) {
	cmd := exec.Command("bash", "../../deploy/up.sh")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "deploy/up.sh failed: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// testConfig returns a configuration isolated to its own topics, group and
// database.
func testConfig(t *testing.T, name string) *Config {
	t.Helper()
	cfg, _, err := loadConfig("test", nil, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	isolate(cfg, fmt.Sprintf("t-%s-%d", name, time.Now().UnixNano()%1e9))
	cfg.PseudonymKey = "integration-test-pseudonym-key-0123"
	cfg.Rules.Partners = "../../deploy/demo/partners.yml"
	cfg.Rules.Policy = "../../deploy/demo/policy.yml"
	cfg.HTTP = ""
	cfg.LogLevel = "warn"
	cfg.Sink.FlushInterval = 200 * time.Millisecond
	return cfg
}

// newGen returns a small synthetic day with incidents.
func newGen(t *testing.T, events int) *synth.Generator {
	t.Helper()
	g, err := synth.New(synth.Config{Seed: 3, Start: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), Events: events, Incidents: true})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func connect(t *testing.T, cfg *Config) ch.Conn {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: cfg.ClickHouse.Addr, Auth: ch.Auth{Database: cfg.ClickHouse.Database, Username: cfg.ClickHouse.Username}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.ClickHouse.Database)
		conn.Close()
	})
	return conn
}

func queryInt(t *testing.T, conn ch.Conn, q string) int64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return int64(n)
}

// runUntilStored runs the service in-process until want events are stored.
func runUntilStored(t *testing.T, cfg *Config, want int64) *service {
	t.Helper()
	ctx := context.Background()
	svc, err := newService(ctx, cfg, newLogger(cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.close)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.run(runCtx) }()
	var sent atomic.Int64
	sent.Store(want)
	err = waitStored(ctx, io.Discard, svc, want, nil, &sent)
	stop()
	if rerr := <-done; rerr != nil {
		t.Fatalf("run: %v", rerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// checkAlerts asserts one alert or more per incident, of the incident's
// kind and actor, and no alert on normal traffic (an alert of another rule
// on an incident's actor counts only if the incident lists that rule as
// also rightly firing). It also asserts that no alert version is stored
// twice: an escalation or a count update stores a new version under the
// same id (the alerts table keeps the latest), but a re-delivery must not
// repeat a version.
func checkAlerts(t *testing.T, conn ch.Conn, incidents []synth.Incident) {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		"SELECT alert_id, rule, actor_id, severity, count() FROM alerts GROUP BY alert_id, rule, actor_id, severity, events, records")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type key struct{ rule, actor string }
	got := map[key]int{}
	for rows.Next() {
		var id, rule, actor, severity string
		var n uint64
		if err := rows.Scan(&id, &rule, &actor, &severity, &n); err != nil {
			t.Fatal(err)
		}
		if n > 1 {
			t.Errorf("alert %s (%s, %s) stored %d times", id, rule, severity, n)
		}
		got[key{rule, actor}]++
	}
	want := map[key]bool{}
	also := map[key]bool{} // other rules that may rightly fire on an incident
	for _, inc := range incidents {
		want[key{string(inc.Kind), inc.Actor}] = true
		for _, k := range inc.Also {
			also[key{string(k), inc.Actor}] = true
		}
	}
	for k := range want {
		if got[k] < 1 {
			t.Errorf("incident %s by %s raised no alert", k.rule, k.actor)
		}
	}
	for k, n := range got {
		if !want[k] && !also[k] {
			t.Errorf("%d alert version(s) %s on %s, which is normal traffic", n, k.rule, k.actor)
		}
	}
}

// TestFullScenarioOnRealServices streams the generator's full scenario
// (seven days to learn from, then an incident for every built-in detection,
// subject statuses on their own topic) through real Kafka, Custos and
// ClickHouse, and checks every incident is caught and normal traffic quiet.
func TestFullScenarioOnRealServices(t *testing.T) {
	cfg := testConfig(t, "full")
	gen, err := synth.New(synth.Config{Scenario: synth.ScenarioFull, Events: 400000, Incidents: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, cfg.Kafka.Brokers, 30*time.Second, topicSpecs(cfg)...); err != nil {
		t.Fatal(err)
	}
	if _, err := produce(ctx, cfg, gen, 0, nil); err != nil {
		t.Fatal(err)
	}
	runUntilStored(t, cfg, int64(gen.Total()))
	conn := connect(t, cfg)
	checkAlerts(t, conn, gen.Incidents())
	t.Logf("%d events, %d incidents, %d alerts stored", gen.Total(), len(gen.Incidents()),
		queryInt(t, conn, "SELECT count() FROM alerts FINAL"))
}

func TestPipelineEndToEnd(t *testing.T) {
	cfg := testConfig(t, "e2e")
	gen := newGen(t, 40000)
	const invalid = 4
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, cfg.Kafka.Brokers, 30*time.Second, topicSpecs(cfg)...); err != nil {
		t.Fatal(err)
	}
	if _, err := produce(ctx, cfg, gen, invalid, nil); err != nil {
		t.Fatal(err)
	}
	total := int64(gen.Total())
	svc := runUntilStored(t, cfg, total)
	conn := connect(t, cfg)

	t.Run("metrics count what happened", func(t *testing.T) {
		hctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if err := svc.serveHTTP(hctx, "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		body := scrape(t, svc)
		for _, want := range []string{
			fmt.Sprintf("custos_events_stored_total %d", total),
			fmt.Sprintf("custos_dead_lettered_total %d", invalid),
			`custos_alerts_total{rule="bulk_export",severity="high"}`,
			`custos_messages_invalid_total{reason="missing",topic=`,
			"custos_insert_seconds_count",
			"custos_consumer_lag{",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})

	t.Run("every event stored exactly once", func(t *testing.T) {
		if n := queryInt(t, conn, "SELECT count() FROM events"); n != total {
			t.Fatalf("events rows = %d, want %d", n, total)
		}
		if n := queryInt(t, conn, "SELECT uniqExact(event_id) FROM events"); n != total {
			t.Fatalf("distinct event ids = %d, want %d", n, total)
		}
	})
	t.Run("subject ids are pseudonymised", func(t *testing.T) {
		if n := queryInt(t, conn, "SELECT count() FROM events ARRAY JOIN subjects AS s WHERE length(s) != 32 OR match(s, '[^0-9a-f]')"); n != 0 {
			t.Fatalf("%d stored subject ids are not 32-hex pseudonyms", n)
		}
		if n := queryInt(t, conn, "SELECT count() FROM subject_index"); n == 0 {
			t.Fatal("subject index is empty")
		}
	})
	t.Run("rules fire on the incidents and not on normal traffic", func(t *testing.T) {
		checkAlerts(t, conn, gen.Incidents())
	})
	t.Run("invalid messages are dead-lettered with a reason", func(t *testing.T) {
		n, reasons, err := readDeadLetters(ctx, cfg, invalid)
		if err != nil {
			t.Fatal(err)
		}
		if n != invalid {
			t.Fatalf("dead letters = %d, want %d", n, invalid)
		}
		for _, r := range reasons {
			if strings.Contains(r, "[]") || !strings.Contains(r, ":") {
				t.Errorf("dead letter without a reason: %s", r)
			}
		}
	})
	t.Run("alerts reach the alerts topic", func(t *testing.T) {
		alerts := queryInt(t, conn, "SELECT uniqExact(alert_id) FROM alerts")
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: cfg.Kafka.Brokers, Topic: cfg.Kafka.AlertsTopic, Partition: 0})
		defer r.Close()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ids := map[string]bool{}
		for int64(len(ids)) < alerts {
			m, err := r.ReadMessage(rctx)
			if err != nil {
				t.Fatalf("read alerts topic: %v (got %d of %d)", err, len(ids), alerts)
			}
			ids[string(m.Key)] = true
		}
	})
	t.Run("a second run re-delivers nothing", func(t *testing.T) {
		svc, err := newService(ctx, cfg, newLogger(cfg), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer svc.close()
		runCtx, stop := context.WithTimeout(ctx, 8*time.Second)
		defer stop()
		if err := svc.run(runCtx); err != nil {
			t.Fatal(err)
		}
		if stored, _, _ := svc.writer.Counts(); stored != 0 {
			t.Fatalf("second run stored %d events; the commit should have covered them all", stored)
		}
		if n := queryInt(t, conn, "SELECT count() FROM events"); n != total {
			t.Fatalf("events rows = %d after second run, want %d", n, total)
		}
	})
}

// scrape reads the service's registry the way /metrics serves it.
func scrape(t *testing.T, svc *service) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(svc.registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics answered %d", rec.Code)
	}
	return rec.Body.String()
}

// buildBinary builds custos once per test binary.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "custos")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startBinary runs `custos run` with cfg's isolation settings.
func startBinary(t *testing.T, bin string, cfg *Config, extra ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	args := append([]string{"run",
		"-kafka.events_topic", cfg.Kafka.EventsTopic, "-kafka.subjects_topic", cfg.Kafka.SubjectsTopic,
		"-kafka.dlq_topic", cfg.Kafka.DLQTopic, "-kafka.alerts_topic", cfg.Kafka.AlertsTopic,
		"-kafka.group", cfg.Kafka.Group, "-clickhouse.database", cfg.ClickHouse.Database,
		"-rules.partners", cfg.Rules.Partners, "-rules.policy", cfg.Rules.Policy, "-http", "", "-sink.flush_interval", "200ms",
	}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "CUSTOS_PSEUDONYM_KEY="+cfg.PseudonymKey)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &logs
}

// waitCount polls a count query until it reaches at least want.
func waitCount(t *testing.T, conn ch.Conn, q string, want int64, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var n uint64
		err := conn.QueryRow(context.Background(), q).Scan(&n)
		if err == nil && int64(n) >= want {
			return int64(n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d after %s, want %d (err %v)", q, n, timeout, want, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// committedLag returns how many events of the topic the group has not
// committed.
func committedLag(t *testing.T, cfg *Config) int64 {
	t.Helper()
	client := &kafkago.Client{Addr: kafkago.TCP(cfg.Kafka.Brokers...)}
	ctx := context.Background()
	parts := make([]int, cfg.Kafka.Partitions)
	var reqs []kafkago.OffsetRequest
	for i := range parts {
		parts[i] = i
		reqs = append(reqs, kafkago.LastOffsetOf(i))
	}
	fetched, err := client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: cfg.Kafka.Group, Topics: map[string][]int{cfg.Kafka.EventsTopic: parts}})
	if err != nil {
		t.Fatal(err)
	}
	ends, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{cfg.Kafka.EventsTopic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	var lag int64
	for _, p := range ends.Topics[cfg.Kafka.EventsTopic] {
		committed := int64(0)
		for _, f := range fetched.Topics[cfg.Kafka.EventsTopic] {
			if f.Partition == p.Partition && f.CommittedOffset > 0 {
				committed = f.CommittedOffset
			}
		}
		lag += p.LastOffset - committed
	}
	return lag
}

// TestKillBetweenInsertAndCommit stops the real binary with SIGKILL after
// its rows are in ClickHouse but before it committed any offset (commits
// are held back by a long commit interval), restarts it, and checks that
// nothing is lost or duplicated, alerts included: after everything is
// stored, in the middle of the stream, and on the full scenario's last day,
// where the restarted process must seed baselines and first-seen terms from
// ClickHouse and rebuild its windows to catch every incident once and stay
// quiet on normal traffic.
func TestKillBetweenInsertAndCommit(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		name     string
		gen      func(t *testing.T) *synth.Generator
		fraction float64 // share of the stream stored before the kill
	}{
		{"after everything is stored", func(t *testing.T) *synth.Generator { return newGen(t, 30000) }, 1},
		{"in the middle of the stream", func(t *testing.T) *synth.Generator { return newGen(t, 200000) }, 0.4},
		// Seven of eight days are ~88% of the events: kill a little before.
		{"on the last day of the full scenario", func(t *testing.T) *synth.Generator {
			g, err := synth.New(synth.Config{Scenario: synth.ScenarioFull, Events: 400000, Incidents: true})
			if err != nil {
				t.Fatal(err)
			}
			return g
		}, 0.85},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "kill")
			cfg.Kafka.BatchSize = 500
			gen := tc.gen(t)
			total := int64(gen.Total())
			ctx := context.Background()
			if err := kafka.EnsureTopics(ctx, cfg.Kafka.Brokers, 30*time.Second, topicSpecs(cfg)...); err != nil {
				t.Fatal(err)
			}
			if _, err := produce(ctx, cfg, gen, 0, nil); err != nil {
				t.Fatal(err)
			}
			cmd, logs := startBinary(t, bin, cfg, "-kafka.commit_interval", "1h")
			conn := connect(t, cfg)
			waitCount(t, conn, "SELECT count() FROM events", int64(tc.fraction*float64(total)), 3*time.Minute)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if lag := committedLag(t, cfg); lag != total {
				t.Fatalf("before restart the group has committed %d events, want 0 (the kill came before any commit)\n%s", total-lag, logs)
			}
			before := queryInt(t, conn, "SELECT count() FROM events")

			cmd2, logs2 := startBinary(t, bin, cfg)
			waitCount(t, conn, "SELECT count() FROM events", total, 3*time.Minute)
			deadline := time.Now().Add(time.Minute)
			for committedLag(t, cfg) != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("restarted consumer did not commit everything\n%s", logs2)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err := cmd2.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := cmd2.Wait(); err != nil {
				t.Fatalf("graceful stop: %v\n%s", err, logs2)
			}
			t.Logf("stored before kill: %d of %d", before, total)
			if tc.fraction < 1 && before >= total {
				t.Fatalf("the kill came after all %d events were stored: the case no longer tests a kill mid-stream", total)
			}
			if n := queryInt(t, conn, "SELECT count() FROM events"); n != total {
				t.Fatalf("events rows = %d, want %d: re-delivery duplicated or lost rows", n, total)
			}
			if n := queryInt(t, conn, "SELECT uniqExact(event_id) FROM events"); n != total {
				t.Fatalf("distinct events = %d, want %d", n, total)
			}
			checkAlerts(t, conn, gen.Incidents())
		})
	}
}
