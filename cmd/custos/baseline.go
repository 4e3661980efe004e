package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules"
)

// baselineStore is what seeding baseline rules reads: per-period totals of
// the stored events (clickhouse.Store.BaselineHistory).
type baselineStore interface {
	BaselineHistory(ctx context.Context, topic string, partition int32, seed rules.BaselineSeed,
		from, to time.Time, fn func(ev *event.Event, total, events int64) error) error
}

// partitionTermStore is what seeding a partition's own first_seen rules
// reads: the distinct stored combinations of a rule's fields in the
// partition (clickhouse.Store.PartitionTerms).
type partitionTermStore interface {
	PartitionTerms(ctx context.Context, topic string, partition int32, seed rules.TermSeed,
		fn func(ev *event.Event, first, last time.Time) error) error
}

// seedBaselines seeds the history of the baseline rules of state from the
// partition's stored events, so that a restart or a rebalance does not
// forget what is usual. It totals the events before the point from which
// the pipeline replays stored events through Observe (latest - Lookback,
// when latest is known), so no event counts twice, back to the start of
// the oldest period of each rule's history (its history setting: 14 days
// by default, in periods of its period setting and, for days, its time
// zone). A failure is logged and leaves the rules to learn again from
// live events: in warm-up they stay silent, so it never raises a false
// alert.
//
// A shared rule's groups (rules.Shared) total every partition's events:
// each partition's history is added to sh once, at its first assignment,
// and not again when the partition comes back after a rebalance.
func seedBaselines(ctx context.Context, store recoveryStore, state *rules.State, sh *rules.Shared, topic string, partition int32,
	latest time.Time, known bool, log *slog.Logger) {
	seeds, unseedable := state.Engine().BaselineSeeds()
	for _, u := range unseedable {
		log.Warn("baseline rule not seeded", "rule", u.Rule, "reason", u.Reason)
	}
	bs, ok := store.(baselineStore)
	if !ok || len(seeds) == 0 {
		return
	}
	to := time.Now().Add(24 * time.Hour) // no replay: everything stored
	if known {
		to = latest.Add(-state.Engine().Lookback())
	}
	to = to.UTC().Truncate(time.Second)
	shared := map[string]bool{}
	for _, id := range state.Engine().SharedRules() {
		shared[id] = true
	}
	for _, sd := range seeds {
		if shared[sd.Rule] && sh != nil && !sh.ClaimSeed(sd.Rule, partition) {
			continue
		}
		start := time.Now()
		from := sd.HistoryStart(to) // the rule's periods: epoch-aligned, or the days of its time zone
		rows, used := 0, 0
		err := bs.BaselineHistory(ctx, topic, partition, sd, from, to, func(ev *event.Event, total, events int64) error {
			rows++
			if state.SeedBaseline(sd.Rule, ev, total, events) {
				used++
			}
			return nil
		})
		if err != nil {
			log.Warn("baseline rule not seeded", "rule", sd.Rule, "partition", partition, "err", err)
			continue
		}
		log.Info("baseline rule seeded", "rule", sd.Rule, "topic", topic, "partition", partition, "periods", sd.Periods, "from", from, "to", to,
			"rows", rows, "rows_counted", used, "took", time.Since(start).Round(time.Millisecond))
	}
}

// seedPartitionTerms seeds the terms of the first_seen rules that keep
// their state with the partition (grouped by actor: an actor's datasets)
// from the partition's stored events over the rule's term retention, at
// every assignment (the partition's State is new each time), so that a
// restart or a rebalance neither starts their learning period again nor
// takes a term the actor showed before for new. The terms of the shared
// first_seen rules (not grouped by actor) are seeded apart, from every
// partition (seedTerms). A failure is logged and leaves the rule to learn again
// from live events: silent during its learning period, never a false
// alert.
func seedPartitionTerms(ctx context.Context, store recoveryStore, state *rules.State, topic string, partition int32, log *slog.Logger) {
	seeds, unseedable := state.Engine().PartitionTermSeeds()
	for _, u := range unseedable {
		log.Warn("first_seen rule not seeded", "rule", u.Rule, "partition", partition, "reason", u.Reason)
	}
	ts, ok := store.(partitionTermStore)
	if !ok {
		return
	}
	for _, sd := range seeds {
		start := time.Now()
		rows, used := 0, 0
		err := ts.PartitionTerms(ctx, topic, partition, sd, func(ev *event.Event, first, last time.Time) error {
			rows++
			if state.SeedTerms(sd.Rule, ev, first, last) {
				used++
			}
			return nil
		})
		if err != nil {
			log.Warn("first_seen rule not seeded", "rule", sd.Rule, "partition", partition, "err", err)
			continue
		}
		log.Info("first_seen rule seeded", "rule", sd.Rule, "topic", topic, "partition", partition, "rows", rows,
			"rows_counted", used, "took", time.Since(start).Round(time.Millisecond))
	}
}
