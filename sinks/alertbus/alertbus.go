// Package alertbus publishes alerts to a Kafka topic as JSON, one message
// per alert keyed by the alert id, so downstream consumers (ticketing,
// Alertmanager bridges) can deduplicate re-deliveries by key.
package alertbus

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/rules"
)

// Message is the JSON form of an alert on the alerts topic.
type Message struct {
	ID          string    `json:"id"`
	Rule        string    `json:"rule"`
	Title       string    `json:"title"`
	Severity    string    `json:"severity"`
	Actor       string    `json:"actor,omitempty"`
	GroupKey    string    `json:"group_key"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Events      int64     `json:"events"`
	Records     int64     `json:"records"`
	Threshold   int64     `json:"threshold,omitempty"`
	Summary     string    `json:"summary"`
	Evidence    []string  `json:"evidence"`
	Recipient   string    `json:"recipient,omitempty"`
	EventTime   time.Time `json:"event_time"`
}

// FromAlert converts an alert to its message form.
func FromAlert(a *rules.Alert) Message {
	return Message{
		ID: a.ID, Rule: a.Rule, Title: a.Title, Severity: string(a.Severity), Actor: a.Actor,
		GroupKey: a.GroupKey, WindowStart: a.WindowStart.UTC(), WindowEnd: a.WindowEnd.UTC(),
		Events: a.Events, Records: a.Records, Threshold: a.Threshold, Summary: a.Summary,
		Evidence: a.Evidence, Recipient: a.Recipient, EventTime: a.EventTime.UTC(),
	}
}

// Publisher writes alerts to the alerts topic.
type Publisher struct {
	w *kafkago.Writer
}

// New returns a Publisher writing to topic on brokers, waiting for every
// in-sync replica (kafka-go's Writer defaults to no acknowledgement at all,
// which would lose alerts).
func New(brokers []string, topic string) *Publisher {
	return &Publisher{w: &kafkago.Writer{
		Addr: kafkago.TCP(brokers...), Transport: &kafkago.Transport{Dial: (&net.Dialer{Timeout: 3 * time.Second}).DialContext},
		Topic:        topic,
		Balancer:     &kafkago.Hash{},
		RequiredAcks: kafkago.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		MaxAttempts:  10,
	}}
}

// Publish writes alerts and returns once the broker has acknowledged all of
// them.
func (p *Publisher) Publish(ctx context.Context, alerts []*rules.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	msgs := make([]kafkago.Message, len(alerts))
	for i, a := range alerts {
		v, err := json.Marshal(FromAlert(a))
		if err != nil {
			return fmt.Errorf("encode alert %s: %w", a.ID, err)
		}
		msgs[i] = kafkago.Message{Key: []byte(a.ID), Value: v}
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d alerts to %s: %w", len(alerts), p.w.Topic, err)
	}
	return nil
}

// Close flushes and closes the writer.
func (p *Publisher) Close() error { return p.w.Close() }
