package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/rules"
	"github.com/custos-privacy/custos/sinks/writer"
)

// recoveryStore is what the pipeline reads back from storage when it takes
// over a partition: which offsets are already stored, the recent events to
// rebuild rule state from, and the alerts already raised.
type recoveryStore interface {
	StoredOffsets(ctx context.Context, topic string, partition int32, from int64) ([]int64, error)
	LatestEventTime(ctx context.Context, topic string, partition int32, from int64) (time.Time, bool, error)
	RecentEvents(ctx context.Context, topic string, partition int32, since time.Time, fn func(*event.Event) error) error
	AlertIDs(ctx context.Context, partition int32, since time.Time) ([]string, error)
}

// pipeline is the kafka.Processor of Custos: for each assigned partition it
// rebuilds the rules' state from ClickHouse, then evaluates the partition's
// events in offset order and hands rows and alerts to the writer.
type pipeline struct {
	// engine is the rule engine in force; a reload swaps it, and each
	// partition moves its state onto the new engine at its next batch.
	engine        atomic.Pointer[rules.Engine]
	store         recoveryStore
	writer        *writer.Writer
	subjectsTopic string
	log           *slog.Logger
}

var _ kafka.Processor = (*pipeline)(nil)

// Assigned prepares a partition: offsets already stored (re-delivered after
// a crash before the commit) will be skipped, and the rule state is rebuilt
// from the partition's stored recent events and alerts.
func (p *pipeline) Assigned(ctx context.Context, topic string, partition int32, committed int64) (kafka.PartitionProcessor, error) {
	if topic == p.subjectsTopic {
		return &statusPartition{w: p.writer}, nil
	}
	from := max(committed, 0)
	stored, err := p.store.StoredOffsets(ctx, topic, partition, from)
	if err != nil {
		return nil, fmt.Errorf("read stored offsets: %w", err)
	}
	engine := p.engine.Load()
	state := engine.NewState(partition)
	start := time.Now()
	observed := 0
	latest, ok, err := p.store.LatestEventTime(ctx, topic, partition, max(from-recentOffsets, 0))
	if err != nil {
		return nil, fmt.Errorf("read latest event time: %w", err)
	}
	if ok {
		// The longest rule window plus its allowed lateness.
		since := latest.Add(-engine.Lookback())
		err := p.store.RecentEvents(ctx, topic, partition, since, func(ev *event.Event) error {
			state.Observe(ev)
			observed++
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("rebuild rule state: %w", err)
		}
		ids, err := p.store.AlertIDs(ctx, partition, since)
		if err != nil {
			return nil, fmt.Errorf("read raised alerts: %w", err)
		}
		for _, id := range ids {
			state.MarkEmitted(id)
		}
	}
	p.log.Info("partition state rebuilt", "topic", topic, "partition", partition, "committed", committed,
		"stored_beyond_commit", len(stored), "events_observed", observed, "took", time.Since(start).Round(time.Millisecond))
	return &eventPartition{p: p, state: state, stored: stored}, nil
}

// recentOffsets is how far before the committed offset the pipeline looks
// for the partition's latest stored event time.
const recentOffsets = 100000

// eventPartition processes one events partition.
type eventPartition struct {
	p      *pipeline
	state  *rules.State
	stored []int64 // sorted offsets already in storage, not yet passed
}

// Process evaluates the rules over the batch's events, in order, and queues
// the rows and alerts. Events already stored were part of the rebuilt state
// and are skipped entirely.
func (ep *eventPartition) Process(ctx context.Context, b *kafka.Batch) error {
	rows := b.Events
	if len(ep.stored) > 0 {
		rows = make([]*event.Event, 0, len(b.Events))
		for _, ev := range b.Events {
			if ep.skip(ev.Origin.Offset) {
				continue
			}
			rows = append(rows, ev)
		}
	}
	if cur := ep.p.engine.Load(); cur != ep.state.Engine() {
		ep.state.Rebind(cur)
	}
	var alerts []*rules.Alert
	emit := func(a *rules.Alert) {
		c := *a
		alerts = append(alerts, &c)
	}
	for _, ev := range rows {
		ep.state.Evaluate(ev, emit)
	}
	return ep.p.writer.Submit(ctx, writer.Item{Events: rows, Alerts: alerts, Done: b.Done, Since: b.Produced})
}

// skip reports whether offset is already stored, consuming the sorted list
// of stored offsets as the partition moves forward.
func (ep *eventPartition) skip(offset int64) bool {
	for len(ep.stored) > 0 && ep.stored[0] < offset {
		ep.stored = ep.stored[1:]
	}
	if len(ep.stored) > 0 && ep.stored[0] == offset {
		ep.stored = ep.stored[1:]
		return true
	}
	return false
}

// Flush asks the writer to store what it holds now.
func (ep *eventPartition) Flush() { ep.p.writer.Flush() }

// statusPartition stores subject status changes.
type statusPartition struct{ w *writer.Writer }

// Process queues the batch's subject statuses.
func (sp *statusPartition) Process(ctx context.Context, b *kafka.Batch) error {
	return sp.w.Submit(ctx, writer.Item{Statuses: b.Statuses, Done: b.Done, Since: b.Produced})
}

// Flush asks the writer to store what it holds now.
func (sp *statusPartition) Flush() { sp.w.Flush() }
