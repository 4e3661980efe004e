package rules

import (
	"strings"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// Split is an engine cut along where rule state lives, for a pipeline that
// repartitions the shared rules (see Shared) by their group key:
//
//   - Local is an engine of the rules grouped by actor only, evaluated per
//     Kafka partition of the events as usual (a State of Local never
//     holds a shared rule);
//   - the shared rules are not evaluated there: Contribute (or a Router)
//     hands each event's Contribution to each of them, to be sent to the
//     partition that owns the rule's group and applied there with
//     State.Apply, on a State of the full engine made with
//     NewSharedState.
//
// Local's rules are copies of the full engine's (same conditions, same
// ids); Local.Lookback and the retention of alert ids cover Local's rules
// only. A Split is immutable and safe for concurrent use; a reload makes a
// new engine and so a new Split.
type Split struct {
	full     *Engine
	local    *Engine
	shared   []*rule
	parts    map[string]ContextParts
	lookback time.Duration
}

// Split returns e cut in two (see Split). It builds a new Split each
// call: callers keep it with the engine.
func (e *Engine) Split() *Split {
	loc := new(Engine)
	*loc = *e
	loc.rules, loc.byID = nil, map[string]*rule{}
	loc.lookback, loc.retain, loc.sweepEvery = 0, 0, 0
	sp := &Split{full: e, local: loc, parts: map[string]ContextParts{}, lookback: time.Hour}
	for _, r := range e.rules {
		if sharedRule(r) {
			sp.shared = append(sp.shared, r)
			sp.parts[r.ID] = e.contextParts(r)
			var need time.Duration
			switch r.Kind {
			case KindThreshold:
				need = time.Duration(r.window + r.lateness)
			case KindSequence:
				need = time.Duration(r.window)
			case KindBaseline:
				need = time.Duration(r.lateness)
			}
			sp.lookback = max(sp.lookback, need)
			continue
		}
		nr := *r
		nr.idx, nr.eng = len(loc.rules), loc
		loc.rules = append(loc.rules, &nr)
		loc.byID[nr.ID] = &nr
	}
	loc.finish()
	return sp
}

// Full is the engine the split was made from.
func (sp *Split) Full() *Engine { return sp.full }

// Local is the engine of the rules grouped by actor.
func (sp *Split) Local() *Engine { return sp.local }

// Shared reports whether the split has shared rules at all.
func (sp *Split) Shared() bool { return len(sp.shared) > 0 }

// Lookback is how much event time before the newest stored event the
// shared rules need to see again, event by event, to rebuild their state
// exactly: their longest window plus its allowed lateness, at least an
// hour (older events are seeded as totals and terms).
func (sp *Split) Lookback() time.Duration { return sp.lookback }

// Contribute calls fn with each shared rule whose condition ev satisfies
// (any of its steps, for a sequence rule), in load order, with ev's group
// key and the optional parts of the event the rule needs. s must be a
// State of Local: its activation is reused, so the macros its own rules
// already computed for ev are not computed again.
func (sp *Split) Contribute(s *State, ev *event.Event, fn func(rk RuleKey, parts ContextParts)) {
	if s.eng != sp.local {
		panic("rules: Split.Contribute needs a State of the split's Local engine")
	}
	if s.act.ev != ev {
		s.act.reset(ev)
	}
	for _, r := range sp.shared {
		if r.Kind == KindSequence {
			hold := false
			for _, st := range r.steps {
				if s.test(st) {
					hold = true
					break
				}
			}
			if !hold {
				continue
			}
		} else if !s.test(r.cond) {
			continue
		}
		key, _ := groupKey(r, ev, nil)
		fn(RuleKey{Rule: r.ID, Kind: r.Kind, Key: key}, sp.parts[r.ID])
	}
}

// Router turns one partition's events into the Contributions of the
// shared stage's partitions (Route). Not safe for concurrent use.
type Router struct {
	split  *Split
	hinted map[string]bool
	items  []routed
	hints  []RuleKey
}

type routed struct {
	rk    RuleKey
	parts ContextParts
	q     int32
}

// Progress returns the progress mark of an events partition (see
// Contribution): everything it read up to and including origin's offset
// has been routed.
func Progress(origin event.Origin, at time.Time) *Contribution {
	return &Contribution{Progress: true, Event: &event.Event{Time: at, Origin: origin}}
}

// NewRouter returns a Router over the split.
func (sp *Split) NewRouter() *Router { return &Router{split: sp, hinted: map[string]bool{}} }

// Split is the split the router routes for.
func (rt *Router) Split() *Split { return rt.split }

// Rebind moves the router onto a new split (a reload).
func (rt *Router) Rebind(sp *Split) { rt.split = sp }

// Route calls fn with ev's contributions (see Split.Contribute): one per
// partition of the shared stage that owns a group ev counts in, given
// partition, which maps a rule and group key to one of n partitions, in
// the order of the rules. Before the first contribution to a first_seen
// rule the router routes, it calls fn with a hint for that rule for every
// partition. fn must not keep the Contribution; its Event is ev.
func (rt *Router) Route(s *State, ev *event.Event, n int, partition func(rule, key string) int32, fn func(q int32, c *Contribution)) {
	rt.items, rt.hints = rt.items[:0], rt.hints[:0]
	rt.split.Contribute(s, ev, func(rk RuleKey, parts ContextParts) {
		if rk.Kind == KindFirstSeen && !rt.hinted[rk.Rule] {
			rt.hinted[rk.Rule] = true
			rt.hints = append(rt.hints, RuleKey{Rule: rk.Rule, Kind: rk.Kind})
		}
		rt.items = append(rt.items, routed{rk: rk, parts: parts, q: partition(rk.Rule, rk.Key)})
	})
	if len(rt.hints) > 0 {
		h := Contribution{Rules: rt.hints, Hint: true, Event: ev}
		for q := range n {
			fn(int32(q), &h)
		}
	}
	for i := range rt.items {
		q := rt.items[i].q
		if q < 0 {
			continue // done
		}
		c := Contribution{Event: ev}
		for j := i; j < len(rt.items); j++ {
			if it := &rt.items[j]; it.q == q {
				c.Rules = append(c.Rules, it.rk)
				c.Parts |= it.parts
				it.q = -1
			}
		}
		fn(q, &c)
	}
}

// ApplyResult says what State.Apply did with a rule of a contribution.
type ApplyResult uint8

// Apply results.
const (
	// Applied: the contribution updated the rule's state (and may have
	// raised alerts).
	Applied ApplyResult = iota
	// UnknownRule: the state has no shared rule of that id (removed by a
	// reload, or not shared any more).
	UnknownRule
	// KindChanged: the rule is now of another kind.
	KindChanged
	// KeyChanged: the group key computed here differs from the one the
	// contribution was routed by (the two processes' partner registries
	// differ, during a reload): the group is not this partition's to
	// count.
	KeyChanged
	numApplyResults
)

func (r ApplyResult) String() string {
	switch r {
	case Applied:
		return "applied"
	case UnknownRule:
		return "unknown_rule"
	case KindChanged:
		return "kind_changed"
	case KeyChanged:
		return "key_changed"
	}
	return "unknown"
}

// ApplyCounts count, by ApplyResult, what Apply did with a contribution's
// rules.
type ApplyCounts [numApplyResults]int

// Apply updates the state's shared rules that contribution c lists, in
// order, as Evaluate would have with c's event, and calls emit for each
// alert they raise (nil emit: as Observe, alerts are taken as already
// emitted). The state must be made with NewSharedState: it holds the
// groups of one partition of the shared stage. Duplicates are not
// recognised here (see Marks): apply each contribution once, in the order
// of its partition.
func (s *State) Apply(c *Contribution, emit func(*Alert)) ApplyCounts {
	var counts ApplyCounts
	if c.Progress {
		return counts
	}
	ev := c.Event
	t := ev.Time.UnixNano()
	advanced := false
	for _, rk := range c.Rules {
		r, ok := s.eng.byID[rk.Rule]
		switch {
		case !ok || s.shr == nil || !s.shr[r.idx]:
			counts[UnknownRule]++
			continue
		case r.Kind != rk.Kind:
			counts[KindChanged]++
			continue
		}
		if c.Hint {
			if r.Kind == KindFirstSeen {
				s.sh.mu.Lock()
				if st := s.rs[r.idx].(*firstSeenState); !s.sh.pinned[r.ID] && (st.start == noSlot || t < st.start) {
					st.start = t
				}
				s.sh.mu.Unlock()
			}
			counts[Applied]++
			continue
		}
		if key, _ := groupKey(r, ev, nil); key != rk.Key {
			counts[KeyChanged]++
			continue
		}
		if !advanced {
			advanced = true
			s.advance(t)
			s.act.reset(ev)
		}
		s.sh.mu.Lock()
		s.own, s.emitted = s.emitted, s.sh.emitted
		s.evalRule(r, ev, t, emit, r.Kind != KindSequence)
		s.emitted, s.own = s.own, nil
		s.sh.mu.Unlock()
		counts[Applied]++
	}
	return counts
}

// SeedKey returns the group key of shared rule rule for ev (a stored row
// of a BaselineSeed or TermSeed), to find the partition that owns it.
func (e *Engine) SeedKey(rule string, ev *event.Event) (string, bool) {
	r, ok := e.byID[rule]
	if !ok {
		return "", false
	}
	key, _ := groupKey(r, ev, nil)
	return key, true
}

// contextParts are the optional parts of the event that applying r's
// contributions reads: what its exceptions, steps, grouping, terms, peers
// and aggregate read (following macros), and what its alert text shows.
func (e *Engine) contextParts(r *rule) ContextParts {
	if strings.Contains(r.Summary, ".Event") {
		return allParts
	}
	var p ContextParts
	if strings.Contains(r.Summary, ".Consent") {
		p |= PartSubjects
	}
	texts := append([]string{r.Aggregate}, r.GroupBy...)
	texts = append(texts, r.Terms...)
	for _, x := range r.Exceptions {
		texts = append(texts, x.When)
	}
	for _, st := range r.Steps {
		texts = append(texts, st.Condition)
	}
	if r.Baseline != nil && r.Baseline.Peers != nil {
		texts = append(texts, r.Baseline.Peers.By)
	}
	seen := map[string]bool{}
	for i := 0; i < len(texts); i++ { // texts grows with the macros they use
		for _, m := range e.macros {
			if !seen[m.Name] && strings.Contains(texts[i], m.Name) {
				seen[m.Name] = true
				texts = append(texts, m.Expr)
			}
		}
	}
	for _, t := range texts {
		if strings.Contains(t, "request") {
			p |= PartRequest
		}
		if strings.Contains(t, "attributes") {
			p |= PartAttributes
		}
		if strings.Contains(t, "subjects") || strings.Contains(t, "consent") {
			p |= PartSubjects
		}
	}
	return p
}
