package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/rules"
)

// contributions gathers one batch's contributions to the shared rules as
// records of the repartition topic: one per event and partition of that
// topic (a learning hint to every partition), keyed by the first (rule,
// group key) it carries, then the batch's progress mark for every
// partition; values encoded back to back in one buffer.
type contributions struct {
	recs []kafka.OutRecord
	buf  []byte
	key  []byte // scratch
	err  error
}

// route adds ev's contributions.
func (out *contributions) route(ep *eventPartition, ev *event.Event) {
	n := ep.p.fwd.Partitions()
	partition := func(rule, key string) int32 {
		out.key = kafka.RouteKey(out.key[:0], rule, key)
		return kafka.PartitionFor(out.key, n)
	}
	ep.router.Route(ep.state, ev, n, partition, func(q int32, c *rules.Contribution) {
		start := len(out.buf)
		buf, err := c.AppendBinary(out.buf)
		if err != nil {
			out.err = fmt.Errorf("encode contribution: %w", err)
			return
		}
		out.buf = buf
		value := out.buf[start:len(out.buf):len(out.buf)]
		start = len(out.buf)
		out.buf = kafka.RouteKey(out.buf, c.Rules[0].Rule, c.Rules[0].Key)
		key := out.buf[start:len(out.buf):len(out.buf)]
		out.recs = append(out.recs, kafka.OutRecord{Partition: q, Key: key, Value: value})
	})
}

// progress adds the batch's progress mark (rules.Progress) for every
// partition of the repartition topic, after its contributions.
func (out *contributions) progress(ep *eventPartition, b *kafka.Batch) {
	at := time.Unix(0, 0).UTC()
	if len(b.Events) > 0 {
		at = b.Events[len(b.Events)-1].Time
	}
	start := len(out.buf)
	buf, err := rules.Progress(event.Origin{Topic: b.Topic, Partition: b.Partition, Offset: b.Last}, at).AppendBinary(out.buf)
	if err != nil {
		out.err = fmt.Errorf("encode progress: %w", err)
		return
	}
	out.buf = buf
	value := out.buf[start:len(out.buf):len(out.buf)]
	for q := range ep.p.fwd.Partitions() {
		out.recs = append(out.recs, kafka.OutRecord{Partition: int32(q), Value: value})
	}
}

// forwardDrain is how long forwarding keeps retrying once the partition
// has been given up (the consumer's rebalance timeout).
const forwardDrain = 30 * time.Second

// forwardQueue forwards an events partition's contributions to the
// repartition topic once their batch is stored, in batch order, and only
// then acknowledges the batch: its events offset is committed only after
// its contributions are durable.
//
// Forwarding after the store, not before, is what makes the shared stage's
// rebuild exact: a contribution exists in the repartition topic only if
// its event is in ClickHouse, so whatever the shared stage had applied
// and committed before a takeover is in storage for the next owner to
// rebuild from (see sharedStage). The crash points:
//
//   - after the store, before forwarding (or while forwarding): the batch
//     is not acknowledged, its offsets not committed; the next owner of the
//     partition skips the stored events but forwards their contributions
//     again (eventPartition.Process), possibly a second time: the shared
//     stage drops duplicates by source offset (rules.Marks);
//   - after forwarding, before the commit: the same, all duplicates;
//   - a forward that keeps failing fails the batch and every later one
//     (a partition's contributions must reach the topic in offset order),
//     so the partition stops without committing past it.
//
// The writer calls a batch's Done from its own goroutine: after() never
// blocks it. A single worker goroutine, started on demand, forwards.
type forwardQueue struct {
	fwd   forwarder
	ctx   context.Context // the partition's: once it ends, forwarding gives up after drain
	drain time.Duration
	log   *slog.Logger
	sm    *sharedMetrics

	mu      sync.Mutex
	items   []forwardItem
	running bool
	failed  error // sticky: the first failure fails every later batch (worker only)
}

type forwardItem struct {
	recs []kafka.OutRecord
	err  error // the store's verdict
	done func(error)
}

// after returns the acknowledgement to give the writer for a batch whose
// contributions are recs: once stored, they are forwarded, then done is
// called.
func (q *forwardQueue) after(recs []kafka.OutRecord, done func(error)) func(error) {
	return func(err error) {
		q.mu.Lock()
		q.items = append(q.items, forwardItem{recs: recs, err: err, done: done})
		if !q.running {
			q.running = true
			go q.run()
		}
		q.mu.Unlock()
	}
}

func (q *forwardQueue) run() {
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		it := q.items[0]
		q.items[0] = forwardItem{}
		q.items = q.items[1:]
		q.mu.Unlock()
		err := it.err
		if err == nil {
			err = q.failed
		}
		if err == nil && len(it.recs) > 0 {
			if err = q.produce(it.recs); err == nil && q.sm != nil {
				q.sm.forwarded.Add(float64(len(it.recs)))
			}
		}
		if err != nil && q.failed == nil {
			q.failed = err
			q.log.Error("contributions not forwarded; the partition stops before this batch", "err", err)
		}
		it.done(err)
	}
}

// produce forwards recs, retrying until they are written, or until drain
// after the partition was given up.
func (q *forwardQueue) produce(recs []kafka.OutRecord) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-q.ctx.Done():
			select {
			case <-time.After(q.drain):
				cancel()
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
	}()
	return q.fwd.Produce(ctx, recs)
}
