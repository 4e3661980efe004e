//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/ingest/synth"
	"github.com/custos-privacy/custos/sinks/writer"
)

// xprocWorld is the traffic of TestSharedRulesAcrossProcesses: six
// actors, one on each partition of the events topic. A probe share from
// each first shows which pipeline holds which partitions. Then, for eight
// days, the actors of the three partitions one pipeline holds (the
// history half) send acme-analytics 2,000 records each a day (6,000 a
// day in all: its bound becomes 4 × 6,000), and all six send mailwave
// contact emails. On the ninth day each of the six sends acme-analytics
// 6,000 records (36,000 in all, above the bound; 18,000 through either
// pipeline, under it) and mailwave a category it never received.
type xprocWorld struct {
	actors  [6]string // actors[p] is keyed to partition p
	start   time.Time
	usual   int64 // records a day from each actor of the history half to acme-analytics
	spike   int64 // from each actor on the ninth day
	newTerm string
	n       int
}

func newXprocWorld() *xprocWorld {
	w := &xprocWorld{start: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), usual: 2000, spike: 6000, newTerm: "user.contact.phone_number"}
	parts := []int{0, 1, 2, 3, 4, 5}
	found := 0
	for i := 0; found < 6; i++ {
		name := fmt.Sprintf("svc-sync-%d", i)
		p := (&kafkago.Hash{}).Balance(kafkago.Message{Key: []byte(name)}, parts...)
		if w.actors[p] == "" {
			w.actors[p] = name
			found++
		}
	}
	return w
}

// share is one share of actor at time at.
func (w *xprocWorld) share(t *testing.T, actor string, at time.Time, domain, recipient, purpose, category string, records int64) kafkago.Message {
	t.Helper()
	w.n++
	ev := map[string]any{
		"event_id": fmt.Sprintf("xproc-%06d", w.n), "time": at.Format(time.RFC3339Nano), "type": "share", "action": "transfer",
		"actor":  map[string]any{"id": actor, "kind": "service", "role": "integration", "department": "it"},
		"source": map[string]any{"system": "crm", "dataset": "customers"},
		"data": map[string]any{"categories": []string{category}, "records": records,
			"subjects": []string{fmt.Sprintf("cust-%07d", w.n)}, "subjects_truncated": true, "subject_kinds": []string{"customer"}},
		"recipient": map[string]any{"id": recipient, "domain": domain, "country": "IE", "kind": "processor"},
		"channel":   map[string]any{"kind": "api", "encrypted": true},
		"purpose":   purpose, "legal_basis": "contract",
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var check event.Event
	if err := event.NewDecoder(event.Limits{}).Decode(b, nil, &check); err != nil {
		t.Fatalf("test event invalid: %v", err)
	}
	return kafkago.Message{Key: []byte(actor), Value: b}
}

func (w *xprocWorld) email(t *testing.T, actor string, at time.Time, category string) kafkago.Message {
	return w.share(t, actor, at, "api.mailwave.io", "mailwave", "marketing.communications.email", category, 50)
}

func (w *xprocWorld) transfer(t *testing.T, actor string, at time.Time, records int64) kafkago.Message {
	return w.share(t, actor, at, "api.acme-analytics.com", "acme-analytics", "analytics.reporting", "user.behavior", records)
}

// probe is a contact email from every actor on the first day.
func (w *xprocWorld) probe(t *testing.T) []kafkago.Message {
	var msgs []kafkago.Message
	for p, a := range w.actors {
		msgs = append(msgs, w.email(t, a, w.start.Add(9*time.Hour+time.Duration(p)*time.Minute), "user.contact.email"))
	}
	return msgs
}

// days returns the events of days from to to-1, the actors of the
// partitions in history sending acme-analytics their usual volume.
func (w *xprocWorld) days(t *testing.T, from, to int, history map[int32]bool) []kafkago.Message {
	var msgs []kafkago.Message
	for d := from; d < to; d++ {
		day := w.start.AddDate(0, 0, d)
		for p, a := range w.actors {
			switch {
			case d == 8:
				msgs = append(msgs, w.transfer(t, a, day.Add(10*time.Hour+time.Duration(p)*time.Minute), w.spike))
			case history[int32(p)]:
				msgs = append(msgs, w.transfer(t, a, day.Add(10*time.Hour+time.Duration(p)*time.Minute), w.usual))
			}
			msgs = append(msgs, w.email(t, a, day.Add(11*time.Hour+time.Duration(p)*time.Minute), "user.contact.email"))
			if d == 8 {
				msgs = append(msgs, w.email(t, a, day.Add(12*time.Hour+time.Duration(p)*time.Minute), w.newTerm))
			}
		}
	}
	return msgs
}

// gauge reads a gauge or counter of the service's registry, summed over
// its labels (0 when absent).
func gauge(t *testing.T, svc *service, name string) float64 {
	t.Helper()
	mfs, err := svc.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if g := m.GetGauge(); g != nil {
				v += g.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				v += c.GetValue()
			}
		}
	}
	return v
}

// startService runs a service in-process until the returned stop is
// called; stop waits for it to drain.
func startService(t *testing.T, cfg *Config) (*service, func()) {
	t.Helper()
	svc, err := newService(context.Background(), cfg, newLogger(cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		svc.close()
	}
	t.Cleanup(stop)
	return svc, stop
}

// alertVersions returns the stored versions of rule's alerts, by alert
// id, with the group key and the summary of the last one read.
func alertVersions(t *testing.T, conn ch.Conn, rule string) map[string]alertSeen {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT alert_id, group_key, summary FROM alerts WHERE rule = @rule", ch.Named("rule", rule))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]alertSeen{}
	for rows.Next() {
		var id, key, summary string
		if err := rows.Scan(&id, &key, &summary); err != nil {
			t.Fatal(err)
		}
		a := out[id]
		a.key, a.summary, a.versions = key, summary, a.versions+1
		out[id] = a
	}
	return out
}

type alertSeen struct {
	key, summary string
	versions     int
}

// TestSharedRulesAcrossProcesses runs two pipelines in one consumer group
// on a six-partition events topic, each holding three partitions (see
// xprocWorld). A partner's volume spike is spread over actors of every
// partition, so that neither pipeline alone sees enough of it to cross the
// partner's bound (with per-process state, the one holding the partner's
// history sees 18,000 records against a bound of 24,000 and the other has
// no history to judge by: both stay silent), and a category new to
// another partner is sent by an actor of every partition (with
// per-process state, each pipeline would raise it). With the shared rules
// repartitioned by group key, the spike raises exactly one
// partner_volume_spike alert and the new category exactly one
// first_seen_category alert.
func TestSharedRulesAcrossProcesses(t *testing.T) {
	cfg := testConfig(t, "xproc")
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, cfg.Kafka.Brokers, 30*time.Second, topicSpecs(cfg)...); err != nil {
		t.Fatal(err)
	}
	w := newXprocWorld()
	conn := connect(t, cfg)

	a, stopA := startService(t, cfg)
	b, stopB := startService(t, cfg)
	// Both members hold three events partitions each (6 events + 1
	// subjects). A member that joined first holds everything until the
	// group rebalances, so wait for the final split, not for any split.
	deadline := time.Now().Add(time.Minute)
	for {
		na, nb := gauge(t, a, "custos_partitions_assigned"), gauge(t, b, "custos_partitions_assigned")
		if na >= 3 && nb >= 3 && na+nb == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two pipelines did not share the partitions: %v and %v", na, nb)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wr := &kafkago.Writer{Addr: kafkago.TCP(cfg.Kafka.Brokers...), Transport: kafka.NewTransport(), Topic: cfg.Kafka.EventsTopic,
		Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer wr.Close()
	sent := int64(0)
	send := func(msgs []kafkago.Message) {
		t.Helper()
		if err := wr.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		sent += int64(len(msgs))
		waitCount(t, conn, "SELECT count() FROM events", sent, 2*time.Minute)
		// Applied by the shared stage before anything else is sent: a
		// partition's later day must not be judged before another
		// partition's earlier days arrived.
		for deadline := time.Now().Add(time.Minute); repartitionLag(t, cfg) != 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the shared stage did not apply what was sent")
			}
		}
	}
	// The group may still rebalance once after both joined (a member that
	// joined first can be reassigned while it rebuilds): probe until each
	// pipeline has stored events of three partitions of its own.
	history := map[int32]bool{}
	for probes := 0; ; probes++ {
		send(w.probe(t))
		history = map[int32]bool{}
		for p := range a.writer.PartitionCounts() {
			history[p.Partition] = true
		}
		if len(history) == 3 && len(b.writer.PartitionCounts()) == 3 {
			break
		}
		if probes == 20 {
			t.Fatalf("pipeline A holds partitions %v, B %v: the test needs three each", history, b.writer.PartitionCounts())
		}
		time.Sleep(250 * time.Millisecond)
	}
	send(w.days(t, 0, 8, history))
	if n := queryInt(t, conn, "SELECT count() FROM alerts WHERE rule IN ('partner_volume_spike', 'first_seen_category')"); n != 0 {
		t.Fatalf("%d alerts on the history", n)
	}
	send(w.days(t, 8, 9, history))
	time.Sleep(2 * time.Second) // a second alert would come now
	stopA()
	stopB()

	// The precondition: each pipeline held its own partitions, and saw less
	// of the spike than the partner's bound (4 × its usual day).
	ca, cb := a.writer.PartitionCounts(), b.writer.PartitionCounts()
	bound := 4 * 3 * w.usual
	for _, side := range []struct {
		name        string
		mine, other map[writer.Partition]int64
	}{{"A", ca, cb}, {"B", cb, ca}} {
		var seen int64
		for p := range side.mine {
			if _, both := side.other[p]; both {
				t.Fatalf("partition %d was processed by both pipelines (a rebalance during the test)", p.Partition)
			}
			seen += w.spike
		}
		if len(side.mine) == 0 || seen > bound {
			t.Fatalf("pipeline %s held %d partitions and saw %d records of the spike (bound %d): the test needs each to see less",
				side.name, len(side.mine), seen, bound)
		}
		t.Logf("pipeline %s held %d events partitions and saw %d of the %d records of the spike", side.name, len(side.mine), seen,
			int64(len(w.actors))*w.spike)
	}

	spikes := alertVersions(t, conn, "partner_volume_spike")
	for id, a := range spikes {
		if len(spikes) != 1 || a.key != "acme-analytics" || a.versions != 1 {
			t.Errorf("partner_volume_spike alerts: %s %+v (of %d), want one alert on acme-analytics, stored once", id, a, len(spikes))
		}
		t.Logf("partner_volume_spike: %s", a.summary)
	}
	terms := alertVersions(t, conn, "first_seen_category")
	for id, a := range terms {
		if len(terms) != 1 || a.key != "mailwave" || !strings.Contains(a.summary, w.newTerm) || a.versions != 1 {
			t.Errorf("first_seen_category alerts: %s %+v (of %d), want one alert on mailwave for %s, stored once", id, a, len(terms), w.newTerm)
		}
	}
	if len(spikes) != 1 || len(terms) != 1 {
		t.Errorf("%d partner_volume_spike and %d first_seen_category alerts, want one each", len(spikes), len(terms))
	}
	if n := queryInt(t, conn, "SELECT count() FROM alerts WHERE rule = 'first_seen_country'"); n != 0 {
		t.Errorf("%d first_seen_country alerts: every country was learnt", n)
	}
	if n := queryInt(t, conn, "SELECT uniqExact(event_id) FROM events"); n != sent {
		t.Errorf("%d distinct events stored, want %d", n, sent)
	}
	if v := gauge(t, a, "custos_shared_forwarded_total") + gauge(t, b, "custos_shared_forwarded_total"); v < float64(sent) {
		t.Errorf("%v contributions forwarded for %d shares", v, sent)
	}
}

// TestSharedStageTakeover runs the full scenario through two custos
// processes in one consumer group and kills one of them with SIGKILL on
// the scenario's last day, where the incidents are, while both apply
// contributions to the shared rules. The survivor takes over the dead
// one's events partitions and its partitions of the repartition topic,
// rebuilding their state from ClickHouse and the topic's tail: every
// event must be stored once, every incident alerted, nothing alerted on
// normal traffic, and no alert version stored twice.
func TestSharedStageTakeover(t *testing.T) {
	bin := buildBinary(t)
	cfg := testConfig(t, "takeover")
	gen, err := synth.New(synth.Config{Scenario: synth.ScenarioFull, Events: 400000, Incidents: true})
	if err != nil {
		t.Fatal(err)
	}
	total := int64(gen.Total())
	first := int(0.86 * float64(total)) // the seven days to learn from, less a little
	ctx := context.Background()
	conn := connect(t, cfg)
	// Migrate first: two processes migrating a fresh database at once race.
	if out, err := exec.Command(bin, "migrate", "-clickhouse.database", cfg.ClickHouse.Database, "-kafka.events_topic", cfg.Kafka.EventsTopic,
		"-kafka.subjects_topic", cfg.Kafka.SubjectsTopic, "-kafka.dlq_topic", cfg.Kafka.DLQTopic, "-kafka.alerts_topic", cfg.Kafka.AlertsTopic,
		"-http", "").CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	w := &kafkago.Writer{Addr: kafkago.TCP(cfg.Kafka.Brokers...), Transport: kafka.NewTransport(), Topic: cfg.Kafka.EventsTopic,
		Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll, BatchSize: 2000, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	sw := &kafkago.Writer{Addr: kafkago.TCP(cfg.Kafka.Brokers...), Transport: kafka.NewTransport(), Topic: cfg.Kafka.SubjectsTopic,
		Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer sw.Close()
	if err := synth.ProduceSubjects(ctx, sw, gen); err != nil {
		t.Fatal(err)
	}
	if err := synth.Produce(ctx, w, gen, first, nil); err != nil {
		t.Fatal(err)
	}
	// The subject statuses are stored before the second process starts: a
	// process seeds its consent registry from storage when it starts, and
	// only the owner of the subjects topic's partition hears of later ones.
	survivor, slogs := startBinary(t, bin, cfg, "-kafka.batch_size", "1000")
	waitCount(t, conn, "SELECT count() FROM subject_status", int64(len(gen.SubjectStatuses())), time.Minute)
	victim, vlogs := startBinary(t, bin, cfg, "-kafka.batch_size", "1000")
	defer func() {
		if t.Failed() {
			t.Logf("killed process:\n%s\nsurvivor:\n%s", shared(vlogs.String()), shared(slogs.String()))
		}
	}()
	// Both hold partitions of both topics and have applied the history.
	waitCount(t, conn, "SELECT count() FROM events", int64(first), 3*time.Minute)
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(vlogs.String(), "msg=\"partition assigned\" component=records") || !strings.Contains(vlogs.String(), "msg=\"partition assigned\" topic=") ||
		repartitionLag(t, cfg) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the second process never held partitions of both topics, or the history was not applied (lag %d)", repartitionLag(t, cfg))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The last day, and a kill in its middle.
	produced := make(chan error, 1)
	go func() { produced <- synth.Produce(ctx, w, gen, 0, nil) }()
	waitCount(t, conn, "SELECT count() FROM events", int64(first)+(total-int64(first))*3/5, 3*time.Minute)
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = victim.Wait()
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	before := queryInt(t, conn, "SELECT count() FROM events")
	sharedAlerts := queryInt(t, conn, "SELECT count() FROM alerts WHERE rule IN ('partner_volume_spike', 'first_seen_category', 'first_seen_country')")
	t.Logf("killed with %d of %d events stored, %d shared rules' alert versions", before, total, sharedAlerts)
	if before >= total {
		t.Fatal("the kill came after every event was stored: the test no longer kills mid-stream")
	}
	waitCount(t, conn, "SELECT count() FROM events", total, 3*time.Minute)
	deadline = time.Now().Add(2 * time.Minute)
	for committedLag(t, cfg) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the survivor did not commit everything")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := survivor.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := survivor.Wait(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if n := queryInt(t, conn, "SELECT count() FROM events"); n != total {
		t.Fatalf("events rows = %d, want %d", n, total)
	}
	if n := queryInt(t, conn, "SELECT uniqExact(event_id) FROM events"); n != total {
		t.Fatalf("distinct events = %d, want %d", n, total)
	}
	if !strings.Contains(slogs.String(), "msg=\"shared rules' state rebuilt\" component=shared-stage partitions=6") {
		t.Errorf("the survivor never took over every partition of the repartition topic")
	}
	if strings.Contains(slogs.String(), "not yet applied reach further back") {
		t.Errorf("the survivor's rebuild did not cover the unapplied stored events")
	}
	for _, l := range strings.Split(slogs.String(), "\n") {
		if strings.Contains(l, "shared rules' state rebuilt") {
			t.Logf("survivor: %s", l[strings.Index(l, "msg="):])
		}
	}
	checkAlerts(t, conn, gen.Incidents())
	if lag := repartitionLag(t, cfg); lag != 0 {
		t.Errorf("%d contributions not consumed by the shared stage", lag)
	}
}

// repartitionLag is how many records of the repartition topic the shared
// group has not committed.
func repartitionLag(t *testing.T, cfg *Config) int64 {
	t.Helper()
	topic := cfg.Kafka.Repartition()
	parts := make([]int, cfg.Kafka.Partitions)
	for i := range parts {
		parts[i] = i
	}
	committed, err := kafka.CommittedOffsets(context.Background(), cfg.Kafka.Brokers, cfg.Kafka.SharedGroup(), topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	_, ends, err := kafka.Bounds(context.Background(), cfg.Kafka.Brokers, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	var lag int64
	for p, end := range ends {
		lag += end - max(committed[p].Offset, 0)
	}
	return lag
}

// shared keeps the log lines of the shared stage and of the generations.
func shared(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "shared") || strings.Contains(l, "generation") || strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
