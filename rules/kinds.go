package rules

import (
	"hash/maphash"
	"math"
	"strings"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// ---- match ----

// match raises one alert per group key and suppression period for an
// event that satisfies the condition.
func (s *State) match(r *rule, ev *event.Event, t int64, emit func(*Alert)) {
	key, _ := groupKey(r, ev, nil)
	slot := floorDiv(t, r.suppress) * r.suppress
	id := StableID(r.ID, key, time.Unix(0, slot))
	if s.seenID(id) {
		return
	}
	applies, expired := s.excepted(r, ev.Time)
	if applies {
		s.suppressed++
		s.emitted[id] = s.wm // once per key and period
		return
	}
	sev, _ := severityAt(r, ev.Data.Records)
	al := s.newAlert(r, ev, id, key, slot, sev)
	al.WindowStart, al.WindowEnd = time.Unix(0, slot).UTC(), time.Unix(0, slot+r.suppress).UTC()
	al.FirstSeen, al.LastSeen = ev.Time, ev.Time
	al.Events, al.Records, al.Value = 1, ev.Data.Records, ev.Data.Records
	if r.evidence > 0 {
		al.Evidence = []string{ev.ID}
	}
	s.finishAlert(r, ev, al, expired, "")
	s.emitOnce(al, emit, false)
}

// ---- threshold ----

// thresholdState holds a threshold rule's windows by group key.
type thresholdState struct {
	groups   map[string]*window
	distinct map[string]map[string]int64 // group -> value -> newest time (distinct aggregates)
	buf      []byte
}

// window is one group's sliding window: a ring of buckets of Window/12,
// indexed by bucket number modulo ringSize. It is 121 bytes (a 128-byte
// allocation).
type window struct {
	maxT    int64     // newest event time of the group (unix ns)
	alerted int64     // dedup slot (unix ns) of the last alert raised or suppressed
	evid    *evidence // sample event ids, kept only while near the threshold
	vals    [ringSize]uint32
	events  [ringSize]uint16
	level   int8 // escalation level of the alert of slot alerted
	// reported is the value the slot's alert carried when last emitted
	// (saturating): the alert is updated, under the same id, each time the
	// value doubles, so it shows current counts without a new alert per
	// event.
	reported uint32
}

// suppressedLevel marks a slot whose alert an exception suppressed.
const suppressedLevel = math.MaxInt8

// maxDistinct bounds the values a distinct aggregate keeps per group.
const maxDistinct = 4096

func (st *thresholdState) keys() int { return len(st.groups) }

// thresholdAdd adds ev to its group's window and raises (or escalates)
// an alert when a window holding ev reaches the threshold.
//
// The window slides in steps of one bucket (Window/12): the value compared
// is that of the 12 buckets ending with the bucket of the newest event. An
// event up to AllowedLateness behind its group's newest event lands in its
// own bucket, and the windows ending at its bucket through the newest one
// are all checked. Alerts are deduplicated per group and slot (the event
// time truncated to the suppression period): id StableID(rule, key, slot).
func (s *State) thresholdAdd(r *rule, ev *event.Event, t int64, emit func(*Alert)) {
	st := s.rs[r.idx].(*thresholdState)
	key, buf := groupKey(r, ev, st.buf)
	st.buf = buf
	w := st.groups[key]
	if w == nil {
		w = &window{maxT: t, alerted: noSlot}
		key = strings.Clone(key)
		st.groups[key] = w
	} else if t < w.maxT-r.lateness {
		s.late++
		return
	}
	head := floorDiv(w.maxT, r.width)
	b := floorDiv(t, r.width)
	if b > head {
		n := min(b-head, ringSize)
		for i := int64(1); i <= n; i++ {
			k := (head + i) & (ringSize - 1)
			w.vals[k], w.events[k] = 0, 0
		}
		head = b
	}
	if t > w.maxT {
		w.maxT = t
	}
	if b < head-(ringSize-Buckets) {
		s.late++
		return
	}
	k := b & (ringSize - 1)
	var add int64
	switch r.agg {
	case aggCount:
		add = 1
	case aggRecords:
		add = ev.Data.Records
	case aggBytes:
		add = (ev.Data.Bytes + 1023) / 1024 // KiB resolution
	}
	w.vals[k] = addSat32(w.vals[k], add)
	if w.events[k] < 1<<16-1 {
		w.events[k]++
	}

	hit, sum, found := head, int64(0), false
	if r.agg == aggDistinct {
		sum = st.addDistinct(r, key, ev, t)
		found = sum >= r.threshold
	} else {
		for end := head; end >= b; end-- {
			if sum = w.sum(end) * r.unit(); sum >= r.threshold {
				hit, found = end, true
				break
			}
		}
	}
	s.keepEvidence(r, w, ev, t, found || (r.agg != aggDistinct && w.sum(head)*r.unit()*2 >= r.threshold) ||
		(r.agg == aggDistinct && sum*2 >= r.threshold))
	if !found {
		return
	}
	slot := floorDiv(t, r.suppress) * r.suppress
	sev, level := severityAt(r, sum)
	if slot == w.alerted {
		if w.level == suppressedLevel || (level <= w.level && sum < 2*int64(w.reported)) {
			return
		}
		// Escalation, or the value doubled: the same alert, updated.
		w.level, w.reported = max(w.level, level), sat32(sum)
		id := StableID(r.ID, key, time.Unix(0, slot))
		al := s.windowAlert(r, ev, w, id, key, slot, hit, sum, sev)
		s.finishAlert(r, ev, al, nil, "")
		s.emitOnce(al, emit, true)
		return
	}
	id := StableID(r.ID, key, time.Unix(0, slot))
	if slot < w.alerted && s.seenID(id) {
		return // an earlier slot, already alerted
	}
	newest := slot > w.alerted
	if newest {
		w.alerted, w.level, w.reported = slot, level, sat32(sum)
	}
	applies, expired := s.excepted(r, ev.Time)
	if applies {
		s.suppressed++
		if newest {
			w.level = suppressedLevel
		}
		return
	}
	if s.seenID(id) {
		return
	}
	al := s.windowAlert(r, ev, w, id, key, slot, hit, sum, sev)
	s.finishAlert(r, ev, al, expired, "")
	s.emitOnce(al, emit, false)
}

// unit is the value of one counted unit: 1 KiB for sum(bytes), else 1.
func (r *rule) unit() int64 {
	if r.agg == aggBytes {
		return 1024
	}
	return 1
}

// addDistinct records ev's value(s) of the distinct field for key and
// returns how many distinct values the group has within the window.
func (st *thresholdState) addDistinct(r *rule, key string, ev *event.Event, t int64) int64 {
	if st.distinct == nil {
		st.distinct = map[string]map[string]int64{}
	}
	m := st.distinct[key]
	if m == nil {
		m = map[string]int64{}
		st.distinct[strings.Clone(key)] = m
	}
	put := func(v string) {
		if v == "" {
			return
		}
		if old, ok := m[v]; ok {
			if t > old {
				m[v] = t
			}
			return
		}
		if len(m) < maxDistinct {
			m[strings.Clone(v)] = t
		}
	}
	if vs := listField(ev, r.distinct); vs != nil {
		for _, v := range vs {
			put(v)
		}
	} else {
		put(stringField(ev, r.distinct))
	}
	var n int64
	from := t - r.window
	for v, at := range m {
		switch {
		case at > from:
			n++
		case at < from-r.lateness:
			delete(m, v)
		}
	}
	return n
}

// sum is the value total of the window of Buckets buckets ending with
// bucket end.
func (w *window) sum(end int64) int64 {
	var n int64
	for b := end - Buckets + 1; b <= end; b++ {
		n += int64(w.vals[b&(ringSize-1)])
	}
	return n
}

func (w *window) count(end int64) (events int64, first int64) {
	first = end
	for b := end; b > end-Buckets; b-- {
		k := b & (ringSize - 1)
		if w.events[k] > 0 {
			events += int64(w.events[k])
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

// keepEvidence records ev's id while the group is near the threshold
// (half of it or more) and frees the samples when it falls back below.
func (s *State) keepEvidence(r *rule, w *window, ev *event.Event, t int64, hot bool) {
	if !hot || r.evidence == 0 {
		w.evid = nil
		return
	}
	if w.evid == nil {
		w.evid = newEvidence(r.evidence)
	}
	w.evid.push(ev.ID, t)
}

func (s *State) windowAlert(r *rule, ev *event.Event, w *window, id, key string, slot, end, value int64, sev Severity) *Alert {
	events, firstBucket := w.count(end)
	winStart := (end - Buckets + 1) * r.width
	to := (end + 1) * r.width
	al := s.newAlert(r, ev, id, key, slot, sev)
	al.WindowStart, al.WindowEnd = time.Unix(0, winStart).UTC(), time.Unix(0, to).UTC()
	al.FirstSeen = time.Unix(0, firstBucket*r.width).UTC()
	al.LastSeen = time.Unix(0, min(w.maxT, to-1)).UTC()
	al.Events, al.Value, al.Threshold = events, value, r.threshold
	if r.agg == aggRecords {
		al.Records = value
	}
	if r.agg == aggDistinct {
		al.WindowStart = time.Unix(0, ev.Time.UnixNano()-r.window).UTC()
		al.WindowEnd = ev.Time
		al.FirstSeen = al.WindowStart
	}
	if w.evid != nil {
		al.Evidence = w.evid.between(winStart, to)
	}
	return al
}

// evidence is a small ring of the latest sample event ids of a group.
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

// ---- first_seen ----

// firstSeenState remembers, per rule, the hashes of (group key, term
// tuple) seen and when they were last seen.
type firstSeenState struct {
	terms map[uint64]int64
	start int64 // first event time the rule saw: learning runs from it
	buf   []byte
	vals  []string // scratch term tuple, reused across events
}

var termSeed = maphash.MakeSeed()

func (st *firstSeenState) keys() int { return len(st.terms) }

// firstSeen raises an alert the first time a group shows a tuple of term
// values, once the learning period since the state's first matching event
// is over. Terms of list fields (data.categories) count element by
// element.
func (s *State) firstSeen(r *rule, ev *event.Event, t int64, emit func(*Alert)) {
	st := s.rs[r.idx].(*firstSeenState)
	if st.start == noSlot {
		st.start = t
	}
	learning := t < st.start+r.learning
	key, _ := groupKey(r, ev, nil)
	if len(st.vals) != len(r.terms) {
		st.vals = make([]string, len(r.terms))
	}
	walkTerms(r, ev, st.vals, 0, func(vals []string) {
		h := termHash(st, key, vals)
		if last, ok := st.terms[h]; ok {
			if t > last {
				st.terms[h] = t
			}
			return
		}
		st.terms[h] = t
		if !learning {
			s.newTerm(r, ev, t, key, strings.Join(vals, ", "), emit)
		}
	})
}

// termHash is the hash of the group key and term tuple vals.
func termHash(st *firstSeenState, key string, vals []string) uint64 {
	st.buf = append(st.buf[:0], key...)
	for _, v := range vals {
		st.buf = append(st.buf, 0)
		st.buf = append(st.buf, v...)
	}
	return maphash.Bytes(termSeed, st.buf)
}

// forEachTerm calls fn with each tuple of r's term values of ev: list
// fields (data.categories) element by element, empty values skipped.
func forEachTerm(r *rule, ev *event.Event, fn func(vals []string)) {
	walkTerms(r, ev, make([]string, len(r.terms)), 0, fn)
}

// walkTerms fills vals[i:] with every combination of term values and calls
// fn with each complete tuple.
func walkTerms(r *rule, ev *event.Event, vals []string, i int, fn func(vals []string)) {
	if i == len(r.terms) {
		fn(vals)
		return
	}
	f := r.terms[i]
	if eventFields[f].typ == stringList {
		for _, v := range listField(ev, f) {
			vals[i] = v
			walkTerms(r, ev, vals, i+1, fn)
		}
		return
	}
	if vals[i] = stringField(ev, f); vals[i] != "" {
		walkTerms(r, ev, vals, i+1, fn)
	}
}

func (s *State) newTerm(r *rule, ev *event.Event, t int64, key, term string, emit func(*Alert)) {
	slot := floorDiv(t, r.suppress) * r.suppress
	id := StableID(r.ID, key+"|"+term, time.Unix(0, slot))
	if s.seenID(id) {
		return
	}
	applies, expired := s.excepted(r, ev.Time)
	if applies {
		s.suppressed++
		s.emitted[id] = s.wm
		return
	}
	sev, _ := severityAt(r, ev.Data.Records)
	al := s.newAlert(r, ev, id, key, slot, sev)
	al.WindowStart, al.WindowEnd = time.Unix(0, slot).UTC(), time.Unix(0, slot+r.suppress).UTC()
	al.FirstSeen, al.LastSeen = ev.Time, ev.Time
	al.Events, al.Records, al.Value = 1, ev.Data.Records, ev.Data.Records
	if r.evidence > 0 {
		al.Evidence = []string{ev.ID}
	}
	s.finishAlert(r, ev, al, expired, term)
	s.emitOnce(al, emit, false)
}

// ---- sequence ----

// sequenceState holds each group's progress through a sequence rule.
type sequenceState struct {
	groups map[string]*progress
	buf    []byte
}

// progress is how far a group got: at[i] is the start time of the newest
// chain that completed steps 0..i (noSlot when none), ids the event ids.
type progress struct {
	at   []int64
	ids  []string
	last int64
}

func (st *sequenceState) keys() int { return len(st.groups) }

// sequence advances the group's progress: steps are checked from the last
// to the first, so that one event never completes two steps of the same
// chain.
func (s *State) sequence(r *rule, ev *event.Event, t int64, emit func(*Alert)) {
	st := s.rs[r.idx].(*sequenceState)
	var p *progress
	key := ""
	last := len(r.steps) - 1
	for i := last; i >= 0; i-- {
		if !s.test(r.steps[i]) {
			continue
		}
		if p == nil {
			var buf []byte
			key, buf = groupKey(r, ev, st.buf)
			st.buf = buf
			p = st.groups[key]
			if p == nil {
				if i != 0 {
					continue
				}
				p = &progress{at: make([]int64, len(r.steps)), ids: make([]string, len(r.steps))}
				for j := range p.at {
					p.at[j] = noSlot
				}
				key = strings.Clone(key)
				st.groups[key] = p
			}
		}
		p.last = max(p.last, t)
		if i == 0 {
			p.at[0], p.ids[0] = t, strings.Clone(ev.ID)
			continue
		}
		start := p.at[i-1]
		if start == noSlot || t < start || t-start > r.window {
			continue
		}
		if i < last {
			p.at[i], p.ids[i] = start, strings.Clone(ev.ID)
			continue
		}
		s.sequenceAlert(r, ev, p, key, start, emit)
	}
}

func (s *State) sequenceAlert(r *rule, ev *event.Event, p *progress, key string, start int64, emit func(*Alert)) {
	slot := floorDiv(start, r.suppress) * r.suppress
	id := StableID(r.ID, key, time.Unix(0, slot))
	if s.seenID(id) {
		return
	}
	applies, expired := s.excepted(r, ev.Time)
	if applies {
		s.suppressed++
		s.emitted[id] = s.wm
		return
	}
	al := s.newAlert(r, ev, id, key, slot, r.Severity)
	al.WindowStart, al.WindowEnd = time.Unix(0, start).UTC(), time.Unix(0, start+r.window).UTC()
	al.FirstSeen, al.LastSeen = time.Unix(0, start).UTC(), ev.Time
	al.Events, al.Records, al.Value = int64(len(r.steps)), ev.Data.Records, ev.Data.Records
	if r.evidence > 0 {
		ids := append([]string(nil), p.ids[:len(p.ids)-1]...)
		al.Evidence = append(ids, ev.ID)
	}
	s.finishAlert(r, ev, al, expired, "")
	s.emitOnce(al, emit, false)
}

// ---- sweeping ----

// sweepRules drops threshold groups idle longer than 2 × window +
// lateness, terms unseen for the retention, and sequences idle longer than
// their window.
func (s *State) sweepRules(now int64) int {
	dropped := 0
	for _, r := range s.eng.rules {
		if s.shr != nil && s.shr[r.idx] {
			continue // swept by sweepShared
		}
		dropped += sweepRule(r, s.rs[r.idx], now)
	}
	if s.sh != nil {
		dropped += s.sweepShared(now)
	}
	return dropped
}

// sweepRule sweeps one rule's state at now.
func sweepRule(r *rule, rs ruleState, now int64) int {
	dropped := 0
	switch st := rs.(type) {
	case *thresholdState:
		idle := 2*r.window + r.lateness
		for k, w := range st.groups {
			if w.maxT < now-idle {
				delete(st.groups, k)
				delete(st.distinct, k)
				dropped++
			}
		}
	case *firstSeenState:
		for h, at := range st.terms {
			if at < now-r.retention {
				delete(st.terms, h)
				dropped++
			}
		}
	case *baselineState:
		dropped += sweepBaseline(r, st, now)
	case *sequenceState:
		for k, p := range st.groups {
			if p.last < now-r.window {
				delete(st.groups, k)
				dropped++
			}
		}
	}
	return dropped
}

// sat32 clamps v to the range of a uint32.
func sat32(v int64) uint32 {
	return uint32(min(max(v, 0), math.MaxUint32))
}
