package rules

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/partner"
)

// Rule ids.
const (
	// RuleBulkExport: an actor's records moved out in a sliding window
	// reach a threshold.
	RuleBulkExport = "bulk_export"
	// RuleUnknownRecipient: a share to a recipient no partner entry lists.
	RuleUnknownRecipient = "unknown_recipient"
)

// ringSize is the number of buckets an actor keeps: the Buckets of the
// window plus room for the allowed lateness (at most Buckets/4 = 3 buckets)
// so that a late event's earlier windows can still be summed.
const ringSize = 16

// noSlot marks an actor that has never raised (or had suppressed) a bulk
// export alert.
const noSlot = math.MinInt64

// Engine evaluates the configured rules. It is immutable and shared by all
// partitions' States; each State is confined to one goroutine.
type Engine struct {
	cfg        Config
	reg        *partner.Registry
	bulk       bool
	unknown    bool
	actions    uint8 // bulk_export actions, as actionBit bits
	window     int64 // ns
	width      int64 // bucket width, ns
	lateness   int64 // ns
	threshold  int64
	idle       int64 // an actor idle this long behind the watermark is evicted
	retain     int64 // how long emitted alert ids are remembered
	exceptions map[string][]Exception
}

// New builds an engine. The registry is required when unknown_recipient is
// enabled.
func New(cfg Config, reg *partner.Registry) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rules config: %w", err)
	}
	if cfg.UnknownRecipient.Enabled && reg == nil {
		return nil, fmt.Errorf("rule %s needs a partner registry", RuleUnknownRecipient)
	}
	e := &Engine{
		cfg:        cfg,
		reg:        reg,
		bulk:       cfg.BulkExport.Enabled,
		unknown:    cfg.UnknownRecipient.Enabled,
		window:     int64(cfg.BulkExport.Window),
		lateness:   int64(cfg.AllowedLateness),
		threshold:  cfg.BulkExport.ThresholdRecords,
		exceptions: map[string][]Exception{},
	}
	if e.window == 0 {
		e.window = int64(DefaultWindow)
	}
	e.width = e.window / Buckets
	for _, a := range cfg.BulkExport.Actions {
		e.actions |= actionBit(a)
	}
	for _, x := range cfg.BulkExport.Exceptions {
		e.exceptions[x.Actor] = append(e.exceptions[x.Actor], x)
	}
	e.idle = 2*e.window + e.lateness
	e.retain = max(e.idle, int64(48*time.Hour))
	return e, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// Registry returns the partner registry the engine checks shares against.
func (e *Engine) Registry() *partner.Registry { return e.reg }

// ExpiredExceptions lists the configured exceptions that no longer apply at
// t (typically the newest event time or now), for the privacy office to
// renew or remove.
func (e *Engine) ExpiredExceptions(at time.Time) []ExpiredException {
	return e.cfg.ExpiredExceptions(at)
}

// State is the rule state of one Kafka partition: per-actor windows and the
// ids of alerts already emitted. Events of one actor always land in the
// same partition, so States are independent. A State is not safe for
// concurrent use: feed it from the partition's goroutine, in offset order.
type State struct {
	eng        *Engine
	partition  int32
	actors     map[string]*actorState
	emitted    map[string]int64 // alert id -> watermark when recorded
	wm         int64            // newest event time seen (unix ns)
	seen       bool             // wm is set
	lastSweep  int64
	offset     int64 // highest Kafka offset evaluated, when hasOffset
	hasOffset  bool
	skipped    int64
	late       int64
	suppressed int64
}

// actorState is one actor's bulk-export window: a ring of buckets of
// Window/12 each, indexed by bucket number modulo ringSize. It is 120
// bytes (a 128-byte allocation).
type actorState struct {
	maxT    int64     // newest event time of the actor (unix ns)
	alerted int64     // dedup slot (unix ns) of the last alert raised or suppressed
	evid    *evidence // sample event ids, kept only while near the threshold
	records [ringSize]uint32
	events  [ringSize]uint16
}

// NewState returns an empty state for a partition.
func (e *Engine) NewState(partition int32) *State {
	return &State{
		eng:       e,
		partition: partition,
		actors:    map[string]*actorState{},
		emitted:   map[string]int64{},
	}
}

// Partition is the Kafka partition the state belongs to.
func (s *State) Partition() int32 { return s.partition }

// Keys is the number of actors tracked.
func (s *State) Keys() int { return len(s.actors) }

// Late is how many events arrived later than the allowed lateness (behind
// their actor's newest event) and were therefore not counted by
// bulk_export. They are still evaluated by the other rules.
func (s *State) Late() int64 { return s.late }

// Skipped is how many events were skipped because their Kafka offset was
// not above the highest offset already evaluated (re-delivery).
func (s *State) Skipped() int64 { return s.skipped }

// Suppressed is how many alerts an exception suppressed (at most one per
// actor and dedup slot).
func (s *State) Suppressed() int64 { return s.suppressed }

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
// MarkEmitted) is never emitted again.
//
// Events must come in offset order. An event read from Kafka (Origin.Topic
// set) whose offset is not above the highest offset already evaluated or
// observed is a re-delivery: it is skipped and counted by Skipped, so that
// overlapping a rebuild with the consumer's restart point counts nothing
// twice.
func (s *State) Evaluate(ev *event.Event, emit func(*Alert)) {
	s.eval(ev, emit)
}

// Observe updates the state with ev exactly as Evaluate does, without
// emitting: use it to rebuild a partition's state from events stored
// before the committed offset. Alerts such events would raise are taken as
// already emitted (offsets are committed only after alerts are stored).
func (s *State) Observe(ev *event.Event) {
	s.eval(ev, nil)
}

// MarkEmitted registers the id of an alert already stored so that it is
// never emitted again. Ids are forgotten once the watermark has moved past
// them by max(2 × window + lateness, 48h).
func (s *State) MarkEmitted(id string) {
	if _, ok := s.emitted[id]; ok {
		return
	}
	s.emitted[strings.Clone(id)] = s.wmOrUnknown()
}

// Expire drops the actors idle since before now − (2 × window + allowed
// lateness) and the emitted ids older than the retention, and returns how
// many actors it dropped. Evaluate already does this as event time
// advances; call Expire with event time to keep replays deterministic.
func (s *State) Expire(now time.Time) int {
	return s.sweep(now.UnixNano())
}

func (s *State) wmOrUnknown() int64 {
	if !s.seen {
		return noSlot
	}
	return s.wm
}

func (s *State) sweep(now int64) int {
	dropped := 0
	for id, a := range s.actors {
		if a.maxT < now-s.eng.idle {
			delete(s.actors, id)
			dropped++
		}
	}
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
	if !s.seen || t > s.wm {
		s.wm, s.seen = t, true
		if t-s.lastSweep >= s.eng.width || t < s.lastSweep {
			s.lastSweep = t
			s.sweep(t)
		}
	}
	if ev.Outcome != event.OutcomeSuccess && ev.Outcome != "" {
		return // denied and failed actions moved no data
	}
	e := s.eng
	if e.bulk && actionBit(ev.Action)&e.actions != 0 {
		s.bulkExport(ev, t, emit)
	}
	if e.unknown && ev.Type == event.TypeShare {
		s.unknownRecipient(ev, t, emit)
	}
}

// emitOnce emits al unless its id was emitted before; with a nil emit
// (Observe) it only records the id.
func (s *State) emitOnce(al *Alert, emit func(*Alert)) {
	if _, dup := s.emitted[al.ID]; dup {
		return
	}
	s.emitted[al.ID] = s.wm
	if emit != nil {
		emit(al)
	}
}

func (s *State) seenID(id string) bool {
	_, ok := s.emitted[id]
	return ok
}

// actionBit maps an action to a bit; 0 for unknown actions.
func actionBit(a event.Action) uint8 {
	switch a {
	case event.ActionRead:
		return 1 << 0
	case event.ActionQuery:
		return 1 << 1
	case event.ActionExport:
		return 1 << 2
	case event.ActionDownload:
		return 1 << 3
	case event.ActionUpdate:
		return 1 << 4
	case event.ActionDelete:
		return 1 << 5
	case event.ActionTransfer:
		return 1 << 6
	}
	return 0
}

// floorDiv divides rounding towards negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
