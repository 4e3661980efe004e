package rules

import (
	"slices"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// sharedShare is a share of actor to Acme Analytics of cats at day d, read
// from partition p at offset off.
func sharedShare(actor string, p int32, off int64, d time.Duration, cats ...string) *event.Event {
	ev := shareTo("sftp.acme-analytics.com")
	ev.ID = actor + "-" + d.String()
	ev.Time = ev.Time.Add(d)
	ev.Actor.ID = actor
	ev.Data.Categories = cats
	ev.Origin = event.Origin{Topic: "events", Partition: p, Offset: off}
	return ev
}

func firedRules(as []*Alert, rule string) int {
	n := 0
	for _, a := range as {
		if a.Rule == rule {
			n++
		}
	}
	return n
}

// TestSharedRules: rules not grouped by actor are the shared ones.
func TestSharedRules(t *testing.T) {
	got := builtinEngine(t).SharedRules()
	for _, want := range []string{"first_seen_category", "first_seen_country", "partner_volume_spike"} {
		if !slices.Contains(got, want) {
			t.Errorf("shared rules %v lack %s", got, want)
		}
	}
	for _, not := range []string{"first_seen_dataset", "bulk_export", "export_baseline", "query_then_share"} {
		if slices.Contains(got, not) {
			t.Errorf("shared rules %v hold actor-grouped %s", got, not)
		}
	}
}

// TestSharedFirstSeen: a partner's categories learnt from one partition
// are known to the others; an alert raised by two partitions for the same
// id is emitted once; a partition rebuilt after a rebalance does not
// count its replayed events twice; a reload keeps the shared terms.
func TestSharedFirstSeen(t *testing.T) {
	e := builtinEngine(t)
	var sh Shared
	p1, p2 := e.NewSharedState(1, &sh), e.NewSharedState(2, &sh)
	var got []*Alert
	emit := func(a *Alert) { got = append(got, a) }
	day := 24 * time.Hour
	// Learning: partition 2's actor sends behavior data daily.
	for d := range 9 {
		p2.Evaluate(sharedShare("bob", 2, int64(d), time.Duration(d)*day, "user.behavior"), emit)
	}
	// After learning, partition 1's actor sends the same category: known.
	p1.Evaluate(sharedShare("alice", 1, 0, 9*day, "user.behavior"), emit)
	if n := firedRules(got, "first_seen_category"); n != 0 {
		t.Fatalf("a category partition 2 sent daily alerted from partition 1: %d alerts", n)
	}
	// A new category, sent from both partitions in the same period: one
	// alert, whoever is first.
	p1.Evaluate(sharedShare("alice", 1, 1, 9*day+time.Minute, "user.contact.email"), emit)
	p2.Evaluate(sharedShare("bob", 2, 9, 9*day+2*time.Minute, "user.contact.email"), emit)
	if n := firedRules(got, "first_seen_category"); n != 1 {
		t.Fatalf("a new category alerted %d times, want 1", n)
	}
	// A reload moves the shared terms onto the new engine.
	e2 := builtinEngine(t)
	p1.Rebind(e2)
	p2.Rebind(e2)
	// Partition 2 assigned anew: its replayed events are not applied again
	// to the shared state, and a re-observed first term raises nothing.
	re := e2.NewSharedState(2, &sh)
	re.Observe(sharedShare("bob", 2, 9, 9*day+2*time.Minute, "user.contact.email"))
	p1.Evaluate(sharedShare("alice", 1, 2, 10*day, "user.contact.email", "user.behavior"), emit)
	if n := firedRules(got, "first_seen_category"); n != 1 {
		t.Fatalf("after reload and rebuild: %d first_seen_category alerts, want 1", n)
	}
	if sh.Keys() == 0 {
		t.Fatal("shared state tracks no keys")
	}
}

// TestSharedBaselineNotDoubleCounted: re-observing a partition's events
// into the shared state does not add them again.
func TestSharedBaselineNotDoubleCounted(t *testing.T) {
	e := builtinEngine(t)
	var sh Shared
	p1 := e.NewSharedState(1, &sh)
	ev := sharedShare("alice", 1, 5, 0, "user.behavior")
	p1.Observe(ev)
	again := e.NewSharedState(1, &sh)
	again.Observe(ev)
	r := e.byID["partner_volume_spike"]
	st := p1.rs[r.idx].(*baselineState)
	if st != again.rs[r.idx] {
		t.Fatal("partitions do not share partner_volume_spike")
	}
	var total uint32
	for _, g := range st.groups {
		for _, v := range g.tot {
			total += v
		}
	}
	if total != uint32(ev.Data.Records) {
		t.Fatalf("shared total %d, want %d", total, ev.Data.Records)
	}
	if !sh.ClaimSeed(r.ID, 1) || sh.ClaimSeed(r.ID, 1) {
		t.Fatal("a partition's seed claimed twice")
	}
}

// TestSeedTerms: seeded terms end the learning period and are known.
func TestSeedTerms(t *testing.T) {
	e := builtinEngine(t)
	seeds, skipped := e.TermSeeds()
	if len(skipped) != 0 || len(seeds) != 2 {
		t.Fatalf("term seeds %v, unseedable %v", seeds, skipped)
	}
	var sh Shared
	seedSt := e.NewSharedState(-1, &sh)
	old := sharedShare("bob", 2, 0, 0, "user.behavior")
	old.Origin = event.Origin{}
	if !seedSt.SeedTerms("first_seen_category", old, old.Time, old.Time.Add(8*24*time.Hour)) {
		t.Fatal("seed row not counted")
	}
	p1 := e.NewSharedState(1, &sh)
	var got []*Alert
	emit := func(a *Alert) { got = append(got, a) }
	p1.Evaluate(sharedShare("alice", 1, 0, 9*24*time.Hour, "user.behavior", "user.contact.email"), emit)
	if n := firedRules(got, "first_seen_category"); n != 1 || got[0].Rule != "first_seen_category" {
		t.Fatalf("got %d first_seen_category alerts (%v), want 1 (user.contact.email)", n, got)
	}
}

// TestMarkEmittedOutlivesReplay: a state rebuilt up to an older commit
// replays days of event time before it reaches, again, the event that
// raised a stored alert. The stored alert's id, marked with its window,
// must still be known then (marked at the rebuilt state's event time, it
// expired after the 48-hour retention and the alert was stored twice).
func TestMarkEmittedOutlivesReplay(t *testing.T) {
	day := 24 * time.Hour
	events := func() []*event.Event {
		var evs []*event.Event
		for d := range 9 {
			evs = append(evs, sharedShare("bob", 2, int64(d), time.Duration(d)*day, "user.behavior"))
		}
		return append(evs, sharedShare("bob", 2, 9, 9*day+time.Minute, "user.contact.email"))
	}
	// The first run raises the alert.
	first := builtinEngine(t).NewSharedState(2, new(Shared))
	var raised []*Alert
	for _, ev := range events() {
		first.Evaluate(ev, func(a *Alert) { raised = append(raised, a) })
	}
	if firedRules(raised, "first_seen_category") != 1 {
		t.Fatalf("first run raised %d first_seen_category alerts, want 1", firedRules(raised, "first_seen_category"))
	}
	var stored *Alert
	for _, a := range raised {
		if a.Rule == "first_seen_category" {
			stored = a
		}
	}
	// After a crash: state rebuilt from the events up to the commit (day
	// 3), the stored alert marked, then the tail applied again.
	re := builtinEngine(t).NewSharedState(2, new(Shared))
	evs := events()
	for _, ev := range evs[:4] {
		re.Observe(ev)
	}
	re.MarkEmittedAt(stored.ID, stored.WindowEnd)
	for _, ev := range evs[4:] {
		re.Evaluate(ev, func(a *Alert) {
			if a.ID == stored.ID {
				t.Errorf("alert %s (%s) raised again after the replay", a.ID, a.Rule)
			}
		})
	}
}
