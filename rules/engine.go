package rules

import (
	"math"
	"strings"
	"text/template"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/consent"
	"github.com/custos-privacy/custos/rules/partner"
	"github.com/custos-privacy/custos/rules/policy"
)

// Rule ids of the shipped rules that the rest of Custos names.
const (
	// RuleBulkExport: an actor's records moved out in a sliding window
	// reach a threshold.
	RuleBulkExport = "bulk_export"
	// RuleUnknownRecipient: a share to a recipient no partner entry lists.
	RuleUnknownRecipient = "unknown_recipient"
)

// Buckets is the number of buckets a threshold window is cut into: the
// window slides in steps of Window/Buckets.
const Buckets = 12

// ringSize is the number of buckets a group keeps: the Buckets of the
// window plus room for the allowed lateness (at most Buckets/4 = 3
// buckets) so that a late event's earlier windows can still be summed.
const ringSize = 16

// noSlot marks a group that has never raised (or had suppressed) an alert.
const noSlot = math.MinInt64

type aggKind uint8

const (
	aggCount aggKind = iota
	aggRecords
	aggBytes
	aggDistinct
)

// Engine is a compiled, immutable set of rules, shared by all partitions'
// States; each State is confined to one goroutine. Reloading rules builds
// a new Engine; State.Rebind moves a State onto it keeping the windows of
// unchanged rules.
type Engine struct {
	reg        *partner.Registry
	pol        *policy.Policy    // the privacy statement (Options.Policy)
	consent    *consent.Registry // shared, mutable (Options.Consent)
	files      []*File
	env        *cel.Env
	macros     []*compiledMacro
	macroIdx   map[string]int
	rules      []*rule
	byID       map[string]*rule
	lookback   time.Duration
	retain     int64 // how long emitted alert ids are remembered
	sweepEvery int64
}

type compiledMacro struct {
	*Macro
	prg cel.Program
}

type exception struct {
	*Exception
	prg        cel.Program
	constFalse bool
}

// rule is a compiled rule.
type rule struct {
	*Rule
	eng        *Engine // for derived group_by fields
	idx        int
	cond       cel.Program
	steps      []cel.Program
	exceptions []*exception
	groupBy    []fieldID
	terms      []fieldID
	agg        aggKind
	distinct   fieldID
	window     int64
	width      int64
	lateness   int64
	suppress   int64
	learning   int64
	retention  int64
	threshold  int64
	evidence   int
	summary    *template.Template
	peerBy     fieldID       // baseline: the peers field (noField: none)
	seed       *BaselineSeed // baseline: how storage seeds its history
	unseedable string        // baseline: why it cannot be seeded
}

// Files returns the parsed rule files the engine was built from.
func (e *Engine) Files() []*File { return e.files }

// Rules returns the rules in force, in load order.
func (e *Engine) Rules() []*Rule {
	out := make([]*Rule, len(e.rules))
	for i, r := range e.rules {
		out[i] = r.Rule
	}
	return out
}

// Registry returns the partner registry the engine looks up.
func (e *Engine) Registry() *partner.Registry { return e.reg }

// Policy returns the privacy statement the engine checks (nil: none).
func (e *Engine) Policy() *policy.Policy { return e.pol }

// Consent returns the consent registry the engine reads (nil: none).
func (e *Engine) Consent() *consent.Registry { return e.consent }

// Lookback is how much event time before a partition's newest stored
// event the rules need to see again to rebuild their state after a
// restart or a rebalance: the longest window plus its allowed lateness.
func (e *Engine) Lookback() time.Duration { return e.lookback }

// State is the rule state of one Kafka partition: per-rule, per-group
// windows and the ids of alerts already emitted. Events of one actor
// always land in the same partition, so the States of rules grouped by
// actor are independent; a State made with NewSharedState keeps the
// state of the other rules in a Shared, with the other partitions of the
// process (see Shared). A State is not safe for concurrent use: feed it
// from the partition's goroutine, in offset order.
type State struct {
	eng        *Engine
	partition  int32
	act        activation
	rs         []ruleState
	emitted    map[string]int64 // alert id -> watermark when recorded
	wm         int64            // newest event time seen (unix ns)
	seen       bool             // wm is set
	start      int64            // first event time seen (unix ns)
	lastSweep  int64
	offset     int64 // highest Kafka offset evaluated, when hasOffset
	hasOffset  bool
	skipped    int64
	late       int64
	suppressed int64
	fired      map[string]int64 // alerts emitted per rule
	base       *baselineInfo    // the baseline alert being written
	sh         *Shared          // the process-wide state of shared rules (nil: none)
	shr        []bool           // rule index -> keeps its state in sh (nil when sh is nil)
	own        map[string]int64 // the State's emitted ids while sh's are in emitted
}

// ruleState is the per-partition state of one rule.
type ruleState interface {
	keys() int
}

// NewState returns an empty, self-contained state for a partition: every
// rule keeps its state in it (for a single partition, replays and rule
// tests). The pipeline uses NewSharedState.
func (e *Engine) NewState(partition int32) *State {
	s := &State{eng: e, partition: partition, emitted: map[string]int64{}, fired: map[string]int64{}}
	s.bind(e)
	for _, r := range e.rules {
		s.rs[r.idx] = newRuleState(r)
	}
	return s
}

func (s *State) bind(e *Engine) {
	s.eng = e
	s.act = activation{eng: e, gen: s.act.gen, mgen: make([]uint32, len(e.macros)), mval: make([]ref.Val, len(e.macros))}
	s.rs = make([]ruleState, len(e.rules))
	if s.sh != nil {
		s.shr = make([]bool, len(e.rules))
		for _, r := range e.rules {
			s.shr[r.idx] = sharedRule(r)
		}
		s.sh.bindShared(e, s.rs, s.shr)
	}
}

func newRuleState(r *rule) ruleState {
	switch r.Kind {
	case KindThreshold:
		return &thresholdState{groups: map[string]*window{}}
	case KindFirstSeen:
		return &firstSeenState{terms: map[uint64]int64{}, start: noSlot}
	case KindSequence:
		return &sequenceState{groups: map[string]*progress{}}
	case KindBaseline:
		return newBaselineState()
	}
	return nil
}

// Engine returns the engine the state evaluates.
func (s *State) Engine() *Engine { return s.eng }

// Rebind moves the state onto engine e (a reload): rules whose id, kind,
// grouping, window and aggregate are unchanged keep their state; others
// start empty. Emitted alert ids, the watermark and the offset are kept.
// The state of shared rules moves with the Shared (the first State to move
// onto e moves it; the others find it there).
func (s *State) Rebind(e *Engine) {
	old := s.eng
	oldRS := s.rs
	s.bind(e)
	for _, r := range e.rules {
		if s.rs[r.idx] != nil {
			continue // shared
		}
		if o, ok := old.byID[r.ID]; ok && sameState(o, r) && oldRS[o.idx] != nil {
			s.rs[r.idx] = oldRS[o.idx]
			continue
		}
		s.rs[r.idx] = newRuleState(r)
	}
}

func sameState(a, b *rule) bool {
	return a.Kind == b.Kind && a.window == b.window && a.agg == b.agg && a.distinct == b.distinct &&
		equalFields(a.groupBy, b.groupBy) && equalFields(a.terms, b.terms) && len(a.steps) == len(b.steps) &&
		a.peerBy == b.peerBy
}

func equalFields(a, b []fieldID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Partition is the Kafka partition the state belongs to.
func (s *State) Partition() int32 { return s.partition }

// Keys is the number of groups (windows, terms, sequences) tracked, not
// counting those of shared rules (Shared.Keys).
func (s *State) Keys() int {
	n := 0
	for i, rs := range s.rs {
		if rs != nil && (s.shr == nil || !s.shr[i]) {
			n += rs.keys()
		}
	}
	return n
}

// Late is how many events arrived later than the allowed lateness (behind
// their group's newest event) and were therefore not counted by a
// threshold rule. They are still evaluated by the other rules.
func (s *State) Late() int64 { return s.late }

// Skipped is how many events were skipped because their Kafka offset was
// not above the highest offset already evaluated (re-delivery).
func (s *State) Skipped() int64 { return s.skipped }

// Suppressed is how many alerts an exception suppressed (at most one per
// group and dedup slot).
func (s *State) Suppressed() int64 { return s.suppressed }

// Fired returns how many alerts each rule emitted (Evaluate only).
func (s *State) Fired() map[string]int64 { return s.fired }

// Watermark is the newest event time the state has seen (zero before the
// first event).
func (s *State) Watermark() time.Time {
	if !s.seen {
		return time.Time{}
	}
	return time.Unix(0, s.wm).UTC()
}

// Evaluate updates the state with ev and calls emit for each alert it
// raises. An alert whose id was emitted before (or registered with
// MarkEmitted) is emitted again only as an update of the same alert, when
// its severity escalates.
//
// Events must come in offset order. An event read from Kafka (Origin.Topic
// set) whose offset is not above the highest offset already evaluated or
// observed is a re-delivery: it is skipped and counted by Skipped.
func (s *State) Evaluate(ev *event.Event, emit func(*Alert)) { s.eval(ev, emit) }

// Observe updates the state with ev exactly as Evaluate does, without
// emitting: use it to rebuild a partition's state from events stored
// before the committed offset. Alerts such events would raise are taken
// as already emitted (offsets are committed only after alerts are stored).
func (s *State) Observe(ev *event.Event) { s.eval(ev, nil) }

// MarkEmittedAt registers the id of an alert already stored, whose window
// ends at end, so that it is never emitted again as a new alert. The id is
// remembered until event time passes end by the engine's retention (at
// least 48 hours, twice the longest window), however far behind the
// alert's own time the state is when it is marked: a state rebuilt up to
// an older commit that replays days of event time before reaching the
// alert's events again must still know it.
func (s *State) MarkEmittedAt(id string, end time.Time) {
	at := end.UnixNano()
	if s.seen && s.wm > at {
		at = s.wm
	}
	if s.sh != nil {
		s.sh.mu.Lock()
		if prev, ok := s.sh.emitted[id]; !ok || (prev != noSlot && prev < at) {
			s.sh.emitted[strings.Clone(id)] = at
		}
		s.sh.mu.Unlock()
	}
	if prev, ok := s.emitted[id]; !ok || (prev != noSlot && prev < at) {
		s.emitted[strings.Clone(id)] = at
	}
}

// MarkEmitted registers the id of an alert already stored so that it is
// never emitted again as a new alert; it is remembered for the engine's
// retention from the state's current event time. Prefer MarkEmittedAt when
// the alert's window is known.
func (s *State) MarkEmitted(id string) {
	if s.sh != nil {
		// The id may be a shared rule's: known to every partition.
		s.sh.mu.Lock()
		if _, ok := s.sh.emitted[id]; !ok {
			s.sh.emitted[strings.Clone(id)] = s.wmOrUnknown()
		}
		s.sh.mu.Unlock()
	}
	if _, ok := s.emitted[id]; ok {
		return
	}
	s.emitted[strings.Clone(id)] = s.wmOrUnknown()
}

// Expire drops the groups idle for longer than their rule needs and the
// emitted ids older than the retention, and returns how many groups it
// dropped. Evaluate already does this as event time advances.
func (s *State) Expire(now time.Time) int { return s.sweep(now.UnixNano()) }

func (s *State) wmOrUnknown() int64 {
	if !s.seen {
		return noSlot
	}
	return s.wm
}

// advance moves the state's event-time watermark to t when t is newer,
// and sweeps expired groups and ids every sweepEvery of event time.
func (s *State) advance(t int64) {
	if s.seen && t <= s.wm {
		return
	}
	if !s.seen {
		s.start = t
	}
	s.wm, s.seen = t, true
	if t-s.lastSweep >= s.eng.sweepEvery || t < s.lastSweep {
		s.lastSweep = t
		s.sweep(t)
	}
}

func (s *State) sweep(now int64) int {
	dropped := s.sweepRules(now)
	for id, at := range s.emitted {
		switch {
		case at == noSlot:
			s.emitted[id] = now
		case at < now-s.eng.retain:
			delete(s.emitted, id)
		}
	}
	return dropped
}

func (s *State) eval(ev *event.Event, emit func(*Alert)) {
	if ev.Origin.Topic != "" {
		if s.hasOffset && ev.Origin.Offset <= s.offset {
			s.skipped++
			return
		}
		s.offset, s.hasOffset = ev.Origin.Offset, true
	}
	t := ev.Time.UnixNano()
	s.advance(t)
	s.act.reset(ev)
	// locked: the Shared is locked for the rest of the event (0: not yet,
	// 1: locked, applying; -1: the event is already in the shared state).
	locked := 0
	for _, r := range s.eng.rules {
		if s.shr != nil && s.shr[r.idx] {
			if locked == -1 || (r.Kind != KindSequence && !s.test(r.cond)) {
				continue
			}
			if locked == 0 {
				// Once per event, after the first shared condition holds.
				if !s.lockShared(ev) {
					s.unlockShared()
					locked = -1
					continue
				}
				locked = 1
			}
			s.own, s.emitted = s.emitted, s.sh.emitted // alert ids of shared rules are shared
			s.evalRule(r, ev, t, emit, true)
			s.emitted, s.own = s.own, nil
			continue
		}
		s.evalRule(r, ev, t, emit, false)
	}
	if locked == 1 {
		s.unlockShared()
	}
}

// evalRule evaluates rule r on the current event; tested says its
// condition is known to hold.
func (s *State) evalRule(r *rule, ev *event.Event, t int64, emit func(*Alert), tested bool) {
	{
		switch r.Kind {
		case KindMatch:
			if tested || s.test(r.cond) {
				s.match(r, ev, t, emit)
			}
		case KindThreshold:
			if tested || s.test(r.cond) {
				s.thresholdAdd(r, ev, t, emit)
			}
		case KindFirstSeen:
			if tested || s.test(r.cond) {
				s.firstSeen(r, ev, t, emit)
			}
		case KindSequence:
			s.sequence(r, ev, t, emit)
		case KindBaseline:
			if tested || s.test(r.cond) {
				s.baselineAdd(r, ev, t, emit)
			}
		}
	}
}

// test evaluates a compiled condition on the current event; an error
// (e.g. a missing attribute key) counts as false.
func (s *State) test(p cel.Program) bool {
	v, _, err := p.Eval(&s.act)
	return err == nil && v == types.True
}

// excepted returns the first exception of r that covers the current event
// and still applies, and the latest expired one that would have.
func (s *State) excepted(r *rule, at time.Time) (applies bool, expired *Exception) {
	for _, x := range r.exceptions {
		if x.prg == nil || !s.test(x.prg) {
			continue
		}
		if x.AppliesAt(at) {
			return true, nil
		}
		if expired == nil || x.Expires.After(expired.Expires) {
			expired = x.Exception
		}
	}
	return false, expired
}

// groupKey builds the group key of ev for r into buf: the values of the
// group_by fields joined with "|". With one field it returns the event's
// own string and does not allocate.
func groupKey(r *rule, ev *event.Event, buf []byte) (string, []byte) {
	if len(r.groupBy) == 1 {
		return r.stringField(ev, r.groupBy[0]), buf
	}
	buf = buf[:0]
	for i, f := range r.groupBy {
		if i > 0 {
			buf = append(buf, '|')
		}
		buf = append(buf, r.stringField(ev, f)...)
	}
	return string(buf), buf
}

// severityAt is the severity of r's alert at value v.
func severityAt(r *rule, v int64) (Severity, int8) {
	sev, level := r.Severity, int8(0)
	for i, e := range r.Escalate {
		if v >= e.At {
			sev, level = e.Severity, int8(i+1)
		}
	}
	return sev, level
}

// emitOnce emits al unless its id was emitted before; with a nil emit
// (Observe) it only records the id. update re-emits a known id.
func (s *State) emitOnce(al *Alert, emit func(*Alert), update bool) {
	if _, dup := s.emitted[al.ID]; dup && !update {
		return
	}
	s.emitted[al.ID] = s.wm
	if emit != nil {
		s.fired[al.Rule]++
		emit(al)
	}
}

func (s *State) seenID(id string) bool {
	_, ok := s.emitted[id]
	return ok
}

// floorDiv divides rounding towards negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
