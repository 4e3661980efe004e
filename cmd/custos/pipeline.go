package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/rules"
	"github.com/custos-privacy/custos/rules/consent"
	"github.com/custos-privacy/custos/sinks/writer"
)

// recoveryStore is what the pipeline reads back from storage when it takes
// over a partition: which offsets are already stored, the recent events to
// rebuild rule state from, and the alerts already raised.
type recoveryStore interface {
	StoredOffsets(ctx context.Context, topic string, partition int32, from int64) ([]int64, error)
	LatestEventTime(ctx context.Context, topic string, partition int32, from int64) (time.Time, bool, error)
	RecentEvents(ctx context.Context, topic string, partition int32, since time.Time, fn func(*event.Event) error) error
	AlertIDs(ctx context.Context, partition int32, since time.Time) ([]string, []time.Time, error)
}

// pipeline is the kafka.Processor of Custos: for each assigned partition it
// rebuilds the rules' state from ClickHouse, then evaluates the partition's
// events in offset order and hands rows and alerts to the writer.
//
// The rules not grouped by actor (rules.Shared) are repartitioned by
// default: each partition turns its events into contributions to them,
// forwarded to the repartition topic once stored (forwardQueue), and the
// shared stage (sharedStage), consuming that topic, owns their groups.
//
// Subject statuses arrive on their own topic, consumed independently of
// the events: the status partition applies each status to consent, which
// every event partition of the process reads (event.consent.*), before the
// batch is handed to the writer, so before its offset can be committed.
// The group gives that partition to one process; every process also
// follows the whole topic outside the group (kafka.FollowStatuses, started
// by the service), so each process's registry holds every status.
// The registry keeps statuses by their own event time, so a share is
// judged against the statuses in force at the share's time whatever order
// the two topics are read in; a status that arrives after the share it
// concerns was evaluated does not raise an alert retroactively.
type pipeline struct {
	// engine is the rule engine in force; a reload swaps it, and each
	// partition moves its state onto the new engine at its next batch.
	engine atomic.Pointer[rules.Engine]
	// consent is the subjects' consent and account status, shared by all
	// partitions and kept across rule reloads; seeded from ClickHouse at
	// start-up.
	consent *consent.Registry
	// shared is the state of the rules not grouped by actor (partner,
	// country, type...), whose groups span partitions, when
	// repartitioning is off: every partition of the process feeds and
	// reads it (rules.Shared); kept across reloads.
	shared rules.Shared
	// seedOnce seeds shared's first_seen terms from storage, at the first
	// assignment of an events partition (repartitioning off).
	seedOnce      sync.Once
	store         recoveryStore
	writer        *writer.Writer
	subjectsTopic string
	log           *slog.Logger

	// fwd, when set, repartitions: the events partitions evaluate the
	// rules grouped by actor only and forward the contributions of each
	// event to the shared rules to the repartition topic, where the
	// shared stage (sharedStage) applies them; nil: repartitioning off.
	fwd forwarder
	// splits caches the engine's rules.Split (repartitioning).
	splits splitCache
	// sm counts the contributions forwarded and applied.
	sm *sharedMetrics
}

// forwarder produces records to the repartition topic, in order within
// each partition, acknowledged by every in-sync replica
// (kafka.Forwarder).
type forwarder interface {
	Produce(ctx context.Context, recs []kafka.OutRecord) error
	Partitions() int
}

var _ forwarder = (*kafka.Forwarder)(nil)

// splitCache keeps the rules.Split of the last engines used.
type splitCache struct {
	mu     sync.Mutex
	last   [2]*rules.Split
	oldest int
}

// split returns the Split of e, made once per engine.
func (p *pipeline) split(e *rules.Engine) *rules.Split {
	c := &p.splits
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sp := range c.last {
		if sp != nil && sp.Full() == e {
			return sp
		}
	}
	sp := e.Split()
	c.last[c.oldest] = sp
	c.oldest = (c.oldest + 1) % len(c.last)
	return sp
}

var _ kafka.Processor = (*pipeline)(nil)

// Assigned prepares a partition: offsets already stored (re-delivered after
// a crash before the commit) will be skipped, and the rule state is rebuilt
// from the partition's stored recent events and alerts.
//
// Repartitioning, the partition's state holds the rules grouped by actor
// only (rules.Split's Local engine); the shared rules' state lives in the
// shared stage, which the partition feeds through the repartition topic.
// Repartitioning off, the state of rules not grouped by actor is the
// process's shared state: the partition's replayed events count in it
// only if it has not counted them already (the partition was held
// before), and its first_seen terms are seeded from every partition's
// stored events at the first assignment.
func (p *pipeline) Assigned(ctx context.Context, topic string, partition int32, committed int64) (kafka.PartitionProcessor, error) {
	if topic == p.subjectsTopic {
		return &statusPartition{w: p.writer, consent: p.consent}, nil
	}
	from := max(committed, 0)
	stored, err := p.store.StoredOffsets(ctx, topic, partition, from)
	if err != nil {
		return nil, fmt.Errorf("read stored offsets: %w", err)
	}
	engine := p.engine.Load()
	var (
		state  *rules.State
		router *rules.Router
	)
	if p.fwd != nil {
		sp := p.split(engine)
		state, router = sp.Local().NewState(partition), sp.NewRouter()
		engine = sp.Local()
	} else {
		p.seedOnce.Do(func() { seedTerms(ctx, p.store, engine, &p.shared, topic, p.log) })
		state = engine.NewSharedState(partition, &p.shared)
	}
	start := time.Now()
	observed := 0
	latest, ok, err := p.store.LatestEventTime(ctx, topic, partition, max(from-recentOffsets, 0))
	if err != nil {
		return nil, fmt.Errorf("read latest event time: %w", err)
	}
	// The partition's own first_seen terms and baseline histories, before
	// its recent events are replayed.
	seedPartitionTerms(ctx, p.store, state, topic, partition, p.log)
	seedBaselines(ctx, p.store, state, &p.shared, topic, partition, latest, ok, p.log)
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
		ids, ends, err := p.store.AlertIDs(ctx, partition, since)
		if err != nil {
			return nil, fmt.Errorf("read raised alerts: %w", err)
		}
		for i, id := range ids {
			state.MarkEmittedAt(id, ends[i])
		}
	}
	p.log.Info("partition state rebuilt", "topic", topic, "partition", partition, "committed", committed,
		"stored_beyond_commit", len(stored), "events_observed", observed, "took", time.Since(start).Round(time.Millisecond))
	ep := &eventPartition{p: p, state: state, stored: stored, router: router}
	if p.fwd != nil {
		ep.fq = &forwardQueue{fwd: p.fwd, ctx: ctx, drain: forwardDrain, log: p.log.With("topic", topic, "partition", partition), sm: p.sm}
	}
	return ep, nil
}

// recentOffsets is how far before the committed offset the pipeline looks
// for the partition's latest stored event time.
const recentOffsets = 100000

// eventPartition processes one events partition.
type eventPartition struct {
	p      *pipeline
	state  *rules.State
	stored []int64 // sorted offsets already in storage, not yet passed
	// Repartitioning: router turns events into contributions to the
	// shared rules; fq forwards them once their batch is stored.
	router *rules.Router
	fq     *forwardQueue
}

// Process evaluates the rules over the batch's events, in order, and queues
// the rows and alerts. Events already stored were part of the rebuilt state
// and are skipped entirely, except that, repartitioning, their
// contributions to the shared rules are forwarded again (see
// forwardQueue): whether they were before the crash or the rebalance is
// not known, and the shared stage recognises duplicates.
func (ep *eventPartition) Process(ctx context.Context, b *kafka.Batch) error {
	if ep.router != nil {
		if sp := ep.p.split(ep.p.engine.Load()); sp != ep.router.Split() {
			ep.state.Rebind(sp.Local())
			ep.router.Rebind(sp)
		}
	} else if cur := ep.p.engine.Load(); cur != ep.state.Engine() {
		ep.state.Rebind(cur)
	}
	var alerts []*rules.Alert
	emit := func(a *rules.Alert) {
		c := *a
		alerts = append(alerts, &c)
	}
	rows := b.Events
	filter := len(ep.stored) > 0 // some of the batch may be stored already
	if filter {
		rows = make([]*event.Event, 0, len(b.Events))
	}
	var out contributions
	for _, ev := range b.Events {
		if filter {
			if ep.skip(ev.Origin.Offset) {
				if ep.router != nil {
					out.route(ep, ev)
				}
				continue
			}
			rows = append(rows, ev)
		}
		ep.state.Evaluate(ev, emit)
		if ep.router != nil {
			out.route(ep, ev)
		}
	}
	if ep.router != nil {
		out.progress(ep, b)
	}
	if out.err != nil {
		return out.err
	}
	done := b.Done
	if ep.fq != nil {
		done = ep.fq.after(out.recs, b.Done)
	}
	return ep.p.writer.Submit(ctx, writer.Item{Events: rows, Alerts: alerts, Done: done, Since: b.Produced})
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

// statusPartition applies subject status changes to the consent registry
// and stores them.
type statusPartition struct {
	w       *writer.Writer
	consent *consent.Registry
}

// Process applies the batch's subject statuses to the consent registry,
// then queues them for storage: a status is in force for the rules before
// its offset can be committed. Applying is idempotent, so a re-delivered
// batch changes nothing.
func (sp *statusPartition) Process(ctx context.Context, b *kafka.Batch) error {
	if sp.consent != nil {
		for _, st := range b.Statuses {
			sp.consent.Apply(st)
		}
	}
	return sp.w.Submit(ctx, writer.Item{Statuses: b.Statuses, Done: b.Done, Since: b.Produced})
}

// Flush asks the writer to store what it holds now.
func (sp *statusPartition) Flush() { sp.w.Flush() }
