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
	pg := peerGroup{hist: make([][peerBuckets]uint32, 16), head: noPeriod, cacheP: noPeriod}
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

// baselineEngine compiles the shipped baseline rules alone, with each
// pair of edits (old, new) applied to their rules and tests (every
// occurrence; not to the comments at the top of the file).
func baselineEngine(t testing.TB, edits ...string) *Engine {
	t.Helper()
	var srcs []Source
	for _, s := range Builtin() {
		if strings.HasSuffix(s.Name, "/baseline.yml") {
			head, body, ok := strings.Cut(string(s.Data), "\nrules:\n")
			if !ok {
				t.Fatal("baseline.yml has no rules")
			}
			for i := 0; i+1 < len(edits); i += 2 {
				if !strings.Contains(body, edits[i]) {
					t.Fatalf("baseline.yml has no %q", edits[i])
				}
				body = strings.ReplaceAll(body, edits[i], edits[i+1])
			}
			s.Data = []byte(head + "\nrules:\n" + body)
			srcs = append(srcs, s)
		}
	}
	e, err := Compile(srcs, Options{Registry: testRegistry(t)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// baselineVariants are edits of the shipped baseline rules that the
// history tests run with: the shipped settings, a longer history, the
// days of a time zone and hours.
var baselineVariants = []struct {
	name  string
	edits []string
}{
	{"14 days", nil},
	{"28 days", []string{"history: 14d", "history: 28d"}},
	{"Berlin days", []string{"history: 14d", "history: 14d\n      timezone: Europe/Berlin"}},
	{"hours", []string{"period: 1d", "period: 1h", "history: 14d", "history: 7d", "allowed_lateness: 1h", "allowed_lateness: 10m"}},
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

// baselineRule is a baseline rule file whose rule ends with extra (YAML
// lines indented by four spaces); extra starts on line 10.
func baselineRule(extra string) []byte {
	return []byte("rules:\n  - id: b\n    title: t\n    description: d\n    severity: low\n    owner: o\n    kind: baseline\n" +
		"    condition: event.action == \"export\"\n    summary: s\n" + extra)
}

// TestBaselineFileErrors: bad baseline settings are refused with the
// file, the line and column of the setting at fault, and the cause.
func TestBaselineFileErrors(t *testing.T) {
	cases := []struct{ name, extra, want string }{
		{"history not a duration", "    baseline: {history: 14}\n", `b.yml:10:25: baseline history must be a duration such as 14d or 28d (how far back the usual is taken), not "14"`},
		{"history too long", "    baseline: {history: 91d}\n", "b.yml:10:25: baseline history 91d is more than the maximum of 90d"},
		{"history zero", "    baseline: {history: 0d}\n", `b.yml:10:25: baseline history must be a duration`},
		{"history not whole periods", "    baseline: {period: 1d, history: 36h}\n", "b.yml:10:37: baseline history 36h is not a whole number of 1d periods"},
		{"history under a period", "    baseline: {period: 1d, history: 12h}\n", "b.yml:10:37: baseline history 12h is shorter than one period of 1d"},
		{"default history, odd period", "    baseline: {period: 5h}\n", "b.yml:10:24: baseline history 14d is not a whole number of 5h periods"},
		{"too many periods", "    baseline:\n      period: 1h\n      history: 60d\n", "b.yml:12:16: baseline history 60d of 1h periods is 1440 periods, more than the 744 a group may keep"},
		{"min_history over the periods", "    baseline:\n      period: 1h\n      history: 3h\n      min_history: 5\n", "b.yml:13:20: baseline min_history 5 is more than the 3 periods of history 3h"},
		{"period too short", "    baseline: {period: 10m}\n", "b.yml:10:24: baseline period must be a whole number of minutes, at least 1h, not 10m"},
		{"period not a duration", "    baseline: {period: daily}\n", `b.yml:10:24: baseline period must be a duration such as 10m, 1h or 7d, not "daily"`},
		{"unknown time zone", "    baseline: {timezone: Mars/Olympus}\n", `b.yml:10:26: baseline timezone "Mars/Olympus" is not a time zone this system knows`},
		{"local time zone", "    baseline: {timezone: Local}\n", `b.yml:10:26: baseline timezone must be an IANA time zone name such as Europe/Berlin or UTC, not "Local"`},
		{"time zone of hours", "    baseline: {period: 1h, history: 2d, timezone: Europe/Berlin}\n", "b.yml:10:51: baseline timezone applies to day periods (period: 1d), not to periods of 1h"},
		{"distinct", "    aggregate: distinct(source.dataset)\n", "a baseline rule aggregates count, sum(records) or sum(bytes)"},
		{"threshold", "    threshold: 5\n", "threshold does not apply to baseline rules"},
		{"peers by", "    baseline: {peers: {by: data.categories}}\n", `peers by: "data.categories" is not a string field`},
		{"lateness", "    allowed_lateness: 7h\n", "allowed_lateness 7h is more than a quarter of the period 1d"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile([]Source{{Name: "b.yml", Data: baselineRule(tc.extra)}}, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestBaselineSettings: period, history, timezone and min_history, their
// defaults, and what they make of the periods.
func TestBaselineSettings(t *testing.T) {
	cases := []struct {
		name, extra     string
		period, history time.Duration
		periods, minH   int
		zone            string
	}{
		{"defaults", "", 24 * time.Hour, 14 * 24 * time.Hour, 14, 5, ""},
		{"four weeks", "    baseline: {history: 28d}\n", 24 * time.Hour, 28 * 24 * time.Hour, 28, 5, ""},
		{"the maximum", "    baseline: {history: 90d, min_history: 20}\n", 24 * time.Hour, 90 * 24 * time.Hour, 90, 20, ""},
		{"hours", "    baseline: {period: 1h, history: 7d}\n", time.Hour, 7 * 24 * time.Hour, 168, 5, ""},
		{"a month of hours", "    baseline: {period: 1h, history: 31d}\n", time.Hour, 31 * 24 * time.Hour, 744, 5, ""},
		{"few hours", "    baseline: {period: 1h, history: 3h}\n", time.Hour, 3 * time.Hour, 3, 3, ""},
		{"local days", "    baseline: {timezone: Europe/Berlin}\n", 24 * time.Hour, 14 * 24 * time.Hour, 14, 5, "Europe/Berlin"},
		{"UTC is the default", "    baseline: {period: 1d, timezone: UTC}\n", 24 * time.Hour, 14 * 24 * time.Hour, 14, 5, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Compile([]Source{{Name: "b.yml", Data: baselineRule(tc.extra)}}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			b := e.byID["b"].Baseline
			if b.Period != tc.period || b.History != tc.history || b.Periods() != tc.periods || b.MinHistory != tc.minH || b.Timezone != tc.zone {
				t.Fatalf("period %s history %s periods %d min_history %d timezone %q, want %s %s %d %d %q",
					b.Period, b.History, b.Periods(), b.MinHistory, b.Timezone, tc.period, tc.history, tc.periods, tc.minH, tc.zone)
			}
			if (b.loc != nil) != (tc.zone != "") {
				t.Fatalf("location %v for timezone %q", b.loc, tc.zone)
			}
			seeds, _ := e.BaselineSeeds()
			if len(seeds) != 1 || seeds[0].Period != tc.period || seeds[0].Periods != tc.periods || seeds[0].Timezone != tc.zone {
				t.Fatalf("seeds %+v", seeds)
			}
		})
	}
}

// TestBaselineLocalDays: the periods of a rule with a time zone are that
// zone's calendar days, 23 or 25 hours long when the clocks change, in
// zones with half-hour offsets and in zones whose clocks skip midnight.
func TestBaselineLocalDays(t *testing.T) {
	for _, zone := range []string{"Europe/Berlin", "America/Santiago", "Asia/Kolkata", "Australia/Lord_Howe", "America/New_York"} {
		t.Run(zone, func(t *testing.T) {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Fatal(err)
			}
			b := &Baseline{Period: 24 * time.Hour, Timezone: zone, loc: loc}
			lengths := map[time.Duration]bool{}
			for at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); at.Year() == 2026; at = at.Add(15 * time.Minute) {
				p := b.periodOf(at.UnixNano())
				y, m, d := at.In(loc).Date()
				if want := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400; int64(p) != want {
					t.Fatalf("%s (%s local): period %d, want day %d", at, at.In(loc), p, want)
				}
				start, end := b.periodStart(p), b.periodStart(p+1)
				if at.UnixNano() < start || at.UnixNano() >= end || b.periodOf(start) != p || b.periodOf(end-1) != p {
					t.Fatalf("%s: period %d runs [%s, %s)", at, p, time.Unix(0, start).In(loc), time.Unix(0, end).In(loc))
				}
				lengths[time.Duration(end-start)] = true
			}
			if zone != "Asia/Kolkata" && len(lengths) < 3 {
				t.Fatalf("day lengths %v: want days of 24h and the clock-change days", lengths)
			}
		})
	}
	utc := &Baseline{Period: 24 * time.Hour}
	at := time.Date(2026, 3, 2, 23, 30, 0, 0, time.UTC)
	if p := utc.periodOf(at.UnixNano()); p != 20514 || utc.periodStart(p) != time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).UnixNano() {
		t.Fatalf("UTC day of %s: %d", at, p)
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
// evaluating every event, for the shipped rules and with a longer
// history, Berlin days and hours.
func TestBaselineRebuild(t *testing.T) {
	for _, v := range baselineVariants {
		t.Run(v.name, func(t *testing.T) { testBaselineRebuild(t, baselineEngine(t, v.edits...)) })
	}
}

func testBaselineRebuild(t *testing.T, e *Engine) {
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
		type row struct {
			ev  *event.Event
			tot int64
			n   int64
		}
		rows := map[string]*row{}
		var order []string
		from := sd.HistoryStart(cut)
		for _, ev := range evs {
			if !ev.Time.Before(cut) || ev.Time.Before(from) {
				continue
			}
			p := storedPeriod(t, sd, ev.Time)
			var parts []string
			for _, f := range sd.Fields {
				id, _ := fieldByPath(f)
				parts = append(parts, stringField(ev, id))
			}
			k := fmt.Sprint(p, parts)
			if rows[k] == nil {
				c := *ev
				c.ID, c.Time, c.Data = "", p, event.Data{}
				rows[k] = &row{ev: &c}
				order = append(order, k)
			}
			rows[k].tot += ev.Data.Records
			rows[k].n++
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

// storedPeriod is the time BaselineHistory gives the stored total of the
// period holding t: the period start, or local noon of a time zone's day.
func storedPeriod(t *testing.T, sd BaselineSeed, at time.Time) time.Time {
	if sd.Timezone == "" {
		return time.Unix(0, floorDiv(at.UnixNano(), int64(sd.Period))*int64(sd.Period)).UTC()
	}
	loc, err := time.LoadLocation(sd.Timezone)
	if err != nil {
		t.Fatal(err)
	}
	y, m, d := at.In(loc).Date()
	return time.Date(y, m, d, 12, 0, 0, 0, loc)
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
// export_baseline, 100,000 actors with a week of history each, for the
// shipped 14 days of history, 28 days, and 14 days of hours: a group's
// ring holds history/period + 2 totals of 4 bytes.
func BenchmarkBaselineMemoryPerKey(b *testing.B) {
	for _, v := range []struct {
		name  string
		edits []string
	}{
		{"history=14d", nil},
		{"history=28d", []string{"history: 14d", "history: 28d"}},
		{"period=1h,history=14d", []string{"period: 1d", "period: 1h", "allowed_lateness: 1h", "allowed_lateness: 10m"}},
	} {
		b.Run(v.name, func(b *testing.B) {
			e := baselineEngine(b, v.edits...)
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
		})
	}
}

// TestBaselineReload: a reload that changes a baseline rule's history
// keeps the totals it has (rings are cut or extended), one that changes
// its time zone starts it again (other days), silent in warm-up.
func TestBaselineReload(t *testing.T) {
	e14 := baselineEngine(t)
	e28 := baselineEngine(t, "history: 14d", "history: 28d")
	e3 := baselineEngine(t, "history: 14d", "history: 3d", "min_history: 5", "min_history: 2")
	berlin := baselineEngine(t, "history: 14d", "history: 28d\n      timezone: Europe/Berlin")
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	s := e14.NewState(0)
	var got []*Alert
	export := func(day int, n int64) {
		s.Evaluate(&event.Event{ID: fmt.Sprint("e", day), Time: t0.Add(time.Duration(day) * 24 * time.Hour), Type: event.TypeAccess,
			Action: event.ActionExport, Outcome: event.OutcomeSuccess, Actor: event.Actor{ID: "jdoe", Role: "analyst"},
			Data: event.Data{Records: n}}, func(a *Alert) { got = append(got, a) })
	}
	ring := func() int {
		st := s.rs[s.eng.byID["export_baseline"].idx].(*baselineState)
		return len(st.groups["jdoe"].tot)
	}
	for d := range 6 {
		export(d, 1000)
	}
	s.Rebind(e28)
	export(6, 6000)
	if len(got) != 1 || got[0].Value != 6000 || ring() != 30 {
		t.Fatalf("after a longer history: %d alerts, ring %d; want the history kept and 1 alert", len(got), ring())
	}
	s.Rebind(e3)
	export(7, 1000)
	export(8, 1000)
	export(9, 9000)
	if len(got) != 2 || got[1].Value != 9000 || !strings.Contains(got[1].Summary, "median of 3 active days") || ring() != 5 {
		t.Fatalf("after a shorter history: %d alerts, ring %d (%v)", len(got), ring(), got)
	}
	s.Rebind(berlin)
	export(10, 9000)
	if len(got) != 2 {
		t.Fatalf("after a time zone change the history starts again, in warm-up: got %s", got[len(got)-1].Summary)
	}
}

// TestBaselineHours: an hourly baseline judges each hour against the
// actor's usual active hour, and ids, windows and the summary say hours.
func TestBaselineHours(t *testing.T) {
	e := baselineEngine(t, "period: 1d", "period: 1h", "history: 14d", "history: 7d", "allowed_lateness: 1h", "allowed_lateness: 10m",
		"exported {{thousands .Value}} records today", "exported {{thousands .Value}} records this {{.Period}}")
	s := e.NewState(0)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var got []*Alert
	for h, n := range []int64{300, 250, 0, 320, 280, 0, 0, 310, 2500} {
		if n == 0 {
			continue // quiet hours are not normal hours of 0
		}
		s.Evaluate(&event.Event{ID: fmt.Sprint("e", h), Time: t0.Add(time.Duration(h)*time.Hour + 20*time.Minute), Type: event.TypeAccess,
			Action: event.ActionExport, Outcome: event.OutcomeSuccess, Actor: event.Actor{ID: "jdoe", Role: "analyst"},
			Data: event.Data{Records: n}}, func(a *Alert) { got = append(got, a) })
	}
	if len(got) != 1 {
		t.Fatalf("want 1 alert, got %d", len(got))
	}
	a := got[0]
	if !a.WindowStart.Equal(t0.Add(8*time.Hour)) || a.WindowEnd.Sub(a.WindowStart) != time.Hour || a.Value != 2500 ||
		!strings.Contains(a.Summary, "records this hour") || !strings.Contains(a.Summary, "median of 5 active") {
		t.Fatalf("alert %s..%s value %d: %s", a.WindowStart, a.WindowEnd, a.Value, a.Summary)
	}
}

// TestBaselineLocalDayAlerts: with a time zone, exports either side of
// local midnight count in two days (quiet), and an alert's window is the
// local day, 23 hours long on the day the clocks go forward.
func TestBaselineLocalDayAlerts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		zone   string
		alerts int
	}{
		{"UTC days add up the evening and the night", "", 2},
		{"Berlin days split them", "\n      timezone: Europe/Berlin", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := baselineEngine(t, "history: 14d", "history: 14d"+tc.zone)
			s := e.NewState(0)
			var got []*Alert
			export := func(at time.Time, n int64) {
				s.Evaluate(&event.Event{ID: at.String(), Time: at, Type: event.TypeAccess, Action: event.ActionExport,
					Outcome: event.OutcomeSuccess, Actor: event.Actor{ID: "jdoe", Role: "analyst"}, Data: event.Data{Records: n}},
					func(a *Alert) { got = append(got, a) })
			}
			t0 := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
			for d := range 6 {
				export(t0.AddDate(0, 0, d), 1000)
			}
			// 2026-03-26: 2,500 at 22:30 UTC (23:30 in Berlin), 2,500 at
			// 23:30 UTC (00:30 on the 27th in Berlin).
			export(time.Date(2026, 3, 26, 22, 30, 0, 0, time.UTC), 2500)
			export(time.Date(2026, 3, 26, 23, 30, 0, 0, time.UTC), 2500)
			// 2026-03-29, the day Berlin's clocks go forward: 9,000 records.
			export(time.Date(2026, 3, 29, 10, 0, 0, 0, time.UTC), 9000)
			if len(got) != tc.alerts {
				t.Fatalf("%d alerts, want %d", len(got), tc.alerts)
			}
			last := got[len(got)-1]
			start, length := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC), 24*time.Hour
			if tc.zone != "" {
				start, length = time.Date(2026, 3, 28, 23, 0, 0, 0, time.UTC), 23*time.Hour
			}
			if !last.WindowStart.Equal(start) || last.WindowEnd.Sub(last.WindowStart) != length || last.ID != StableID("export_baseline", "jdoe", start) {
				t.Fatalf("window %s..%s, id %s", last.WindowStart, last.WindowEnd, last.ID)
			}
		})
	}
}

// TestPartitionTermSeeds: the first_seen rules grouped by actor are
// seeded per partition from the combinations of the fields they read; a
// state seeded so after a restart knows the actor's datasets and alerts
// on a new one at once, where a state that only saw the recent events
// would learn again, silently.
func TestPartitionTermSeeds(t *testing.T) {
	e := builtinEngine(t)
	seeds, skipped := e.PartitionTermSeeds()
	if len(skipped) != 0 || len(seeds) != 1 || seeds[0].Rule != "first_seen_dataset" ||
		strings.Join(seeds[0].Fields, ",") != "action,actor.id,outcome,source.dataset,source.system,type" || seeds[0].Window != DefaultTermRetention {
		t.Fatalf("seeds %+v, skipped %+v", seeds, skipped)
	}
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	export := func(day int, dataset string) *event.Event {
		return &event.Event{ID: fmt.Sprint("e", day, dataset), Time: t0.Add(time.Duration(day) * 24 * time.Hour), Type: event.TypeAccess,
			Action: event.ActionExport, Outcome: event.OutcomeSuccess, Actor: event.Actor{ID: "jdoe", Role: "analyst"},
			Source: event.Source{System: "crm", Dataset: dataset}, Data: event.Data{Records: 100, HasRecords: true}}
	}
	// What PartitionTerms returns for 9 days of exports from crm/customers.
	type row struct {
		ev          *event.Event
		first, last time.Time
	}
	stored := map[string]*row{}
	for d := range 9 {
		ev := export(d, "customers")
		var k []string
		for _, f := range seeds[0].Fields {
			id, _ := fieldByPath(f)
			k = append(k, stringField(ev, id))
		}
		key := strings.Join(k, "|")
		if stored[key] == nil {
			stored[key] = &row{ev: ev, first: ev.Time}
		}
		stored[key].last = ev.Time
	}
	for _, tc := range []struct {
		name   string
		seeded bool
		want   int
	}{
		{"seeded from storage", true, 1},
		{"recent events only: learning again", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := e.NewState(0)
			if tc.seeded {
				for _, r := range stored {
					if !s.SeedTerms("first_seen_dataset", r.ev, r.first, r.last) {
						t.Fatal("a stored row did not count")
					}
				}
			}
			s.Observe(export(8, "customers"))
			got := 0
			for _, ev := range []*event.Event{export(9, "customers"), export(9, "payments"), export(10, "payments")} {
				s.Evaluate(ev, func(a *Alert) {
					if a.Rule == "first_seen_dataset" {
						got++
						if ev.Source.Dataset != "payments" {
							t.Errorf("alert on a known dataset: %s", a.Summary)
						}
					}
				})
			}
			if got != tc.want {
				t.Fatalf("%d first_seen_dataset alerts, want %d", got, tc.want)
			}
		})
	}
}

// TestBaselineEscalatesAfterRestart: an alert raised before a restart, on
// a day whose total is then seeded, is not raised again after it, but
// still escalates when the day goes on growing, once, as it would have
// without the restart.
func TestBaselineEscalatesAfterRestart(t *testing.T) {
	e := baselineEngine(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	export := func(at time.Duration, n int64) *event.Event {
		return &event.Event{ID: fmt.Sprint("e", at), Time: t0.Add(at), Type: event.TypeAccess, Action: event.ActionExport,
			Outcome: event.OutcomeSuccess, Actor: event.Actor{ID: "jdoe", Role: "analyst"}, Data: event.Data{Records: n}}
	}
	day := 24 * time.Hour
	before := e.NewState(0)
	var raised []*Alert
	for d := range 5 {
		before.Evaluate(export(time.Duration(d)*day, 1000), func(a *Alert) { raised = append(raised, a) })
	}
	before.Evaluate(export(5*day, 5000), func(a *Alert) { raised = append(raised, a) })
	if len(raised) != 1 || raised[0].Severity != SeverityHigh {
		t.Fatalf("before the restart: %v", raised)
	}
	// The restart: the six days' totals seeded, the alert's id known.
	after := e.NewState(0)
	for d, n := range []int64{1000, 1000, 1000, 1000, 1000, 5000} {
		if !after.SeedBaseline("export_baseline", export(time.Duration(d)*day, 0), n, 1) {
			t.Fatal("a stored total did not count")
		}
	}
	after.MarkEmitted(raised[0].ID)
	var got []*Alert
	// The first event after the restart takes the day past 20 × the
	// median: the restarted state never judged the day at its high level.
	for _, ev := range []*event.Event{export(5*day+2*time.Hour, 20000), export(5*day+3*time.Hour, 1000)} {
		after.Evaluate(ev, func(a *Alert) { got = append(got, a) })
	}
	if len(got) != 1 || got[0].ID != raised[0].ID || got[0].Severity != SeverityCritical || got[0].Value != 25000 {
		t.Fatalf("after the restart: %d alerts %v, want the escalation of %s to critical once", len(got), got, raised[0].ID)
	}
}
