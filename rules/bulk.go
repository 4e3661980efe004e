package rules

import (
	"strings"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// bulkExport counts ev's records in its actor's window and raises an alert
// when a window holding ev reaches the threshold.
//
// The window slides in steps of one bucket (Window/12): the sum compared is
// that of the 12 buckets ending with the bucket of the newest event. An
// event up to AllowedLateness behind its actor's newest event lands in its
// own bucket, and the windows ending at its bucket through the newest one
// are all checked. Alerts are deduplicated per actor and slot, the event
// time of the triggering event truncated to Window: at most one alert per
// actor per slot, with id StableID("bulk_export", actor, slot).
func (s *State) bulkExport(ev *event.Event, t int64, emit func(*Alert)) {
	e := s.eng
	a := s.actors[ev.Actor.ID]
	if a == nil {
		a = &actorState{maxT: t, alerted: noSlot}
		s.actors[strings.Clone(ev.Actor.ID)] = a
	} else if t < a.maxT-e.lateness {
		s.late++
		return
	}
	head := floorDiv(a.maxT, e.width)
	b := floorDiv(t, e.width)
	if b > head {
		n := min(b-head, ringSize)
		for i := int64(1); i <= n; i++ {
			k := (head + i) & (ringSize - 1)
			a.records[k], a.events[k] = 0, 0
		}
		head = b
	}
	if t > a.maxT {
		a.maxT = t
	}
	if b < head-(ringSize-Buckets) {
		// Only reachable with a Config that skipped Validate: the bucket is
		// no longer summable.
		s.late++
		return
	}
	k := b & (ringSize - 1)
	a.records[k] = addSat32(a.records[k], ev.Data.Records)
	if a.events[k] < 1<<16-1 {
		a.events[k]++
	}

	// The newest window ending at or after b that reaches the threshold.
	hit, sum := int64(0), int64(0)
	found := false
	for end := head; end >= b; end-- {
		if sum = a.sum(end); sum >= e.threshold {
			hit, found = end, true
			break
		}
	}
	s.keepEvidence(a, ev, t, found || a.sum(head)*2 >= e.threshold)
	if !found {
		return
	}
	slot := floorDiv(t, e.window) * e.window
	if slot == a.alerted {
		return
	}
	id := StableID(RuleBulkExport, ev.Actor.ID, time.Unix(0, slot))
	if slot < a.alerted && s.seenID(id) {
		return // an earlier slot, already alerted
	}
	if slot > a.alerted {
		a.alerted = slot
	}
	if e.excepted(ev.Actor.ID, ev.Time) {
		s.suppressed++
		return
	}
	if s.seenID(id) {
		return
	}
	al := s.bulkAlert(ev, a, id, slot, hit, sum)
	s.emitOnce(al, emit)
}

// sum is the records total of the window of Buckets buckets ending with
// bucket end.
func (a *actorState) sum(end int64) int64 {
	var n int64
	for b := end - Buckets + 1; b <= end; b++ {
		n += int64(a.records[b&(ringSize-1)])
	}
	return n
}

func (a *actorState) count(end int64) (events int64, first int64) {
	first = end
	for b := end; b > end-Buckets; b-- {
		k := b & (ringSize - 1)
		if a.events[k] > 0 {
			events += int64(a.events[k])
			first = b
		}
	}
	return events, first
}

func addSat32(x uint32, n int64) uint32 {
	if n <= 0 {
		return x
	}
	if s := int64(x) + n; s < 1<<32 {
		return uint32(s)
	}
	return 1<<32 - 1
}

// keepEvidence records ev's id while the actor is near the threshold (half
// of it or more) and frees the samples when it falls back below.
func (s *State) keepEvidence(a *actorState, ev *event.Event, t int64, hot bool) {
	n := s.eng.cfg.EvidenceSamples
	if !hot || n == 0 {
		a.evid = nil
		return
	}
	if a.evid == nil {
		a.evid = newEvidence(n)
	}
	a.evid.push(ev.ID, t)
}

// excepted reports whether an exception for actor applies at event time at.
func (e *Engine) excepted(actor string, at time.Time) bool {
	for _, x := range e.exceptions[actor] {
		if x.AppliesAt(at) {
			return true
		}
	}
	return false
}

func (e *Engine) expiredExceptionFor(actor string, at time.Time) (Exception, bool) {
	var last Exception
	found := false
	for _, x := range e.exceptions[actor] {
		if !x.AppliesAt(at) && (!found || x.Expires.After(last.Expires)) {
			last, found = x, true
		}
	}
	return last, found
}

func (s *State) bulkAlert(ev *event.Event, a *actorState, id string, slot, end, sum int64) *Alert {
	e := s.eng
	events, firstBucket := a.count(end)
	from := firstBucket * e.width
	winStart := (end - Buckets + 1) * e.width
	to := (end + 1) * e.width
	last := min(a.maxT, to-1)
	al := &Alert{
		ID:          id,
		Rule:        RuleBulkExport,
		Title:       "Bulk export",
		Severity:    e.cfg.BulkExport.Severity,
		Actor:       ev.Actor.ID,
		GroupKey:    ev.Actor.ID,
		Slot:        time.Unix(0, slot).UTC(),
		WindowStart: time.Unix(0, winStart).UTC(),
		WindowEnd:   time.Unix(0, to).UTC(),
		FirstSeen:   time.Unix(0, from).UTC(),
		LastSeen:    time.Unix(0, last).UTC(),
		Events:      events,
		Records:     sum,
		Threshold:   e.threshold,
		Partition:   s.partition,
		EventTime:   ev.Time,
	}
	if a.evid != nil {
		al.Evidence = a.evid.between(winStart, to)
	}
	if ev.Type == event.TypeShare {
		al.Recipient = ev.Recipient.Domain
	}
	al.Summary = bulkSummary(ev, al, e.cfg.BulkExport.Window)
	if x, ok := e.expiredExceptionFor(ev.Actor.ID, ev.Time); ok {
		al.Summary += " " + expiredNote(x)
	}
	return al
}

// evidence is a small ring of the latest sample event ids of an actor.
type evidence struct {
	ids   []string
	times []int64
	next  int
	n     int
}

func newEvidence(n int) *evidence {
	return &evidence{ids: make([]string, n), times: make([]int64, n)}
}

func (v *evidence) push(id string, t int64) {
	v.ids[v.next] = strings.Clone(id)
	v.times[v.next] = t
	v.next = (v.next + 1) % len(v.ids)
	if v.n < len(v.ids) {
		v.n++
	}
}

// between returns the ids with times in [from, to), oldest first.
func (v *evidence) between(from, to int64) []string {
	out := make([]string, 0, v.n)
	start := (v.next - v.n + len(v.ids)) % len(v.ids)
	for i := 0; i < v.n; i++ {
		k := (start + i) % len(v.ids)
		if t := v.times[k]; t >= from && t < to {
			out = append(out, v.ids[k])
		}
	}
	return out
}
