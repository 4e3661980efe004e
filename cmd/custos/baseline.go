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

// seedBaselines seeds the history of the baseline rules of state from the
// partition's stored events, so that a restart or a rebalance does not
// forget what is usual. It totals the events before the point from which
// the pipeline replays stored events through Observe (latest - Lookback,
// when latest is known), so no event counts twice, back to History periods
// before it. A failure is logged and leaves the rules to learn again from
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
		p := int64(sd.Period)
		from := time.Unix(0, (to.UnixNano()/p-int64(sd.Periods))*p).UTC() // periods aligned on the Unix epoch
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
		log.Info("baseline rule seeded", "rule", sd.Rule, "topic", topic, "partition", partition, "from", from, "to", to,
			"rows", rows, "rows_counted", used, "took", time.Since(start).Round(time.Millisecond))
	}
}
