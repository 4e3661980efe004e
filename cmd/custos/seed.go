package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules"
)

// termStore is what seeding shared first_seen rules reads: the distinct
// stored combinations of a rule's fields over all partitions
// (clickhouse.Store.SeenTerms).
type termStore interface {
	SeenTerms(ctx context.Context, topic string, seed rules.TermSeed,
		fn func(ev *event.Event, first, last time.Time) error) error
}

// seedTerms seeds the terms of the shared first_seen rules (those not
// grouped by actor: a partner's categories, the countries data went to)
// from the stored events of every partition of topic, so that a restart
// neither restarts their learning period nor takes a term another
// partition saw for new. Each row is a stand-in event carrying one stored
// combination of the fields the rule reads; the rule's own condition
// decides whether it counts. A failure is logged and leaves the rule to
// learn again from live events: in its learning period it stays silent,
// so it never raises a false alert.
func seedTerms(ctx context.Context, store recoveryStore, engine *rules.Engine, sh *rules.Shared, topic string, log *slog.Logger) {
	seeds, unseedable := engine.TermSeeds()
	for _, u := range unseedable {
		log.Warn("first_seen rule not seeded", "rule", u.Rule, "reason", u.Reason)
	}
	ts, ok := store.(termStore)
	if !ok || len(seeds) == 0 {
		return
	}
	state := engine.NewSharedState(-1, sh) // evaluates conditions; its shared part is sh
	for _, sd := range seeds {
		start := time.Now()
		rows, used := 0, 0
		err := ts.SeenTerms(ctx, topic, sd, func(ev *event.Event, first, last time.Time) error {
			rows++
			if state.SeedTerms(sd.Rule, ev, first, last) {
				used++
			}
			return nil
		})
		if err != nil {
			log.Warn("first_seen rule not seeded", "rule", sd.Rule, "err", err)
			continue
		}
		log.Info("first_seen rule seeded", "rule", sd.Rule, "topic", topic, "rows", rows, "rows_counted", used,
			"took", time.Since(start).Round(time.Millisecond))
	}
}
