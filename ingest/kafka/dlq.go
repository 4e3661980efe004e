package kafka

import (
	"context"
	"fmt"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Dead-letter headers added to every message sent to the dead-letter topic,
// beside the original message's own headers.
const (
	HeaderReason    = "custos.dlq.reason"    // short label, e.g. "missing"
	HeaderField     = "custos.dlq.field"     // JSON path of the bad field, if any
	HeaderError     = "custos.dlq.error"     // the full, human-readable error
	HeaderTopic     = "custos.dlq.topic"     // original topic
	HeaderPartition = "custos.dlq.partition" // original partition
	HeaderOffset    = "custos.dlq.offset"    // original offset
	HeaderTime      = "custos.dlq.time"      // when it was dead-lettered (RFC 3339)
)

// messageWriter is the part of kafka-go's Writer the dead-letter queue uses.
type messageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafkago.Message) error
}

var _ messageWriter = (*kafkago.Writer)(nil)

// deadLetter builds the dead-letter copy of m: the original key, value and
// headers, plus the reason and where it came from.
func deadLetter(m *kafkago.Message, err error, now time.Time) kafkago.Message {
	reason, field := reasonOf(err)
	h := make([]kafkago.Header, 0, len(m.Headers)+7)
	h = append(h, m.Headers...)
	h = append(h,
		kafkago.Header{Key: HeaderReason, Value: []byte(reason)},
		kafkago.Header{Key: HeaderField, Value: []byte(field)},
		kafkago.Header{Key: HeaderError, Value: []byte(err.Error())},
		kafkago.Header{Key: HeaderTopic, Value: []byte(m.Topic)},
		kafkago.Header{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
		kafkago.Header{Key: HeaderOffset, Value: strconv.AppendInt(nil, m.Offset, 10)},
		kafkago.Header{Key: HeaderTime, Value: []byte(now.UTC().Format(time.RFC3339Nano))},
	)
	return kafkago.Message{Key: m.Key, Value: m.Value, Headers: h}
}

// sendDeadLetters writes msgs to the dead-letter topic, retrying with
// backoff until it succeeds or ctx ends: a message is never skipped without
// having been dead-lettered.
func sendDeadLetters(ctx context.Context, w messageWriter, msgs []kafkago.Message) error {
	backoff := 100 * time.Millisecond
	for {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("write %d dead letters: %w", len(msgs), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
