//go:build integration

package synth_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/synth"
)

// TestProduceRealKafka produces a synthetic stream to a fresh topic of the
// real broker (CUSTOS_KAFKA_BROKERS, default 127.0.0.1:9092) and reads it
// back: every event arrives once, keyed by its actor.
func TestProduceRealKafka(t *testing.T) {
	broker := "127.0.0.1:9092"
	if b := os.Getenv("CUSTOS_KAFKA_BROKERS"); b != "" {
		broker = strings.Split(b, ",")[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := "custos.synth.test." + strconv.FormatInt(time.Now().UnixNano(), 36)

	conn, err := kafka.DialContext(ctx, "tcp", broker)
	if err != nil {
		t.Fatalf("dial Kafka at %s (start it with make services): %v", broker, err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: 3, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc.DeleteTopics(topic) }()

	g, err := synth.New(synth.Config{Events: 20_000, Incidents: true})
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchSize: synth.ProduceBatch}
	defer w.Close()
	var last int
	// Topic metadata may take a moment to reach every broker.
	for attempt := 0; ; attempt++ {
		err = synth.Produce(ctx, w, g, 1000, func(sent int) { last = sent })
		if err == nil || attempt == 20 {
			break
		}
		time.Sleep(250 * time.Millisecond)
		g, _ = synth.New(synth.Config{Events: 20_000, Incidents: true})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Produce(ctx, w, g, 0, func(sent int) { last = sent }); err != nil {
		t.Fatal(err)
	}
	want := g.Total()
	if last+1000 != want {
		t.Fatalf("progress reported %d+1000, want %d", last, want)
	}

	n := 0
	for p := range 3 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: p, MaxWait: 200 * time.Millisecond})
		end, err := kafka.DialLeader(ctx, "tcp", broker, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := end.ReadLastOffset()
		end.Close()
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < last; off++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var e struct {
				Actor struct{ ID string } `json:"actor"`
			}
			if err := json.Unmarshal(m.Value, &e); err != nil || e.Actor.ID != string(m.Key) {
				t.Fatalf("message %d/%d: key %q, actor %q, %v", p, m.Offset, m.Key, e.Actor.ID, err)
			}
			n++
		}
		r.Close()
	}
	if n != want {
		t.Fatalf("read %d events back, want %d", n, want)
	}
}
