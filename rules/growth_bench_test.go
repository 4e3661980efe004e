package rules

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/synth"
	"github.com/custos-privacy/custos/rules/partner"
)

// Cost growth (issue 8): how the rules' cost grows with the number of
// rules and with the number of active actors, on the generator's traffic
// (ingest/synth) rather than the synthetic exports of bench_test.go. The
// figures are in docs/performance.md ("Cost growth"); make bench-growth
// reruns them. Run:
//
//	go test ./rules -run '^$' -bench 'RuleCount|ActiveActors' -benchtime 2s -count 2

// growthTraffic is a day of the generator's normal traffic, decoded once:
// 100,000 events of about 440 actors, their times, and the generator's
// partner registry (its shares are within its agreements).
type growthTraffic struct {
	evs   []event.Event
	times []int64 // event time of evs[i], ns
	reg   *partner.Registry
}

var growthCache *growthTraffic

// growthDay returns the traffic, generated and decoded once per test
// binary.
func growthDay(b testing.TB) *growthTraffic {
	b.Helper()
	if growthCache != nil {
		return growthCache
	}
	g, err := synth.New(synth.Config{Events: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	var pf bytes.Buffer
	if err := g.WritePartners(&pf); err != nil {
		b.Fatal(err)
	}
	reg, err := partner.Parse("generator partners", pf.Bytes())
	if err != nil {
		b.Fatal(err)
	}
	tr := &growthTraffic{reg: reg}
	dec := event.NewDecoder(event.DefaultLimits())
	var buf []byte
	for {
		_, v, ok := g.Next(buf)
		if !ok {
			break
		}
		buf = v
		tr.evs = append(tr.evs, event.Event{})
		ev := &tr.evs[len(tr.evs)-1]
		if err := dec.Decode(v, nil, ev); err != nil {
			b.Fatal(err)
		}
		tr.times = append(tr.times, ev.Time.UnixNano())
	}
	growthCache = tr
	return tr
}

// growthEngine compiles the shipped rules plus extra against the
// generator's registry and the demo privacy statement.
func growthEngine(b testing.TB, tr *growthTraffic, extra ...Source) *Engine {
	b.Helper()
	e, err := Compile(append(Builtin(), extra...), Options{Registry: tr.reg, Policy: testPolicy(b)})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// ruleSetSources returns the rule files of a set of n rules: for n < 20,
// the shipped rules with all but n disabled (one of each kind kept
// first); for n > 20, the shipped rules plus n-20 generated variants.
func ruleSetSources(tr *growthTraffic, n int) []Source {
	shipped := len(shippedIDs)
	switch {
	case n < shipped:
		var y strings.Builder
		y.WriteString("rules:\n")
		for _, id := range shippedIDs[n:] {
			fmt.Fprintf(&y, "  - id: %s\n    title: off\n    description: off\n    severity: low\n    owner: bench\n"+
				"    kind: match\n    condition: \"false\"\n    enabled: false\n    summary: off\n", id)
		}
		return []Source{{Name: "growth-off.yml", Data: []byte(y.String())}}
	case n > shipped:
		return []Source{{Name: "growth.yml", Data: variantRules(tr, n-shipped)}}
	}
	return nil
}

// shippedIDs are the shipped rules, the ten kept in the 10-rule set first:
// every kind, and the checks that see every event.
var shippedIDs = []string{
	"bulk_export", "export_baseline", "first_seen_dataset", "first_seen_category", "query_then_share",
	"unknown_recipient", "agreement_category", "cleartext_channel", "subject_opted_out", "policy_violation",
	"partner_volume_spike", "first_seen_country", "recipient_not_approved", "no_agreement", "agreement_expired",
	"agreement_not_yet_valid", "agreement_use", "agreement_channel", "agreement_country", "subject_closed",
}

// BenchmarkRuleCount measures one Evaluate call on the generator's day
// with 10 rules (half of the shipped ones), the 20 shipped rules, and 50
// and 200 (the shipped rules plus generated variants: thresholds on other
// datasets, categories and systems, matches on other partners, first_seen
// on other fields, sequences and baselines of other datasets). The day is
// replayed day after day (times shifted by 24h a lap) after one lap of
// warm-up; ns/op is per event, events/s on one core.
func BenchmarkRuleCount(b *testing.B) {
	tr := growthDay(b)
	for _, n := range []int{10, 20, 50, 200} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			e := growthEngine(b, tr, ruleSetSources(tr, n)...)
			if got := len(e.Rules()) - disabled(e); got != n {
				b.Fatalf("%d rules in force, want %d", got, n)
			}
			s := e.NewState(0)
			alerts := 0
			emit := func(*Alert) { alerts++ }
			i := 0
			next := func() *event.Event {
				k := i % len(tr.evs)
				ev := &tr.evs[k]
				ev.Time = time.Unix(0, tr.times[k]+int64(i/len(tr.evs))*int64(24*time.Hour)).UTC()
				i++
				return ev
			}
			for range len(tr.evs) {
				s.Evaluate(next(), emit)
			}
			alerts = 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s.Evaluate(next(), emit)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(alerts)/float64(b.N), "alerts/event")
			b.ReportMetric(float64(s.Keys()), "keys")
		})
	}
}

// disabled counts the rules in e turned off by "enabled: false".
func disabled(e *Engine) int {
	n := 0
	for _, r := range e.Rules() {
		if !r.Enabled {
			n++
		}
	}
	return n
}

// BenchmarkActiveActors measures the shipped rules over the generator's
// traffic spread over 10,000, 100,000 and 1,000,000 distinct active
// actors: event i goes to actor (i × 7919) mod N, and event time advances
// by 10 min / N an event, so every actor acts every 10 minutes of event
// time whatever N. After an hour of event time (6N events: the one-hour
// windows are full) the live heap of the state is measured (after a GC;
// B/key is heap / tracked keys, every rule's windows, terms, sequences and
// baseline groups; B/actor is heap / N), then one Evaluate is timed.
// "bulk_export" runs that rule alone: its keys are exactly the actors'
// sliding windows. The nightly batch jobs are left out of the traffic
// (spread over random actors they would be bulk exports).
func BenchmarkActiveActors(b *testing.B) {
	tr := growthDay(b)
	// Copies: the benchmark rewrites their actor and time.
	var evs []event.Event
	for k := range tr.evs {
		if id := tr.evs[k].Actor.ID; id != synth.ServiceNightlyBackup && id != synth.ServiceDWHETL {
			evs = append(evs, tr.evs[k])
		}
	}
	pool := make([]*event.Event, len(evs))
	for k := range evs {
		pool[k] = &evs[k]
	}
	engines := []struct {
		name string
		eng  func() *Engine
	}{
		{"shipped", func() *Engine { return growthEngine(b, tr) }},
		{"bulk_export", func() *Engine {
			src := slices.DeleteFunc(Builtin(), func(s Source) bool { return !strings.HasSuffix(s.Name, "/exfiltration.yml") })
			e, err := Compile(src, Options{Registry: tr.reg})
			if err != nil {
				b.Fatal(err)
			}
			return e
		}},
	}
	for _, en := range engines {
		for _, n := range []int{10_000, 100_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/%d", en.name, n), func(b *testing.B) {
				benchActiveActors(b, en.eng(), pool, n)
			})
		}
	}
}

func benchActiveActors(b *testing.B, e *Engine, pool []*event.Event, n int) {
	actors := make([]string, n)
	for i := range actors {
		actors[i] = fmt.Sprintf("actor-%07d", i)
	}
	step := int64(10*time.Minute) / int64(n)
	t0 := benchT0.UnixNano()
	i := 0
	next := func() *event.Event {
		ev := pool[i%len(pool)]
		ev.Actor.ID = actors[(i*7919)%n]
		ev.Time = time.Unix(0, t0+int64(i)*step).UTC()
		i++
		return ev
	}
	alerts := 0
	emit := func(*Alert) { alerts++ }

	for _, ev := range pool {
		ev.Actor.ID = "" // drop the previous run's actors before measuring
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := e.NewState(0)
	for range 6 * n {
		s.Evaluate(next(), emit)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	keys := s.Keys()
	b.Logf("%d actors: %d keys (%s), heap %.1f MB", n, keys, keysByRule(s), heap/1e6)

	alerts = 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Evaluate(next(), emit)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(alerts)/float64(b.N), "alerts/event")
	b.ReportMetric(float64(keys), "keys")
	b.ReportMetric(heap/float64(keys), "B/key")
	b.ReportMetric(heap/float64(n), "B/actor")
	runtime.KeepAlive(s)
}

// keysByRule lists the rules that track keys and how many.
func keysByRule(s *State) string {
	m := map[string]int{}
	for _, r := range s.eng.rules {
		if rs := s.rs[r.idx]; rs != nil && rs.keys() > 0 {
			m[r.ID] = rs.keys()
		}
	}
	var parts []string
	for _, id := range slices.SortedFunc(maps.Keys(m), func(a, b string) int { return cmp.Compare(m[b], m[a]) }) {
		parts = append(parts, id+" "+strconv.Itoa(m[id]))
	}
	return strings.Join(parts, ", ")
}

// trafficValues are the values the traffic shows, in a fixed random order.
type trafficValues struct {
	datasets   [][2]string // system, dataset
	systems    []string
	categories []string
	partners   []string
	roles      []string
	depts      []string
	shareSys   []string    // systems data is shared from
	partnerCat [][2]string // partner, category shared to it
	roleDS     [][2]string // role, dataset it exports from
	queryDS    [][2]string // system, dataset queried in bulk
}

func valuesOf(tr *growthTraffic) *trafficValues {
	counts := map[string]map[string]int{}
	add := func(kind, v string) {
		if v == "" {
			return
		}
		if counts[kind] == nil {
			counts[kind] = map[string]int{}
		}
		counts[kind][v]++
	}
	for k := range tr.evs {
		ev := &tr.evs[k]
		add("dataset", ev.Source.System+"\x00"+ev.Source.Dataset)
		add("system", ev.Source.System)
		for _, c := range ev.Data.Categories {
			add("category", c)
		}
		add("role", ev.Actor.Role)
		add("dept", ev.Actor.Department)
		if ev.Type == event.TypeShare && ev.Recipient.ID != "" {
			add("partner", ev.Recipient.ID)
			add("shareSys", ev.Source.System)
			for _, c := range ev.Data.Categories {
				add("partnerCat", ev.Recipient.ID+"\x00"+c)
			}
		}
		if ev.Action == event.ActionExport || ev.Action == event.ActionDownload {
			add("roleDS", ev.Actor.Role+"\x00"+ev.Source.Dataset)
		}
		if ev.Action == event.ActionQuery && ev.Data.Records >= 1000 {
			add("queryDS", ev.Source.System+"\x00"+ev.Source.Dataset)
		}
	}
	// Sorted, then shuffled with a fixed seed: a rule set of any size is
	// then a sample of the traffic's values, frequent and rare alike.
	rng := rand.New(rand.NewPCG(1, 2))
	sorted := func(kind string) []string {
		m := counts[kind]
		out := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
			return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b))
		})
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}
	pairs := func(kind string) [][2]string {
		var out [][2]string
		for _, s := range sorted(kind) {
			a, b, _ := strings.Cut(s, "\x00")
			out = append(out, [2]string{a, b})
		}
		return out
	}
	return &trafficValues{
		datasets: pairs("dataset"), systems: sorted("system"), categories: sorted("category"),
		partners: sorted("partner"), roles: sorted("role"), depts: sorted("dept"), shareSys: sorted("shareSys"),
		partnerCat: pairs("partnerCat"), roleDS: pairs("roleDS"), queryDS: pairs("queryDS"),
	}
}

// ident turns values into a rule id part.
func ident(vs ...string) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteByte('_')
		}
		for _, r := range strings.ToLower(v) {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				b.WriteRune(r)
			} else {
				b.WriteByte('_')
			}
		}
	}
	return b.String()
}

// variantRules writes a rule file of n rules, each a distinct realistic
// variant of a shipped detection on other values of the traffic, taken in
// turn from fifteen templates: per-dataset and per-category volume
// thresholds, per-system query counts and dataset spreads, per-partner
// byte volumes, matches on large shares of a category to a partner, on a
// role exporting from a dataset, on denied moves and night-time exports,
// first_seen on recipient domains, datasets, purposes and departments,
// bulk-query-then-export sequences and per-system export baselines.
// Thresholds sit above normal traffic, as tuned rules do.
func variantRules(tr *growthTraffic, n int) []byte {
	v := valuesOf(tr)
	head := func(id, title, kind string) string {
		return fmt.Sprintf("  - id: %s\n    title: %s\n    description: Variant of a shipped detection (cost-growth benchmark).\n"+
			"    severity: medium\n    owner: privacy-office\n    kind: %s\n    summary: '{{.Actor}}: %s'\n", id, title, kind, strings.ReplaceAll(title, "'", "''"))
	}
	windows := []string{"30m", "1h", "2h", "4h"}
	templates := []func(j int) (string, bool){
		func(j int) (string, bool) { // volume threshold per dataset
			if j >= len(v.datasets) {
				return "", false
			}
			d := v.datasets[j]
			return head("bulk_export_"+ident(d[0], d[1]), "Bulk export from "+d[0]+"/"+d[1], "threshold") +
				fmt.Sprintf("    condition: 'moves_data && event.source.system == \"%s\" && event.source.dataset == \"%s\"'\n"+
					"    group_by: [actor.id]\n    aggregate: sum(records)\n    threshold: %d\n    window: %s\n",
					d[0], d[1], 5000+1000*(j%20), windows[j%len(windows)]), true
		},
		func(j int) (string, bool) { // volume threshold per category
			if j >= len(v.categories) {
				return "", false
			}
			c := v.categories[j]
			return head("bulk_category_"+ident(c), "Bulk move of "+c, "threshold") +
				fmt.Sprintf("    condition: 'moves_data && \"%s\" in event.data.categories'\n"+
					"    group_by: [actor.id]\n    aggregate: sum(records)\n    threshold: %d\n    window: 1h\n", c, 20000+5000*(j%4)), true
		},
		func(j int) (string, bool) { // query count per system
			if j >= len(v.systems) {
				return "", false
			}
			s := v.systems[j]
			return head("query_burst_"+ident(s), "Query burst on "+s, "threshold") +
				fmt.Sprintf("    condition: 'event.action == \"query\" && event.source.system == \"%s\"'\n"+
					"    group_by: [actor.id]\n    aggregate: count\n    threshold: %d\n    window: 10m\n", s, 200+10*j), true
		},
		func(j int) (string, bool) { // dataset spread per system
			if j >= len(v.systems) {
				return "", false
			}
			s := v.systems[j]
			return head("dataset_spread_"+ident(s), "Many datasets of "+s, "threshold") +
				fmt.Sprintf("    condition: 'event.type == \"access\" && event.source.system == \"%s\"'\n"+
					"    group_by: [actor.id]\n    aggregate: distinct(source.dataset)\n    threshold: 12\n    window: 1h\n", s), true
		},
		func(j int) (string, bool) { // byte volume per partner
			if j >= len(v.partners) {
				return "", false
			}
			p := v.partners[j]
			return head("partner_bytes_"+ident(p), "Byte volume to "+p, "threshold") +
				fmt.Sprintf("    condition: 'third_party_share && event.transfer.partner == \"%s\"'\n"+
					"    group_by: [transfer.partner]\n    aggregate: sum(bytes)\n    threshold: %d\n    window: 1h\n", p, int64(5e9)+int64(j)*1e8), true
		},
		func(j int) (string, bool) { // large share of a category to a partner
			if j >= len(v.partnerCat) {
				return "", false
			}
			pc := v.partnerCat[j]
			return head("large_share_"+ident(pc[0], pc[1]), "Large share of "+pc[1]+" to "+pc[0], "match") +
				fmt.Sprintf("    condition: 'third_party_share && event.transfer.partner == \"%s\" && \"%s\" in event.data.categories && event.data.records >= 50000'\n"+
					"    group_by: [actor.id, transfer.partner]\n", pc[0], pc[1]), true
		},
		func(j int) (string, bool) { // a role exporting from a dataset in bulk
			if j >= len(v.roleDS) {
				return "", false
			}
			rd := v.roleDS[j]
			return head("role_export_"+ident(rd[0], rd[1]), rd[0]+" exports "+rd[1]+" in bulk", "match") +
				fmt.Sprintf("    condition: 'event.actor.role == \"%s\" && event.source.dataset == \"%s\" && event.action in [\"export\", \"download\"] && event.data.records >= 5000'\n",
					rd[0], rd[1]), true
		},
		func(j int) (string, bool) { // denied moves per system
			if j >= len(v.systems) {
				return "", false
			}
			s := v.systems[j]
			return head("denied_move_"+ident(s), "Denied move from "+s, "match") +
				fmt.Sprintf("    condition: 'event.outcome == \"denied\" && event.action in moving_actions && event.source.system == \"%s\"'\n", s), true
		},
		func(j int) (string, bool) { // night-time exports per system
			if j >= len(v.systems) {
				return "", false
			}
			s := v.systems[j]
			return head("night_export_"+ident(s), "Night-time export from "+s, "match") +
				fmt.Sprintf("    condition: 'moves_data && event.actor.kind == \"user\" && event.source.system == \"%s\" && event.time.getHours(\"Europe/Berlin\") < 5 && event.data.records >= 500'\n", s), true
		},
		func(j int) (string, bool) { // first recipient domain per actor and system
			if j >= len(v.shareSys) {
				return "", false
			}
			s := v.shareSys[j]
			return head("first_domain_"+ident(s), "First recipient domain for data of "+s, "first_seen") +
				fmt.Sprintf("    condition: 'third_party_share && event.source.system == \"%s\"'\n"+
					"    group_by: [actor.id]\n    terms: [recipient.domain]\n", s), true
		},
		func(j int) (string, bool) { // first dataset per role in a department
			if j >= len(v.depts) {
				return "", false
			}
			d := v.depts[j]
			return head("first_dataset_role_"+ident(d), "First dataset exported by a role of "+d, "first_seen") +
				fmt.Sprintf("    condition: 'moved_out && event.actor.department == \"%s\"'\n"+
					"    group_by: [actor.role]\n    terms: [source.system, source.dataset]\n", d), true
		},
		func(j int) (string, bool) { // first purpose per partner
			if j >= len(v.partners) {
				return "", false
			}
			p := v.partners[j]
			return head("first_purpose_"+ident(p), "First purpose of a share to "+p, "first_seen") +
				fmt.Sprintf("    condition: 'third_party_share && event.transfer.partner == \"%s\"'\n"+
					"    group_by: [transfer.partner]\n    terms: [purpose]\n", p), true
		},
		func(j int) (string, bool) { // first department per dataset of a system
			if j >= len(v.systems) {
				return "", false
			}
			s := v.systems[j]
			return head("first_department_"+ident(s), "First department exporting from "+s, "first_seen") +
				fmt.Sprintf("    condition: 'event.source.system == \"%s\" && event.action in [\"export\", \"download\"]'\n"+
					"    group_by: [source.dataset]\n    terms: [actor.department]\n", s), true
		},
		func(j int) (string, bool) { // bulk query then export of a dataset
			if j >= len(v.queryDS) {
				return "", false
			}
			d := v.queryDS[j]
			return head("query_then_export_"+ident(d[0], d[1]), "Bulk query of "+d[0]+"/"+d[1]+" then an export", "sequence") +
				fmt.Sprintf("    group_by: [actor.id]\n    window: 1h\n    steps:\n"+
					"      - name: bulk_query\n        condition: 'event.action == \"query\" && event.source.dataset == \"%s\" && event.data.records >= %d'\n"+
					"      - name: export\n        condition: 'moved_out && event.source.system == \"%s\"'\n", d[1], 20000+1000*j, d[0]), true
		},
		func(j int) (string, bool) { // export baseline per system
			if j >= len(v.systems) {
				return "", false
			}
			s := v.systems[j]
			return head("export_baseline_"+ident(s), "Exports from "+s+" far above the actor's usual", "baseline") +
				fmt.Sprintf("    condition: 'moved_out && event.source.system == \"%s\"'\n"+
					"    group_by: [actor.id]\n    aggregate: sum(records)\n    baseline: {min_history: 5, min_volume: %d, factor: 4, mads: 8}\n",
					s, 2000+100*j), true
		},
	}
	var y strings.Builder
	y.WriteString("# Generated by rules/growth_bench_test.go.\nrules:\n")
	seen := map[string]bool{}
	count := 0
	for j := 0; count < n; j++ {
		progress := false
		for _, t := range templates {
			if count == n {
				break
			}
			r, ok := t(j)
			if !ok {
				continue
			}
			progress = true
			id := strings.TrimPrefix(strings.SplitN(r, "\n", 2)[0], "  - id: ")
			if seen[id] {
				continue
			}
			seen[id] = true
			y.WriteString(r)
			count++
		}
		if !progress {
			panic(fmt.Sprintf("the traffic yields only %d rule variants, %d wanted", count, n))
		}
	}
	return []byte(y.String())
}

// TestVariantRules: the generated variants compile, are distinct, and the
// rule sets of the growth benchmark have the sizes they claim.
func TestVariantRules(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and decodes a day of traffic")
	}
	tr := growthDay(t)
	for _, n := range []int{10, 20, 50, 200} {
		e := growthEngine(t, tr, ruleSetSources(tr, n)...)
		if got := len(e.Rules()) - disabled(e); got != n {
			t.Errorf("set of %d: %d rules in force", n, got)
		}
	}
	e := growthEngine(t, tr, ruleSetSources(tr, 200)...)
	conds := map[string]string{}
	kinds := map[Kind]int{}
	for _, r := range e.Rules() {
		c := r.Condition
		for _, st := range r.Steps {
			c += " then " + st.Condition
		}
		c += " by " + strings.Join(r.GroupBy, ",") + " " + r.Aggregate + " " + strings.Join(r.Terms, ",")
		if prev, ok := conds[c]; ok {
			t.Errorf("rules %s and %s are the same", prev, r.ID)
		}
		conds[c] = r.ID
		kinds[r.Kind]++
	}
	t.Logf("200 rules by kind: %v", kinds)
}
