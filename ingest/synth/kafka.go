package synth

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// ProduceBatch is how many messages Produce hands to one WriteMessages
// call.
const ProduceBatch = 4096

// Produce writes the next n events of g to w (all remaining ones when n <=
// 0), keyed by actor, in batches of ProduceBatch messages, and calls
// progress (when not nil) after each batch with the number sent so far.
// The writer's topic, balancer and acks are the caller's choice (a
// kafka.Hash balancer keeps an actor's events on one partition). It stops
// at the first write error or when ctx is done.
func Produce(ctx context.Context, w *kafka.Writer, g *Generator, n int, progress func(sent int)) error {
	msgs := make([]kafka.Message, 0, ProduceBatch)
	// The JSON of a batch lives in one arena, reused once a synchronous
	// WriteMessages has returned; an Async writer still holds the
	// messages, so it gets a fresh arena for every batch.
	arena := make([]byte, 0, ProduceBatch*700)
	var buf []byte
	sent := 0
	for n <= 0 || sent < n {
		if err := ctx.Err(); err != nil {
			return err
		}
		msgs, arena = msgs[:0], arena[:0]
		if w.Async {
			msgs, arena = make([]kafka.Message, 0, ProduceBatch), make([]byte, 0, ProduceBatch*700)
		}
		for len(msgs) < ProduceBatch && (n <= 0 || sent+len(msgs) < n) {
			key, val, ok := g.Next(buf)
			buf = val
			if !ok {
				break
			}
			off := len(arena)
			if cap(arena)-off < len(val) {
				// Do not grow arena in place: earlier messages point
				// into it. Start a new one for the rest of the batch.
				arena = make([]byte, 0, max(ProduceBatch*700, 2*len(val)))
				off = 0
			}
			arena = append(arena, val...)
			msgs = append(msgs, kafka.Message{Key: key, Value: arena[off:len(arena):len(arena)]})
		}
		if len(msgs) == 0 {
			break
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("produce synthetic events (%d sent): %w", sent, err)
		}
		sent += len(msgs)
		if progress != nil {
			progress(sent)
		}
	}
	return nil
}

// ProduceSubjects writes g's subject status changes to w, keyed by
// subject.
func ProduceSubjects(ctx context.Context, w *kafka.Writer, g *Generator) error {
	subs := g.SubjectStatuses()
	msgs := make([]kafka.Message, len(subs))
	for i, s := range subs {
		msgs[i] = kafka.Message{Key: s.Key, Value: s.Value, Time: s.Time}
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce subject statuses: %w", err)
	}
	return nil
}
