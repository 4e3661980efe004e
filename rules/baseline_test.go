package rules

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

func TestMedianMAD(t *testing.T) {
	cases := []struct {
		name      string
		vals      []float64
		med, mad  float64
		bound     float64 // factor 3, mads 6
		wantBound bool
	}{
		{name: "odd", vals: []float64{5, 1, 3}, med: 3, mad: 2, bound: 3 + 6*1.4826*2, wantBound: true},
		{name: "even", vals: []float64{1, 2, 3, 4}, med: 2.5, mad: 1, bound: 2.5 + 6*1.4826, wantBound: true},
		{name: "an outlier moves neither", vals: []float64{1000, 1000, 1100, 900, 1000, 90000}, med: 1000, mad: 50, bound: 3000, wantBound: true},
		{name: "constant history: factor decides", vals: []float64{1000, 1000, 1000, 1000, 1000}, med: 1000, mad: 0, bound: 3000, wantBound: true},
		{name: "empty", vals: nil, med: 0, mad: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			med, mad := MedianMAD(slices.Clone(tc.vals))
			if med != tc.med || mad != tc.mad {
				t.Fatalf("median %v mad %v, want %v %v", med, mad, tc.med, tc.mad)
			}
			if tc.wantBound {
				if b := HistoryBound(med, mad, 3, 6); math.Abs(b-tc.bound) > 1e-9 {
					t.Fatalf("bound %v, want %v", b, tc.bound)
				}
			}
		})
	}
}

func TestPeerBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint32{1, 2, 3, 4, 5, 7, 8, 100, 1000, 1 << 20, math.MaxUint32} {
		b := bucketOf(v)
		if b <= prev || b >= peerBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d", v, b, prev)
		}
		prev = b
		if mid := float64(bucketValue(b)); v >= 8 && math.Abs(mid-float64(v))/float64(v) > 0.25 {
			t.Fatalf("bucketValue(bucketOf(%d)) = %v: more than 25%% off", v, mid)
		}
	}
	var pg peerGroup
	pg.head, pg.cacheP = noPeriod, noPeriod
	for i, v := range []uint32{100, 200, 300, 400, 500} {
		pg.move(10, 0, v)
		_ = i
	}
	pg.move(10, 500, 5000) // a member's total grows: replaced, not added
	med, n := pg.medianOf(11, 14)
	if n != 5 || med < 270 || med > 330 {
		t.Fatalf("peer median %d of %d, want ~300 of 5", med, n)
	}
	if _, n := pg.medianOf(10, 14); n != 0 {
		t.Fatalf("the median of period 10 must not use period 10 itself, got %d", n)
	}
}

// baselineEngine compiles the shipped baseline rules alone.
func baselineEngine(t testing.TB) *Engine {
	t.Helper()
	var srcs []Source
	for _, s := range Builtin() {
		if strings.HasSuffix(s.Name, "/baseline.yml") {
			srcs = append(srcs, s)
		}
	}
	e, err := Compile(srcs, Options{Registry: testRegistry(t)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestBaselineSeeds(t *testing.T) {
	e := baselineEngine(t)
	seeds, skipped := e.BaselineSeeds()
	if len(skipped) != 0 {
		t.Fatalf("unseedable shipped rules: %v", skipped)
	}
	got := map[string]string{}
	for _, s := range seeds {
		got[s.Rule] = strings.Join(s.Fields, ",")
	}
	want := map[string]string{
		"export_baseline":      "action,actor.id,actor.role,outcome",
		"partner_volume_spike": "outcome,recipient.domain,recipient.id,recipient.kind,type",
	}
	for r, f := range want {
		if got[r] != f {
			t.Errorf("%s seeds by %q, want %q", r, got[r], f)
		}
	}
	bad := `
rules:
  - {id: b1, title: t, description: d, severity: low, owner: o, kind: baseline, summary: s,
     condition: 'event.data.records > 10'}
  - {id: b2, title: t, description: d, severity: low, owner: o, kind: baseline, summary: s,
     condition: 'event.data.categories.exists(c, c.startsWith("user")) && event.action == "export"'}
`
	e2, err := Compile([]Source{{Name: "b.yml", Data: []byte(bad)}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seeds, skipped = e2.BaselineSeeds()
	if len(seeds) != 1 || seeds[0].Rule != "b2" || len(skipped) != 1 || !strings.Contains(skipped[0].Reason, "data.records") {
		t.Fatalf("seeds %v, skipped %v", seeds, skipped)
	}
}

func TestBaselineFileErrors(t *testing.T) {
	cases := map[string]string{
		"history":     `baseline: {history: 30}`,
		"min_history": `baseline: {history: 3, min_history: 5}`,
		"period":      `baseline: {period: 10m}`,
		"distinct":    `aggregate: distinct(source.dataset)`,
		"threshold":   `threshold: 5`,
		"peers by":    `baseline: {peers: {by: data.categories}}`,
		"lateness":    `allowed_lateness: 7h`,
	}
	for name, extra := range cases {
		t.Run(name, func(t *testing.T) {
			src := "rules:\n  - id: b\n    title: t\n    description: d\n    severity: low\n    owner: o\n    kind: baseline\n" +
				"    condition: event.action == \"export\"\n    summary: s\n    " + extra + "\n"
			if _, err := Compile([]Source{{Name: "b.yml", Data: []byte(src)}}, Options{}); err == nil {
				t.Fatalf("want an error for %s", extra)
			}
		})
	}
}

// baselineEvents returns days of exports and shares of actors, in time
// order, with a few anomalous days.
func baselineEvents(days, actors int) []*event.Event {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	roles := []string{"analyst", "engineer", "support"}
	var out []*event.Event
	for d := range days {
		var day []*event.Event
		for a := range actors {
			if rng.IntN(5) == 0 {
				continue // a day off
			}
			n := 1 + rng.IntN(6)
			usual := 200 * (1 + a%7)
			if rng.IntN(60) == 0 {
				usual *= 4 + rng.IntN(20) // an anomalous day
			}
			for range n {
				e := &event.Event{
					ID: fmt.Sprintf("e-%d-%d-%d", d, a, len(day)), Type: event.TypeAccess, Action: event.ActionExport,
					Time:    t0.Add(time.Duration(d)*24*time.Hour + time.Duration(rng.Int64N(int64(24*time.Hour)))),
					Actor:   event.Actor{ID: fmt.Sprintf("u%03d", a), Kind: event.ActorUser, Role: roles[a%len(roles)]},
					Data:    event.Data{Records: int64(usual/n + rng.IntN(50)), HasRecords: true},
					Outcome: event.OutcomeSuccess,
				}
				if rng.IntN(4) == 0 {
					e.Type, e.Action = event.TypeShare, event.ActionTransfer
					e.Recipient = event.Recipient{Domain: []string{"acme-analytics.com", "mailwave.io"}[a%2], Kind: event.RecipientProcessor}
					e.Data.Records *= 30
				}
				day = append(day, e)
			}
		}
		slices.SortFunc(day, func(x, y *event.Event) int { return x.Time.Compare(y.Time) })
		out = append(out, day...)
	}
	return out
}

// TestBaselineRebuild checks that seeding a state with stored per-period
// totals (as BaselineHistory returns them), observing the events after
// the seeded ones and evaluating the rest raises the same alerts as
// evaluating every event.
func TestBaselineRebuild(t *testing.T) {
	e := baselineEngine(t)
	evs := baselineEvents(24, 60)
	cut := evs[len(evs)*3/4].Time.Add(-7 * time.Hour) // mid-day: the day is part seeded, part observed
	resume := cut.Add(e.Lookback() + 3*time.Hour)

	all := e.NewState(0)
	type got struct {
		id, sev string
		value   int64
	}
	var want []got
	var before []string
	for _, ev := range evs {
		all.Evaluate(ev, func(a *Alert) {
			if ev.Time.Before(resume) {
				before = append(before, a.ID)
				return
			}
			want = append(want, got{a.ID, string(a.Severity), a.Value})
		})
	}
	if len(want) == 0 || len(before) == 0 {
		t.Fatalf("the stream must raise alerts before and after the restart (%d, %d)", len(before), len(want))
	}

	// What BaselineHistory returns: totals per period and seed fields.
	re := e.NewState(0)
	seeds, _ := e.BaselineSeeds()
	for _, sd := range seeds {
		r := e.byID[sd.Rule]
		type row struct {
			ev  *event.Event
			tot int64
			n   int64
		}
		rows := map[string]*row{}
		var order []string
		from := cut.Add(-time.Duration(sd.Periods+1) * sd.Period)
		for _, ev := range evs {
			if !ev.Time.Before(cut) || ev.Time.Before(from) {
				continue
			}
			p := floorDiv(ev.Time.UnixNano(), int64(sd.Period)) * int64(sd.Period)
			var parts []string
			for _, f := range sd.Fields {
				id, _ := fieldByPath(f)
				parts = append(parts, stringField(ev, id))
			}
			k := fmt.Sprint(p, parts)
			if rows[k] == nil {
				c := *ev
				c.ID, c.Time, c.Data = "", time.Unix(0, p).UTC(), event.Data{}
				rows[k] = &row{ev: &c}
				order = append(order, k)
			}
			rows[k].tot += ev.Data.Records
			rows[k].n++
			_ = r
		}
		for _, k := range order {
			re.SeedBaseline(sd.Rule, rows[k].ev, rows[k].tot, rows[k].n)
		}
	}
	for _, ev := range evs {
		if ev.Time.Before(cut) {
			continue
		}
		if ev.Time.Before(resume) {
			re.Observe(ev)
			continue
		}
		if !slices.Contains(before, "") {
			for _, id := range before {
				re.MarkEmitted(id)
			}
			before = append(before, "")
		}
		re.Evaluate(ev, func(a *Alert) {
			if a2 := (got{a.ID, string(a.Severity), a.Value}); !slices.Contains(want, a2) {
				t.Errorf("rebuilt state raised %+v (%s), which evaluating everything did not", a2, a.Summary)
			}
			want = slices.DeleteFunc(want, func(g got) bool { return g == got{a.ID, string(a.Severity), a.Value} })
		})
	}
	for _, w := range want {
		t.Errorf("rebuilt state did not raise %+v", w)
	}
}

func TestBaselineSummary(t *testing.T) {
	e := baselineEngine(t)
	s := e.NewState(0)
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	var got []*Alert
	for d, n := range []int64{1000, 1200, 900, 1100, 1000, 7000} {
		s.Evaluate(&event.Event{ID: fmt.Sprint("e", d), Time: t0.Add(time.Duration(d) * 24 * time.Hour), Type: event.TypeAccess,
			Action: event.ActionExport, Outcome: event.OutcomeSuccess, Source: event.Source{System: "crm", Dataset: "customers"},
			Actor: event.Actor{ID: "jdoe", Role: "analyst", Department: "finance"}, Data: event.Data{Records: n}},
			func(a *Alert) { got = append(got, a) })
	}
	if len(got) != 1 {
		t.Fatalf("want 1 alert, got %d", len(got))
	}
	want := "jdoe (analyst, finance) has exported 7,000 records today (1 export so far, latest at 10:00 UTC), 7.0× their usual day (1,000 records, median of 5 active days), above the bound of 4,000; compared against history; latest export from crm/customers."
	if got[0].Summary != want {
		t.Fatalf("summary\n%s\nwant\n%s", got[0].Summary, want)
	}
}

// BenchmarkBaseline measures one Evaluate call of the shipped baseline
// rules alone with 100,000 actors that all have history.
func BenchmarkBaseline(b *testing.B) {
	benchEvaluate(b, baselineEngine(b), "mixed", nil)
}

// BenchmarkBaselineMemoryPerKey measures the heap per tracked group of
// export_baseline: 100,000 actors with a week of history each.
func BenchmarkBaselineMemoryPerKey(b *testing.B) {
	e := baselineEngine(b)
	next := benchStream("bulk_export")
	var perKey float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := e.NewState(0)
		for d := range 7 {
			for i := range benchActors {
				ev := next(i)
				ev.Time = ev.Time.Add(time.Duration(d) * 24 * time.Hour)
				s.Evaluate(ev, nil)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perKey = float64(after.HeapAlloc-before.HeapAlloc) / float64(s.Keys())
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perKey, "B/key")
}
