package rules

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// Shared holds the state of the rules whose groups span Kafka partitions
// (the shared rules): every rule whose group_by lacks actor.id, such as a
// baseline or first_seen rule grouped by partner, by country or by type.
//
// Events are keyed by actor in Kafka, so a rule grouped by the actor
// (actor.id among its group_by fields) sees all of a group's events in
// one partition and keeps its state in that partition's State. A shared
// rule would keep partition-local state: a partner that receives a
// category every day from actors of partition 2 would look new to
// partition 1, and its daily volume would be split between partitions.
// Such rules keep their state in a Shared, which is used in one of two
// ways:
//
//   - Process-wide (NewSharedState with one Shared for every partition of
//     the process): every partition contributes to and reads the same
//     first-seen terms, baseline totals and windows and alert ids, so an
//     alert is emitted at most once whichever partition raises it first.
//     Exact with one process only: with several processes in a consumer
//     group each sees its own partitions' share of a group.
//   - Repartitioned (Engine.Split): the partitions of the events evaluate
//     only the rules grouped by actor and turn each event into
//     Contributions for the shared rules, which the pipeline sends to a
//     repartition topic keyed by (rule, group key); each partition of that
//     topic owns its groups and applies their contributions in order with
//     State.Apply, on a State made with NewSharedState and a Shared of its
//     own. Exact with any number of processes: a group's state lives in
//     one place. Duplicates (contributions produced again after a crash)
//     are recognised by Marks; rebuilding a partition's state after a
//     takeover is the pipeline's (cmd/custos, shared stage).
//
// The zero Shared is ready to use; it must not be copied after first use.
// It carries its state across rule reloads: a State's Rebind moves its
// shared rules onto the new engine's, keeping unchanged rules' state
// exactly as for the per-partition rules.
type Shared struct {
	mu      sync.Mutex
	engines map[*Engine][]ruleState // shared rules' state by engine (at most two: current and previous)
	last    *Engine                 // engine most recently bound
	emitted map[string]int64        // alert id -> watermark when recorded (shared rules)
	applied map[int32]int64         // partition -> highest offset applied to the shared state
	claimed map[string]bool         // "rule\x00partition" seeds already taken
	pinned  map[string]bool         // first_seen rules whose learning start hints do not move (RestartLearning)
}

// sharedRule reports whether r keeps its state in a Shared: rules not
// grouped by actor.id (Kafka's message key), whose groups can span
// partitions.
func sharedRule(r *rule) bool {
	return !slices.Contains(r.groupBy, fActorID)
}

// SharedRules returns the ids of the rules that keep their state in a
// Shared (see Shared), in load order.
func (e *Engine) SharedRules() []string {
	var out []string
	for _, r := range e.rules {
		if sharedRule(r) {
			out = append(out, r.ID)
		}
	}
	return out
}

// NewSharedState returns an empty state for a partition whose rules not
// grouped by actor keep their state in sh, shared with the other States
// of sh.
func (e *Engine) NewSharedState(partition int32, sh *Shared) *State {
	s := &State{eng: e, partition: partition, emitted: map[string]int64{}, fired: map[string]int64{}, sh: sh}
	s.bind(e)
	for _, r := range e.rules {
		if s.rs[r.idx] == nil {
			s.rs[r.idx] = newRuleState(r)
		}
	}
	return s
}

// bindShared fills the shared rules' slots of rs (those of engine e) with
// the Shared's states, moving the previous engine's onto e when e is new:
// rules that sameState finds unchanged keep their state.
func (sh *Shared) bindShared(e *Engine, rs []ruleState, shared []bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cur, ok := sh.engines[e]
	if !ok {
		if sh.engines == nil {
			sh.engines = map[*Engine][]ruleState{}
			sh.emitted = map[string]int64{}
			sh.applied = map[int32]int64{}
			sh.claimed = map[string]bool{}
		}
		cur = make([]ruleState, len(e.rules))
		prev := sh.engines[sh.last]
		for _, r := range e.rules {
			if !shared[r.idx] {
				continue
			}
			if sh.last != nil {
				if o, ok := sh.last.byID[r.ID]; ok && sameState(o, r) && prev[o.idx] != nil {
					cur[r.idx] = prev[o.idx]
					continue
				}
			}
			cur[r.idx] = newRuleState(r)
		}
		for old := range sh.engines {
			if old != sh.last {
				delete(sh.engines, old) // keep the current and the previous engine only
			}
		}
		sh.engines[e] = cur
		sh.last = e
	}
	for i, ok := range shared {
		if ok {
			rs[i] = cur[i]
		}
	}
}

// ClaimSeed reports whether the caller is the first to seed rule from
// partition's stored history into sh: a shared baseline rule's totals
// must be seeded from each partition once, not again when the partition
// is assigned anew.
func (sh *Shared) ClaimSeed(rule string, partition int32) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.claimed == nil {
		sh.claimed = map[string]bool{}
	}
	k := rule + "\x00" + strconv.Itoa(int(partition))
	if sh.claimed[k] {
		return false
	}
	sh.claimed[k] = true
	return true
}

// Keys is the number of groups the shared rules track (of the engine most
// recently bound).
func (sh *Shared) Keys() int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := 0
	for _, rs := range sh.engines[sh.last] {
		if rs != nil {
			n += rs.keys()
		}
	}
	return n
}

// lockShared takes the Shared's lock for the shared rules of the current
// event and reports whether the event is to be applied to the shared
// state: an event read from Kafka whose offset is not above the highest
// offset of its partition already applied (by this State or an earlier
// State of the same partition, e.g. before a rebalance) is not counted
// twice.
func (s *State) lockShared(ev *event.Event) bool {
	sh := s.sh
	sh.mu.Lock()
	if ev.Origin.Topic == "" {
		return true
	}
	if last, ok := sh.applied[ev.Origin.Partition]; ok && ev.Origin.Offset <= last {
		return false
	}
	sh.applied[ev.Origin.Partition] = ev.Origin.Offset
	return true
}

func (s *State) unlockShared() { s.sh.mu.Unlock() }

// sweepShared sweeps the shared rules' state and alert ids at now.
func (s *State) sweepShared(now int64) int {
	sh := s.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	dropped := 0
	for _, r := range s.eng.rules {
		if s.shr[r.idx] {
			dropped += sweepRule(r, s.rs[r.idx], now)
		}
	}
	for id, at := range sh.emitted {
		switch {
		case at == noSlot:
			sh.emitted[id] = now
		case at < now-s.eng.retain:
			delete(sh.emitted, id)
		}
	}
	return dropped
}

// ---- first_seen: seeding from storage ----

// TermSeed says what storage must return to seed a shared first_seen
// rule's terms after a restart: the distinct combinations of Fields among
// the stored events of the last Window (of every partition), each with
// the first and last event time it was seen at; State.SeedTerms takes
// each. Fields are the group_by and terms fields and every field the
// condition reads, so the condition is evaluated exactly on each row (as
// for BaselineSeed).
type TermSeed struct {
	// Rule is the rule id.
	Rule string
	// Window is how far back, from the newest stored event, terms are
	// remembered (the rule's term retention).
	Window time.Duration
	// Fields are the event fields (paths such as recipient.country) to
	// group by.
	Fields []string
}

// TermSeeds returns what storage must return to seed the terms of the
// shared first_seen rules in force, and those it cannot seed, with why
// (their learning starts again from live events after a restart).
func (e *Engine) TermSeeds() ([]TermSeed, []UnseedableRule) {
	var seeds []TermSeed
	var skipped []UnseedableRule
	for _, r := range e.rules {
		if r.Kind != KindFirstSeen || !sharedRule(r) {
			continue
		}
		fields := map[fieldID]bool{}
		if why := e.conditionFields(r.Condition, map[string]bool{}, fields); why != "" {
			skipped = append(skipped, UnseedableRule{Rule: r.ID, Reason: why})
			continue
		}
		for _, f := range r.groupBy {
			fields[f] = true
		}
		for _, f := range r.terms {
			fields[f] = true
		}
		for _, f := range slices.Collect(maps.Keys(fields)) {
			if via := seedableVia[f]; via != nil {
				delete(fields, f)
				for _, v := range via {
					fields[v] = true
				}
			}
		}
		seed := TermSeed{Rule: r.ID, Window: time.Duration(r.retention)}
		why := ""
		for f := range fields {
			if !seedableFields[f] {
				why = "it reads " + eventFields[f].path + ", which storage cannot group by exactly"
				break
			}
			seed.Fields = append(seed.Fields, eventFields[f].path)
		}
		if why != "" {
			skipped = append(skipped, UnseedableRule{Rule: r.ID, Reason: why})
			continue
		}
		sort.Strings(seed.Fields)
		seeds = append(seeds, seed)
	}
	return seeds, skipped
}

// SeedTerms adds the term tuples of ev to first_seen rule id as seen
// from first to last (event times), when ev satisfies the rule's
// condition: ev carries the values of the TermSeed's fields of one stored
// combination. The rule's learning period counts from the earliest time
// seeded or seen, so a restart does not start learning again. It reports
// whether the row counted.
func (s *State) SeedTerms(id string, ev *event.Event, first, last time.Time) bool {
	return s.seedFirstSeen(id, ev, first, func(r *rule, st *firstSeenState) {
		key, _ := groupKey(r, ev, nil)
		forEachTerm(r, ev, func(vals []string) {
			h := termHash(st, key, vals)
			if t := last.UnixNano(); t > st.terms[h] {
				st.terms[h] = t
			}
		})
	})
}

// SeedLearning moves the learning start of first_seen rule rule back to
// first when ev (a stored combination, as for SeedTerms) satisfies the
// rule's condition, without adding its terms: the rule has seen events
// since first, whatever the terms are rebuilt from. It reports whether
// the row counted.
func (s *State) SeedLearning(rule string, ev *event.Event, first time.Time) bool {
	return s.seedFirstSeen(rule, ev, first, nil)
}

// seedFirstSeen moves the learning start of first_seen rule id back to
// first when ev satisfies the rule's condition, then calls more (if set)
// with the rule and its state, under the shared lock for a shared rule.
// It reports whether ev counted.
func (s *State) seedFirstSeen(id string, ev *event.Event, first time.Time, more func(*rule, *firstSeenState)) bool {
	r, ok := s.eng.byID[id]
	if !ok || r.Kind != KindFirstSeen {
		return false
	}
	s.act.reset(ev)
	if !s.test(r.cond) {
		return false
	}
	if s.sh != nil && s.shr[r.idx] {
		s.sh.mu.Lock()
		defer s.sh.mu.Unlock()
	}
	st := s.rs[r.idx].(*firstSeenState)
	if f := first.UnixNano(); st.start == noSlot || f < st.start {
		st.start = f
	}
	if more != nil {
		more(r, st)
	}
	return true
}

// RestartLearning starts the learning period of shared first_seen rule
// rule again at at, whatever it was: for a rule whose terms could not be
// rebuilt from storage, which then stays silent while it learns again
// rather than take every known term for new.
func (s *State) RestartLearning(rule string, at time.Time) {
	r, ok := s.eng.byID[rule]
	if !ok || r.Kind != KindFirstSeen {
		return
	}
	if s.sh != nil && s.shr[r.idx] {
		s.sh.mu.Lock()
		defer s.sh.mu.Unlock()
		if s.sh.pinned == nil {
			s.sh.pinned = map[string]bool{}
		}
		s.sh.pinned[rule] = true // hints of earlier events must not end the new learning early
	}
	s.rs[r.idx].(*firstSeenState).start = at.UnixNano()
}
