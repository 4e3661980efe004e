package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/rules"
	"github.com/custos-privacy/custos/sinks/writer"
)

// repartitionOff is the value of kafka.repartition_topic that turns
// repartitioning off.
const repartitionOff = "off"

// Repartition returns the repartition topic, "" when repartitioning is
// off (kafka.repartition_topic).
func (k *KafkaConfig) Repartition() string {
	switch k.RepartitionTopic {
	case repartitionOff:
		return ""
	case "":
		return k.EventsTopic + ".by-group"
	}
	return k.RepartitionTopic
}

// SharedGroup is the consumer group of the repartition topic: the group's
// name followed by ".shared".
func (k *KafkaConfig) SharedGroup() string { return k.Group + ".shared" }

// sharedStage is the kafka.RecordProcessor of the repartition topic: each
// partition of that topic owns the groups of the shared rules (rules not
// grouped by actor: a partner's daily volume, a partner's categories, the
// countries data went to) whose (rule, group key) hashes to it, applies
// their contributions in order (rules.State.Apply) and stores the alerts
// they raise through the writer (alerts stored, then published; alert id
// (rule, group key, window) as everywhere). A batch is acknowledged, and
// the partition's offset committed at once, when its alerts are stored.
// The commit carries the partition's marks (rules.Marks): for every
// events partition, the highest source offset the committed part of the
// topic covers (raised by contributions, and by the progress mark each
// events batch ends with, so that marks keep up with events partitions
// that contribute nothing to this partition).
//
// Two invariants make this exact (forwardQueue, eventPartition):
//
//	(I1) a contribution is produced only after its event is stored in
//	     ClickHouse; so every contribution before a partition's committed
//	     offset has its event in storage;
//	(I2) an events partition's contributions are produced in offset order,
//	     by one producer at a time, and produced again (after a crash or a
//	     rebalance) only by re-processing everything from the events
//	     commit on; so at any point the contributions of a source
//	     partition that reached the topic cover its offsets in order, and
//	     one at or below the source's mark is a duplicate.
//
// Crash points of the stage itself: a crash after applying a batch and
// before its alerts are stored, or after they are stored and before the
// commit, leaves the batch uncommitted: the next owner applies it again
// on top of the state rebuilt as of the commit (below), raising the same
// alert ids, and those already stored are known. A crash of the events
// side is the forwardQueue's.
//
// Rebuilding a partition's state when this process takes it over
// (Assigned), with A[s] its committed mark for events partition s:
//
//  1. The stored events of s at or below A[s] are exactly those whose
//     contributions were applied before the commit, and whose alerts
//     were stored (the commit follows the store). They are rebuilt from
//     ClickHouse without raising anything: first_seen terms (SeenTerms,
//     all partitions) and baseline totals (BaselineHistory, per events
//     partition) for event times before a split time T, and event by
//     event from the stored events at or after T (RecentEvents), keeping
//     those at or below A[s] only, in event-time order.
//  2. Stored events above A[s] (their offsets read from ClickHouse before
//     anything else) were not applied, or not committed: their
//     contributions come again from the topic's tail or will be
//     forwarded (I1, and the events partitions forward what they find
//     stored beyond their commit). T starts at the newest stored event
//     less the shared rules' lookback (rules.Split.Lookback) and is moved
//     back until all of them have event times at or after T, so that no
//     total or term seeded from before T includes one of them; terms
//     first seen at or after T are not seeded but rebuilt from the events
//     of step 1. The learning start of first_seen rules is the first time
//     any stored combination was seen.
//  3. The alert ids stored for windows ending after T - 24h are marked as
//     emitted, each remembered from its own window's end (the rebuilt
//     state stands at the commit, and the tail may replay days of event
//     time before reaching the alert's events again): contributions
//     re-applied from the tail (applied by the previous owner, alerts
//     stored, offset not committed) raise nothing twice.
//  4. The tail is then consumed from the committed offset with the marks
//     A: contributions at or below them are skipped, the others applied
//     and their alerts raised.
//
// A read that fails fails the rebuild, which is retried: a partial
// history or partial terms would judge wrongly. A rule that storage
// cannot seed learns again from T (first_seen: silent meanwhile;
// baseline: warm-up).
//
// A partition never committed (a new topic, or one added to an existing
// deployment) has no marks: they are taken, per events partition, as just
// below the smaller of the events group's committed offset and the first
// source offset the partition's log holds for it (a scan of the log), so
// that events processed before repartitioning existed count from storage
// and everything in the log is applied from the log. When nothing stored
// is at or below any mark (the first generation of a new deployment), the
// state is built from the logs alone.
//
// What remains inexact, and why:
//   - an event older than T stored during the few hundred milliseconds of
//     a rebuild, by another process, may count both in a seeded total and
//     from the tail, or a term it carries be seeded as known;
//   - when the unapplied stored events reach further back than the
//     widening cap (maxSplitSpan), or a producer sent the same event id
//     at two offsets among them (RecentEvents returns each event id
//     once), the rebuild proceeds with T at the cap and logs how many
//     were not covered;
//   - the unapplied stored events are applied when their events
//     partition forwards them again, possibly after newer events of other
//     partitions: as when partitions lag one another, what a group sees
//     first can differ from event-time order (in live traffic by seconds;
//     replaying history at full speed, by more);
//   - a re-applied escalation or count update of an alert stored just
//     before a crash, in the instant between the alerts' store and the
//     offset commit, is stored once more as an identical version.
//
// Cost: a rebuild reads the stored events of every events partition back
// to T; while the stage lags far behind the events (catching up), T goes
// back accordingly.
type sharedStage struct {
	p           *pipeline
	brokers     []string
	eventsTopic string
	eventsGroup string
	topic       string
	parts       int // partitions of the repartition topic
	sources     int // partitions of the events topic
	log         *slog.Logger
}

var _ kafka.RecordProcessor = (*sharedStage)(nil)

// maxSplitSpan bounds how far back the split time T is moved to cover the
// stored events not yet applied.
const maxSplitSpan = 7 * 24 * time.Hour

// sharedMetrics count the contributions forwarded and applied.
type sharedMetrics struct {
	forwarded prometheus.Counter
	records   *prometheus.CounterVec
	rebuilds  prometheus.Histogram
}

func newSharedMetrics(reg prometheus.Registerer) *sharedMetrics {
	m := &sharedMetrics{
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_shared_forwarded_total", Help: "Contributions to rules not grouped by actor written to the repartition topic.",
		}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_shared_records_total",
			Help: "Repartition records read, by result: applied, duplicate, progress, invalid, unknown_rule, kind_changed, key_changed.",
		}, []string{"result"}),
		rebuilds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "custos_shared_rebuild_seconds", Help: "Time to rebuild the shared rules' state of the repartition partitions taken over.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.forwarded, m.records, m.rebuilds)
	}
	return m
}

// recent is a stored event's contribution to a partition's group, kept
// for the rebuild.
type recent struct {
	q int32
	c rules.Contribution
}

// Assigned rebuilds the state of the partitions given to this process and
// returns their processors (see sharedStage).
func (ss *sharedStage) Assigned(ctx context.Context, topic string, assigned []kafka.AssignedPartition) (map[int32]kafka.RecordPartition, error) {
	began := time.Now()
	engine := ss.p.engine.Load()
	split := ss.p.split(engine)
	owned := map[int32]bool{}
	for _, ap := range assigned {
		owned[ap.Partition] = true
	}
	marks, err := ss.marks(ctx, assigned)
	if err != nil {
		return nil, err
	}
	sources := make([]rules.SourcePartition, ss.sources)
	amin := make([]int64, ss.sources)
	applied := false // some stored event was applied by some owned partition
	for s := range sources {
		sources[s] = rules.SourcePartition{Topic: ss.eventsTopic, Partition: int32(s)}
		amin[s] = -2
		for _, m := range marks {
			a, ok := m.Get(sources[s])
			if !ok {
				a = -1
			}
			if amin[s] == -2 || a < amin[s] {
				amin[s] = a
			}
			applied = applied || a >= 0
		}
	}
	// Step 2 first: the stored events not applied yet, before any other
	// read, so that nothing seeded later can miss them.
	unapplied := make([][]int64, ss.sources)
	var latest time.Time
	for s := range sources {
		if unapplied[s], err = ss.p.store.StoredOffsets(ctx, ss.eventsTopic, int32(s), amin[s]+1); err != nil {
			return nil, fmt.Errorf("stored offsets: %w", err)
		}
		t, ok, err := ss.p.store.LatestEventTime(ctx, ss.eventsTopic, int32(s), max(amin[s]+1-recentOffsets, 0))
		if err != nil {
			return nil, fmt.Errorf("latest event time: %w", err)
		}
		if ok && t.After(latest) {
			latest = t
		}
	}
	states := map[int32]*rules.State{}
	for q := range owned {
		states[q] = engine.NewSharedState(q, new(rules.Shared))
	}
	var (
		since     time.Time
		kept      []recent
		uncovered int
	)
	switch {
	case latest.IsZero():
		// Nothing stored: nothing to rebuild.
	case !applied:
		// Nothing stored was applied (the partitions' first generation):
		// every stored event's contribution is in the partitions' logs,
		// read from their start, or will be forwarded. Storage only says
		// where the first_seen rules' learning started.
		if err := ss.seedTerms(ctx, engine, states, time.Time{}); err != nil {
			return nil, err
		}
	default:
		span := split.Lookback()
		for {
			since = latest.Add(-span).UTC().Truncate(time.Second)
			kept, uncovered, err = ss.readRecent(ctx, split, since, owned, marks, unapplied)
			if err != nil {
				return nil, err
			}
			if uncovered == 0 || span >= maxSplitSpan {
				break
			}
			span = min(4*span, maxSplitSpan)
		}
		if uncovered > 0 {
			ss.log.Warn("shared rules: stored events not yet applied reach further back than the rebuild reads; they may count twice in a baseline history",
				"events", uncovered, "since", since)
		}
		if err := ss.seedBaselines(ctx, engine, states, since); err != nil {
			return nil, err
		}
		if err := ss.seedTerms(ctx, engine, states, since); err != nil {
			return nil, err
		}
		sort.SliceStable(kept, func(i, j int) bool { return kept[i].c.Event.Time.Before(kept[j].c.Event.Time) })
		for i := range kept {
			states[kept[i].q].Apply(&kept[i].c, nil)
		}
	}
	if !latest.IsZero() {
		// Alerts a previous owner raised from records it applied but did
		// not commit are known: applied again, they raise nothing twice.
		from := time.Unix(0, 0)
		if !since.IsZero() {
			from = since.Add(-24 * time.Hour)
		}
		for p := range max(ss.sources, ss.parts) {
			ids, ends, err := ss.p.store.AlertIDs(ctx, int32(p), from)
			if err != nil {
				return nil, fmt.Errorf("read raised alerts: %w", err)
			}
			// By the alert's own window: the rebuilt state stands at
			// the commit, and the tail may replay days of event time
			// before it reaches the alert's events again.
			for _, st := range states {
				for i, id := range ids {
					st.MarkEmittedAt(id, ends[i])
				}
			}
		}
	}
	out := make(map[int32]kafka.RecordPartition, len(states))
	for q, st := range states {
		out[q] = &sharedPartition{ss: ss, state: st, marks: marks[q]}
	}
	took := time.Since(began)
	if ss.p.sm != nil {
		ss.p.sm.rebuilds.Observe(took.Seconds())
	}
	ss.log.Info("shared rules' state rebuilt", "partitions", len(out), "split_time", since, "events_observed", len(kept),
		"unapplied_stored", total(unapplied), "took", took.Round(time.Millisecond))
	return out, nil
}

func total(xs [][]int64) int {
	n := 0
	for _, x := range xs {
		n += len(x)
	}
	return n
}

// marks returns each assigned partition's marks: committed with its
// offset or, for a partition never committed, derived from the events
// group's commits and the partition's log (see sharedStage).
func (ss *sharedStage) marks(ctx context.Context, assigned []kafka.AssignedPartition) (map[int32]*rules.Marks, error) {
	out := map[int32]*rules.Marks{}
	var fresh []int32
	for _, ap := range assigned {
		if ap.Committed >= 0 && ap.Metadata != "" {
			m := &rules.Marks{}
			if err := m.UnmarshalText([]byte(ap.Metadata)); err == nil {
				out[ap.Partition] = m
				continue
			} else {
				ss.log.Warn("committed marks unreadable; deriving them", "partition", ap.Partition, "err", err)
			}
		} else if ap.Committed >= 0 {
			ss.log.Warn("offset committed without marks; deriving them", "partition", ap.Partition)
		}
		fresh = append(fresh, ap.Partition)
	}
	if len(fresh) == 0 {
		return out, nil
	}
	parts := make([]int, ss.sources)
	for i := range parts {
		parts[i] = i
	}
	committed, err := kafka.CommittedOffsets(ctx, ss.brokers, ss.eventsGroup, ss.eventsTopic, parts)
	if err != nil {
		return nil, err
	}
	for _, q := range fresh {
		first := map[int32]int64{}
		err := kafka.ScanPartition(ctx, ss.brokers, ss.topic, q, func(_ int64, value []byte) error {
			o, hint, err := rules.OriginOf(value)
			if err != nil || hint || o.Topic != ss.eventsTopic {
				return nil
			}
			if _, ok := first[o.Partition]; !ok {
				first[o.Partition] = o.Offset
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		m := &rules.Marks{}
		for s := range ss.sources {
			a := max(committed[int32(s)].Offset, 0)
			if f, ok := first[int32(s)]; ok && f < a {
				a = f
			}
			m.Set(rules.SourcePartition{Topic: ss.eventsTopic, Partition: int32(s)}, a-1)
		}
		out[q] = m
	}
	return out, nil
}

// readRecent reads the stored events at or after since of every events
// partition and keeps the contributions to the owned partitions' groups
// whose events are at or below the partition's marks (applied before the
// commit). It also counts the stored offsets above the smallest marks
// (unapplied, sorted per events partition) that it did not see: their
// event time is before since.
func (ss *sharedStage) readRecent(ctx context.Context, split *rules.Split, since time.Time, owned map[int32]bool,
	marks map[int32]*rules.Marks, unapplied [][]int64) ([]recent, int, error) {
	scratch := split.Local().NewState(-1)
	var kept []recent
	uncovered := 0
	var key []byte
	for s := range ss.sources {
		src := rules.SourcePartition{Topic: ss.eventsTopic, Partition: int32(s)}
		seen := make([]bool, len(unapplied[s]))
		err := ss.p.store.RecentEvents(ctx, ss.eventsTopic, int32(s), since, func(ev *event.Event) error {
			if i, ok := slices.BinarySearch(unapplied[s], ev.Origin.Offset); ok {
				seen[i] = true
			}
			split.Contribute(scratch, ev, func(rk rules.RuleKey, parts rules.ContextParts) {
				key = kafka.RouteKey(key[:0], rk.Rule, rk.Key)
				q := kafka.PartitionFor(key, ss.parts)
				if !owned[q] {
					return
				}
				if a, ok := marks[q].Get(src); !ok || ev.Origin.Offset > a {
					return // not applied before the commit: comes from the topic
				}
				kept = append(kept, recent{q: q, c: rules.Contribution{Rules: []rules.RuleKey{rk}, Parts: parts, Event: ev}})
			})
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("rebuild shared rules' state: %w", err)
		}
		for _, ok := range seen {
			if !ok {
				uncovered++
			}
		}
	}
	return kept, uncovered, nil
}

// seedBaselines seeds the history of the shared baseline rules of the
// owned groups with the stored totals of every events partition before
// to. A rule storage cannot total is left to learn again (warm-up: it
// stays silent); a failed read fails the rebuild (retried), as a partial
// history would judge wrongly.
func (ss *sharedStage) seedBaselines(ctx context.Context, engine *rules.Engine, states map[int32]*rules.State, to time.Time) error {
	bs, ok := ss.p.store.(baselineStore)
	if !ok {
		return nil
	}
	seeds, unseedable := engine.BaselineSeeds()
	shared := map[string]bool{}
	for _, id := range engine.SharedRules() {
		shared[id] = true
	}
	for _, u := range unseedable {
		if shared[u.Rule] {
			ss.log.Warn("baseline rule not seeded", "rule", u.Rule, "reason", u.Reason)
		}
	}
	var key []byte
	for _, sd := range seeds {
		if !shared[sd.Rule] {
			continue
		}
		start := time.Now()
		from := sd.HistoryStart(to) // the rule's periods: epoch-aligned, or the days of its time zone
		rows, used := 0, 0
		for s := range ss.sources {
			err := bs.BaselineHistory(ctx, ss.eventsTopic, int32(s), sd, from, to, func(ev *event.Event, total, events int64) error {
				rows++
				k, ok := engine.SeedKey(sd.Rule, ev)
				if !ok {
					return nil
				}
				key = kafka.RouteKey(key[:0], sd.Rule, k)
				if st := states[kafka.PartitionFor(key, ss.parts)]; st != nil && st.SeedBaseline(sd.Rule, ev, total, events) {
					used++
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("seed baseline rule %s: %w", sd.Rule, err)
			}
		}
		ss.log.Info("shared baseline rule seeded", "rule", sd.Rule, "from", from, "to", to, "rows", rows, "rows_counted", used,
			"took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// seedTerms seeds the terms of the shared first_seen rules of the owned
// groups with the stored combinations first seen before since (none when
// since is zero); every combination, whichever group, moves the learning
// start back to where it was first seen, so each partition learns from the
// rule's first event. A rule storage cannot group learns again from since
// (silent meanwhile); a failed read fails the rebuild (retried): partial
// terms would raise known terms as new.
func (ss *sharedStage) seedTerms(ctx context.Context, engine *rules.Engine, states map[int32]*rules.State, since time.Time) error {
	ts, ok := ss.p.store.(termStore)
	seeds, unseedable := engine.TermSeeds()
	restart := func(rule string) {
		if since.IsZero() {
			return // nothing rebuilt: the rule learns from the logs
		}
		for _, st := range states {
			st.RestartLearning(rule, since)
		}
	}
	for _, u := range unseedable {
		ss.log.Warn("first_seen rule not seeded; it learns again", "rule", u.Rule, "reason", u.Reason)
		restart(u.Rule)
	}
	if !ok {
		for _, sd := range seeds {
			restart(sd.Rule)
		}
		return nil
	}
	var key []byte
	for _, sd := range seeds {
		start := time.Now()
		rows, used := 0, 0
		err := ts.SeenTerms(ctx, ss.eventsTopic, sd, func(ev *event.Event, first, last time.Time) error {
			rows++
			for _, st := range states {
				st.SeedLearning(sd.Rule, ev, first)
			}
			if since.IsZero() || !first.Before(since) {
				return nil // first seen in events rebuilt one by one, or in the logs
			}
			k, ok := engine.SeedKey(sd.Rule, ev)
			if !ok {
				return nil
			}
			key = kafka.RouteKey(key[:0], sd.Rule, k)
			if st := states[kafka.PartitionFor(key, ss.parts)]; st != nil && st.SeedTerms(sd.Rule, ev, first, last) {
				used++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("seed first_seen rule %s: %w", sd.Rule, err)
		}
		ss.log.Info("shared first_seen rule seeded", "rule", sd.Rule, "rows", rows, "rows_counted", used,
			"took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// sharedPartition applies one repartition partition's contributions.
type sharedPartition struct {
	ss    *sharedStage
	state *rules.State
	marks *rules.Marks
}

// Process applies the batch's contributions in order, skipping
// duplicates, and queues the alerts they raise; the batch is acknowledged
// once they are stored, and commits the marks reached.
func (sp *sharedPartition) Process(ctx context.Context, b *kafka.RecordBatch) error {
	p := sp.ss.p
	if cur := p.engine.Load(); cur != sp.state.Engine() {
		sp.state.Rebind(cur)
	}
	var alerts []*rules.Alert
	emit := func(a *rules.Alert) {
		c := *a
		alerts = append(alerts, &c)
	}
	counts := map[string]int{}
	for i := range b.Records {
		var c rules.Contribution
		if err := c.UnmarshalBinary(b.Records[i].Value); err != nil {
			counts["invalid"]++
			sp.ss.log.Warn("repartition record unreadable; skipped", "partition", b.Partition, "offset", b.Records[i].Offset, "err", err)
			continue
		}
		if c.Progress {
			sp.marks.Advance(c.Event.Origin)
			counts["progress"]++
			continue
		}
		if !c.Hint && !sp.marks.Admit(c.Event.Origin) {
			counts["duplicate"]++
			continue
		}
		for r, n := range sp.state.Apply(&c, emit) {
			if n > 0 {
				counts[rules.ApplyResult(r).String()] += n
			}
		}
	}
	if p.sm != nil {
		for k, n := range counts {
			p.sm.records.WithLabelValues(k).Add(float64(n))
		}
	}
	meta, err := sp.marks.MarshalText()
	if err != nil {
		return err
	}
	b.Metadata = string(meta)
	return p.writer.Submit(ctx, writer.Item{Alerts: alerts, Done: b.Done, Since: b.Produced})
}

// Flush asks the writer to store what it holds now.
func (sp *sharedPartition) Flush() { sp.ss.p.writer.Flush() }
