//go:build integration

package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/ingest/pseudonym"
)

// TestConsentAcrossProcesses runs two pipelines in one consumer group: the
// group gives the one-partition subjects topic to one of them, yet an
// opt-out must reach both, since a share of an opted-out subject can be
// read by either. The status is produced once; the pipeline that does not
// hold the subjects partition learns it from its status follower, and a
// share of that subject by an actor of its own partitions raises exactly
// one subject_opted_out alert.
func TestConsentAcrossProcesses(t *testing.T) {
	cfg := testConfig(t, "consent")
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, cfg.Kafka.Brokers, 30*time.Second, topicSpecs(cfg)...); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, cfg)
	w := newXprocWorld()
	a, _ := startService(t, cfg)
	b, _ := startService(t, cfg)
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

	// The opt-out, through the subjects topic.
	const subject = "cust-0777777"
	const use = "marketing.communications.email"
	optOut := w.start.Add(8 * time.Hour)
	status, err := json.Marshal(map[string]any{"subject": subject, "time": optOut.Format(time.RFC3339Nano), "status": "opted_out", "uses": []string{use}})
	if err != nil {
		t.Fatal(err)
	}
	sw := &kafkago.Writer{Addr: kafkago.TCP(cfg.Kafka.Brokers...), Transport: kafka.NewTransport(), Topic: cfg.Kafka.SubjectsTopic,
		Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer sw.Close()
	if err := sw.WriteMessages(ctx, kafkago.Message{Key: []byte(subject), Value: status}); err != nil {
		t.Fatal(err)
	}
	waitCount(t, conn, "SELECT count() FROM subject_status", 1, time.Minute)
	holder, other := a, b
	if _, _, st := b.writer.Counts(); st > 0 {
		holder, other = b, a
	}
	if _, _, st := holder.writer.Counts(); st != 1 {
		t.Fatalf("the holder of the subjects partition stored %d statuses, want 1", st)
	}

	// Both registries know the opt-out: the holder through the group, the
	// other through its follower.
	keyed, err := pseudonym.New([]byte(cfg.PseudonymKey))
	if err != nil {
		t.Fatal(err)
	}
	pseudo := keyed.Subject(subject)
	at := optOut.Add(time.Hour)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out1, _ := holder.pipeline.consent.Check([]string{pseudo}, use, at)
		out2, _ := other.pipeline.consent.Check([]string{pseudo}, use, at)
		if out1 == 1 && out2 == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("opted out in the holder's registry: %d, in the other's: %d; want 1 and 1", out1, out2)
		}
	}

	// A share of the subject by an actor of the other pipeline's partitions.
	wr := &kafkago.Writer{Addr: kafkago.TCP(cfg.Kafka.Brokers...), Transport: kafka.NewTransport(), Topic: cfg.Kafka.EventsTopic,
		Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer wr.Close()
	if err := wr.WriteMessages(ctx, w.probe(t)...); err != nil {
		t.Fatal(err)
	}
	waitCount(t, conn, "SELECT count() FROM events", int64(len(w.actors)), time.Minute)
	// The rows are visible in ClickHouse a moment before the writer counts
	// them as stored.
	actor := ""
	for deadline := time.Now().Add(10 * time.Second); actor == ""; time.Sleep(20 * time.Millisecond) {
		for p := range other.writer.PartitionCounts() {
			actor = w.actors[p.Partition]
			break
		}
		if actor == "" && time.Now().After(deadline) {
			t.Fatal("the other pipeline stored none of the probe events")
		}
	}
	msg := w.email(t, actor, at, "user.contact.email")
	var ev map[string]any
	if err := json.Unmarshal(msg.Value, &ev); err != nil {
		t.Fatal(err)
	}
	ev["data"].(map[string]any)["subjects"] = []string{subject, "cust-0000001"}
	if msg.Value, err = json.Marshal(ev); err != nil {
		t.Fatal(err)
	}
	if err := wr.WriteMessages(ctx, msg); err != nil {
		t.Fatal(err)
	}
	waitCount(t, conn, "SELECT count() FROM events", int64(len(w.actors))+1, time.Minute)
	waitCount(t, conn, "SELECT count() FROM alerts WHERE rule = 'subject_opted_out'", 1, 30*time.Second)
	time.Sleep(time.Second)
	if n := queryInt(t, conn, "SELECT uniqExact(alert_id) FROM alerts WHERE rule = 'subject_opted_out'"); n != 1 {
		t.Fatalf("%d subject_opted_out alerts, want 1", n)
	}
	var summary string
	if err := conn.QueryRow(ctx, "SELECT summary FROM alerts WHERE rule = 'subject_opted_out' LIMIT 1").Scan(&summary); err != nil {
		t.Fatal(err)
	}
	t.Logf("alert raised by the pipeline without the subjects partition (actor %s): %s", actor, summary)
}
