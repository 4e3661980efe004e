package rules

import (
	"fmt"
	"hash/fnv"
	"slices"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// TestSplit: the local engine has the rules grouped by actor, the shared
// ones are routed, and a reload keeps state.
func TestSplit(t *testing.T) {
	e := builtinEngine(t)
	sp := e.Split()
	var local []string
	for _, r := range sp.Local().Rules() {
		local = append(local, r.ID)
	}
	for _, id := range e.SharedRules() {
		if slices.Contains(local, id) {
			t.Errorf("shared rule %s is local", id)
		}
	}
	if len(local)+len(e.SharedRules()) != len(e.Rules()) || !slices.Contains(local, RuleBulkExport) {
		t.Fatalf("local rules %v", local)
	}
	if len(sp.Local().SharedRules()) != 0 || sp.Full() != e || !sp.Shared() || sp.Lookback() < time.Hour {
		t.Fatal("split accessors")
	}
	if sp.Local().Lookback() > e.Lookback() {
		t.Fatalf("local lookback %s over the engine's %s", sp.Local().Lookback(), e.Lookback())
	}
	st := sp.Local().NewState(1)
	ev := sharedShare("alice", 1, 0, 0, "user.behavior")
	ev.Recipient.Country = "DE"
	var got []string
	sp.Contribute(st, ev, func(rk RuleKey, _ ContextParts) { got = append(got, rk.Rule+"="+rk.Key) })
	want := []string{"partner_volume_spike=acme-analytics", "first_seen_category=acme-analytics", "first_seen_country=share"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("contributions %v, want %v", got, want)
	}
	access := sharedShare("alice", 1, 1, 0)
	access.Type, access.Action = event.TypeAccess, event.ActionExport
	sp.Contribute(st, access, func(rk RuleKey, _ ContextParts) { t.Errorf("an export contributes to %s", rk.Rule) })
	defer func() {
		if recover() == nil {
			t.Error("Contribute accepted a State of the full engine")
		}
	}()
	sp.Contribute(e.NewState(0), ev, func(RuleKey, ContextParts) {})
}

// repartitioned evaluates events as the pipeline does when it
// repartitions: per events partition (by actor), the local rules on a
// State of the split's Local engine; the shared rules' contributions
// encoded, routed by (rule, key) to one of n partitions, deduplicated by
// Marks and applied there.
type repartitioned struct {
	sp     *Split
	locals map[int32]*State
	router map[int32]*Router
	shared []*State
	marks  []Marks
	n      int
	alerts []*Alert
}

func newRepartitioned(e *Engine, n int) *repartitioned {
	rp := &repartitioned{sp: e.Split(), locals: map[int32]*State{}, router: map[int32]*Router{}, n: n, marks: make([]Marks, n)}
	for q := range n {
		rp.shared = append(rp.shared, e.NewSharedState(int32(q), new(Shared)))
	}
	return rp
}

func partitionOf(s string, n int) int32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return int32(h.Sum32() % uint32(n))
}

// feed evaluates ev (its Origin is set from its actor's partition and
// offset) and applies its contributions and progress marks, each twice:
// the second time they are duplicates.
func (rp *repartitioned) feed(t *testing.T, ev *event.Event) {
	p := partitionOf(ev.Actor.ID, rp.n)
	st := rp.locals[p]
	if st == nil {
		st = rp.sp.Local().NewState(p)
		rp.locals[p], rp.router[p] = st, rp.sp.NewRouter()
	}
	emit := func(a *Alert) { c := *a; rp.alerts = append(rp.alerts, &c) }
	st.Evaluate(ev, emit)
	var recs [][]byte
	var to []int32
	partition := func(rule, key string) int32 { return partitionOf(rule+"\x00"+key, rp.n) }
	rp.router[p].Route(st, ev, rp.n, partition, func(q int32, c *Contribution) {
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		recs, to = append(recs, b), append(to, q)
	})
	for q := range rp.n { // the batch's progress marks, after its contributions
		b, err := Progress(ev.Origin, ev.Time).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		recs, to = append(recs, b), append(to, int32(q))
	}
	for range 2 {
		for i, b := range recs {
			var c Contribution
			if err := c.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if c.Progress {
				rp.marks[to[i]].Advance(c.Event.Origin)
				continue
			}
			if !c.Hint && !rp.marks[to[i]].Admit(c.Event.Origin) {
				continue
			}
			if r := rp.shared[to[i]].Apply(&c, emit); r[Applied] != len(c.Rules) {
				t.Fatalf("apply %v: %v", c.Rules, r)
			}
		}
	}
}

// TestRepartitionedEqualsInProcess: the shared rules' alerts are the same
// whether the events are evaluated in one State or repartitioned, with
// duplicates, across partitions.
func TestRepartitionedEqualsInProcess(t *testing.T) {
	e := builtinEngine(t)
	one := e.NewState(0)
	var want []*Alert
	rp := newRepartitioned(e, 4)
	day := 24 * time.Hour
	partners := []string{"sftp.acme-analytics.com", "api.mailwave.io", "api.payflux.eu", "api.adnexa.com"}
	var offsets [4]int64
	n := 0
	add := func(actor string, domain string, at time.Duration, records int64, country string, cats ...string) {
		ev := shareTo(domain)
		ev.ID = fmt.Sprintf("e%d", n)
		n++
		ev.Time = ev.Time.Add(at)
		ev.Actor.ID = actor
		ev.Data.Records, ev.Data.Categories, ev.Recipient.Country = records, cats, country
		p := partitionOf(actor, 4)
		ev.Origin = event.Origin{Topic: "ev", Partition: p, Offset: offsets[p]}
		offsets[p]++
		plain := *ev
		plain.Origin = event.Origin{} // one State for every partition: no offset order
		one.Evaluate(&plain, func(a *Alert) { c := *a; want = append(want, &c) })
		rp.feed(t, ev)
	}
	actors := []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"}
	for d := range 9 {
		for i, dom := range partners {
			for j, a := range actors {
				add(a, dom, time.Duration(d)*day+time.Duration(i*10+j)*time.Minute, 500+int64(j*10), "DE", "user.behavior")
			}
		}
	}
	// Day 9: a spike to one partner spread over every actor (each under
	// the bound alone), a new category seen by two actors, a new country.
	for j, a := range actors {
		add(a, partners[0], 9*day+time.Duration(j)*time.Minute, 9000, "DE", "user.behavior")
	}
	add("a1", partners[1], 9*day+time.Hour, 10, "DE", "user.contact.email")
	add("a6", partners[1], 9*day+2*time.Hour, 10, "DE", "user.contact.email")
	add("a3", partners[2], 9*day+3*time.Hour, 10, "US", "user.behavior")

	key := func(as []*Alert) []string {
		var out []string
		for _, a := range as {
			if slices.Contains(e.SharedRules(), a.Rule) {
				out = append(out, fmt.Sprintf("%s %s %s %s value=%d events=%d %s", a.Rule, a.ID, a.Severity, a.GroupKey, a.Value, a.Events, a.Summary))
			}
		}
		slices.Sort(out)
		return out
	}
	w, g := key(want), key(rp.alerts)
	if len(w) < 3 {
		t.Fatalf("the in-process run raised only %v", w)
	}
	if !slices.Equal(w, g) {
		t.Fatalf("repartitioned alerts differ:\n got %q\nwant %q", g, w)
	}
	// The local rules' alerts are raised by the partitions as before.
	localWant, localGot := 0, 0
	for _, a := range want {
		if !slices.Contains(e.SharedRules(), a.Rule) {
			localWant++
		}
	}
	for _, a := range rp.alerts {
		if !slices.Contains(e.SharedRules(), a.Rule) {
			localGot++
		}
	}
	if localWant != localGot {
		t.Fatalf("%d local alerts, want %d", localGot, localWant)
	}
}

// TestApplyRefuses: contributions the state cannot take are reported.
func TestApplyRefuses(t *testing.T) {
	e := builtinEngine(t)
	st := e.NewSharedState(0, new(Shared))
	ev := sharedShare("alice", 1, 0, 0, "user.behavior")
	for _, tc := range []struct {
		rk   RuleKey
		want ApplyResult
	}{
		{RuleKey{"nope", KindBaseline, ""}, UnknownRule},
		{RuleKey{RuleBulkExport, KindThreshold, "alice"}, UnknownRule},
		{RuleKey{"partner_volume_spike", KindFirstSeen, "acme-analytics"}, KindChanged},
		{RuleKey{"partner_volume_spike", KindBaseline, "someone-else"}, KeyChanged},
		{RuleKey{"partner_volume_spike", KindBaseline, "acme-analytics"}, Applied},
	} {
		got := st.Apply(&Contribution{Rules: []RuleKey{tc.rk}, Event: ev}, nil)
		var want ApplyCounts
		want[tc.want] = 1
		if got != want {
			t.Errorf("%+v: %v, want %v", tc.rk, got, want)
		}
	}
	if UnknownRule.String() != "unknown_rule" || Applied.String() != "applied" {
		t.Error("String")
	}
}

// TestContextParts: the optional parts kept follow what the rule reads.
func TestContextParts(t *testing.T) {
	src := `
macros:
  ticketed: event.request.ticket != ""
rules:
  - {id: lean, title: t, description: d, severity: low, owner: o, kind: first_seen, summary: s,
     condition: 'event.type == "share"', group_by: [recipient.country], terms: [data.categories]}
  - id: excepted
    title: t
    description: d
    severity: low
    owner: o
    kind: first_seen
    summary: s
    condition: 'event.type == "share"'
    group_by: [recipient.country]
    terms: [data.categories]
    exceptions:
      - {when: 'ticketed || event.attributes["x"] == "y"', reason: r, owner: o, expires: 2030-01-01}
  - {id: consent, title: t, description: d, severity: low, owner: o, kind: first_seen, summary: '{{.Consent.OptedOut}}',
     condition: 'event.type == "share"', group_by: [recipient.country], terms: [data.categories]}
  - {id: all, title: t, description: d, severity: low, owner: o, kind: first_seen, summary: '{{.Event.ID}}',
     condition: 'event.type == "share"', group_by: [recipient.country], terms: [data.categories]}
`
	e, err := Compile([]Source{{Name: "p.yml", Data: []byte(src)}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ContextParts{"lean": 0, "excepted": PartRequest | PartAttributes, "consent": PartSubjects, "all": allParts}
	sp := e.Split()
	for id, w := range want {
		if got := sp.parts[id]; got != w {
			t.Errorf("%s keeps parts %b, want %b", id, got, w)
		}
	}
}

// TestLearningHints: a hint moves a partition's learning start back to the
// rule's first event, unless the learning was restarted after a rebuild.
func TestLearningHints(t *testing.T) {
	e := builtinEngine(t)
	r := e.byID["first_seen_category"]
	start := func(st *State) int64 { return st.rs[r.idx].(*firstSeenState).start }
	day := 24 * time.Hour
	hint := func(st *State, at time.Duration) {
		ev := sharedShare("bob", 2, 0, at)
		st.Apply(&Contribution{Rules: []RuleKey{{Rule: r.ID, Kind: KindFirstSeen}}, Hint: true, Event: ev}, nil)
	}
	st := e.NewSharedState(0, new(Shared))
	base := sharedShare("bob", 2, 0, 0).Time
	hint(st, 3*day)
	hint(st, day)
	hint(st, 2*day)
	if got := start(st); got != base.Add(day).UnixNano() {
		t.Fatalf("learning starts at %v, want the earliest hint", time.Unix(0, got).UTC())
	}
	st.RestartLearning(r.ID, base.Add(5*day))
	hint(st, 0)
	if got := start(st); got != base.Add(5*day).UnixNano() {
		t.Fatalf("a hint moved a restarted learning to %v", time.Unix(0, got).UTC())
	}
}

// TestSplitReload: a reload moves the local rules' state onto the new
// split's Local engine, and the shared stage's state onto the new engine.
func TestSplitReload(t *testing.T) {
	e1, e2 := builtinEngine(t), builtinEngine(t)
	sp1, sp2 := e1.Split(), e2.Split()
	local := sp1.Local().NewState(0)
	shared := e1.NewSharedState(0, new(Shared))
	ev := sharedShare("alice", 0, 0, 0, "user.behavior")
	ev.Type, ev.Action = event.TypeAccess, event.ActionExport // a local rule's group (bulk_export, first_seen_dataset)
	local.Evaluate(ev, nil)
	share := sharedShare("alice", 0, 1, 0, "user.behavior")
	var cs []*Contribution
	sp1.NewRouter().Route(local, share, 1, func(string, string) int32 { return 0 }, func(_ int32, c *Contribution) {
		cp := *c
		cs = append(cs, &cp)
	})
	for _, c := range cs {
		shared.Apply(c, nil)
	}
	lk, sk := local.Keys(), shared.sh.Keys()
	if lk == 0 || sk == 0 {
		t.Fatalf("nothing to carry: %d local, %d shared keys", lk, sk)
	}
	local.Rebind(sp2.Local())
	shared.Rebind(e2)
	if local.Keys() != lk || shared.sh.Keys() != sk || local.Engine() != sp2.Local() || shared.Engine() != e2 {
		t.Fatalf("after the reload: %d local keys (want %d), %d shared (want %d)", local.Keys(), lk, shared.sh.Keys(), sk)
	}
}
