package rules

import (
	"math"
	"math/bits"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/internal/strictyaml"
)

// ---- baseline: settings ----

// Defaults and limits of baseline rules.
const (
	// DefaultBaselinePeriod is the period whose total is judged: a day.
	DefaultBaselinePeriod = 24 * time.Hour
	// DefaultBaselineHistory is how far back the history reaches: 14
	// days.
	DefaultBaselineHistory = 14 * 24 * time.Hour
	// MaxBaselineHistory is the longest history a rule may ask for.
	MaxBaselineHistory = 90 * 24 * time.Hour
	// MaxBaselinePeriods is the most past periods a group keeps (history /
	// period): a month of hourly periods. It bounds the memory of a group
	// (4 bytes per period) and of a peer group (512 bytes per period).
	MaxBaselinePeriods = 31 * 24
	// DefaultMinHistory is how many active past periods a group needs
	// before its own history judges it (the warm-up).
	DefaultMinHistory = 5
	// DefaultBaselineFactor: the total must exceed factor × median.
	DefaultBaselineFactor = 3.0
	// DefaultBaselineMADs: the total must exceed median + mads × σ, σ
	// estimated as 1.4826 × MAD.
	DefaultBaselineMADs = 6.0
	// DefaultPeerFactor: the total must exceed factor × the peers' median.
	DefaultPeerFactor = 10.0
	// DefaultMinPeers is how many peer periods (active periods of any
	// group of the peer group) the peers' median needs.
	DefaultMinPeers = 10
)

// Baseline are the settings of a baseline rule (the rule file's
// "baseline:" mapping).
//
// A baseline rule totals, per group and per event-time period (UTC days by
// default; hours with period: 1h; the calendar days of a time zone with
// timezone), the aggregate of the events that satisfy its condition, and
// raises an alert as soon as the running total of a period exceeds the
// group's bound:
//
//   - history: once the group has MinHistory active periods (periods with
//     a non-zero total) among the periods of the last History, the bound
//     is max(MinVolume, Factor × median, median + MADs × 1.4826 × MAD) of
//     those active periods' totals. A period without any matching event is
//     not a normal day of 0: an actor who exports twice a week would
//     otherwise have a median of 0 and look anomalous at every export.
//   - peers (optional): the median of the active-period totals of every
//     group sharing the same Peers.By value (e.g. actor.role), over the
//     same periods; the bound is max(MinVolume, Peers.Factor × that
//     median), needs MinPeers such periods, and applies only when the
//     group is also above its own median (when it has history), so that an
//     actor whose ordinary day is far above its peers is not flagged for
//     being ordinary.
//
// One alert per group and period (stable id); it escalates with the
// ratio of the total to the median that triggered it.
//
// A group keeps History/Period + 2 period totals (the history, the
// running period and the previous one, for late events) of 4 bytes each:
// 64 bytes for the default 14 days, 120 for 28 days, 1,352 for 14 days of
// hours; MaxBaselinePeriods bounds it.
type Baseline struct {
	// Period is the length of the periods whose totals are judged
	// (default 1d: days). At least 1h, a whole number of minutes; periods
	// are aligned on the Unix epoch (UTC), except days with a Timezone.
	Period time.Duration
	// History is how far back the statistics reach: the History/Period
	// periods before the running one (default 14d). A whole number of
	// periods, at most MaxBaselineHistory (90d) and MaxBaselinePeriods
	// periods.
	History time.Duration
	// Timezone is the IANA time zone (e.g. Europe/Berlin) whose calendar
	// days are the periods of a day rule: a day then runs from local
	// midnight to local midnight, 23 or 25 hours long on the days clocks
	// change. Empty (the default) or "UTC": UTC days. Only with period 1d.
	Timezone string
	// MinHistory is the warm-up: how many active past periods the group
	// needs before its own history judges it (default 5, or the number of
	// history periods when fewer).
	MinHistory int
	// MinVolume is the floor: a period total at or below it never alerts.
	MinVolume int64
	// Factor and MADs set the sensitivity to the own history (defaults 3
	// and 6; 0 turns that term off).
	Factor, MADs float64
	// Peers optionally compares the group with its peer group.
	Peers *Peers

	periods int            // History / Period
	loc     *time.Location // Timezone's days; nil: periods aligned on the Unix epoch
	line    int
}

// Periods is how many past periods the history holds: History / Period.
func (b *Baseline) Periods() int { return b.periods }

// Peers are the settings of a baseline rule's peer comparison.
type Peers struct {
	// By is the event field whose value names the peer group (e.g.
	// actor.role, actor.department).
	By string
	// Factor: the total must exceed Factor × the peers' median (default
	// 10).
	Factor float64
	// MinPeers is how many active peer periods the median needs (default
	// 10).
	MinPeers int
}

// readBaseline reads a rule's "baseline:" mapping.
func readBaseline(r *strictyaml.Reader, n *yaml.Node) *Baseline {
	b := &Baseline{MinHistory: -1, Factor: -1, MADs: -1, line: n.Line}
	var periodNode, historyNode, zoneNode, minNode *yaml.Node
	count := func(dst *int, what string, lo, hi int, node **yaml.Node) strictyaml.Field {
		return strictyaml.Field{Read: func(v *yaml.Node) {
			if node != nil {
				*node = v
			}
			k := r.Int(v, what)
			if !r.Failed() && (k < int64(lo) || k > int64(hi)) {
				r.Errorf(v, "baseline %s must be between %d and %d, not %d", what, lo, hi, k)
			}
			*dst = int(k)
		}}
	}
	float := func(dst *float64, what string) strictyaml.Field {
		return strictyaml.Field{Read: func(v *yaml.Node) { *dst = readFloat(r, v, "baseline "+what) }}
	}
	r.Mapping(n, "baseline", map[string]strictyaml.Field{
		"period": {Read: func(v *yaml.Node) {
			periodNode = v
			b.Period = r.Duration(v, "baseline period")
			if b.Period != 0 && (b.Period < time.Hour || b.Period%time.Minute != 0) {
				r.Errorf(v, "baseline period must be a whole number of minutes, at least 1h, not %s", days(b.Period))
				b.Period = 0
			}
		}},
		"history": {Read: func(v *yaml.Node) {
			historyNode = v
			d, err := strictyaml.ParseDuration(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || d <= 0 {
				r.Errorf(v, "baseline history must be a duration such as 14d or 28d (how far back the usual is taken), not %q", v.Value)
				return
			}
			b.History = d
		}},
		"timezone": {Read: func(v *yaml.Node) {
			zoneNode = v
			b.Timezone = r.String(v, "baseline timezone")
		}},
		"min_history": count(&b.MinHistory, "min_history", 1, MaxBaselinePeriods, &minNode),
		"min_volume": {Read: func(v *yaml.Node) {
			if b.MinVolume = r.Int(v, "min_volume"); b.MinVolume < 0 {
				r.Errorf(v, "baseline min_volume must not be negative")
			}
		}},
		"factor": float(&b.Factor, "factor"),
		"mads":   float(&b.MADs, "mads"),
		"peers": {Read: func(v *yaml.Node) {
			p := &Peers{Factor: -1, MinPeers: -1}
			r.Mapping(v, "peers", map[string]strictyaml.Field{
				"by": {Required: true, Read: func(v *yaml.Node) {
					p.By = strings.TrimPrefix(r.String(v, "peers by"), "event.")
					if _, ok := fieldByPath(p.By); !ok || isListField(p.By) {
						r.Errorf(v, "peers by: %q is not a string field of the event (e.g. actor.role, actor.department)", p.By)
					}
				}},
				"factor":    float(&p.Factor, "peers factor"),
				"min_peers": count(&p.MinPeers, "min_peers", 1, 1<<20, nil),
			})
			b.Peers = p
		}},
	})
	b.settle(r, n, periodNode, historyNode, zoneNode, minNode)
	if b.Factor < 0 {
		b.Factor = DefaultBaselineFactor
	}
	if b.MADs < 0 {
		b.MADs = DefaultBaselineMADs
	}
	if p := b.Peers; p != nil {
		if p.Factor < 0 {
			p.Factor = DefaultPeerFactor
		}
		if p.MinPeers < 0 {
			p.MinPeers = DefaultMinPeers
		}
	}
	return b
}

// settle fills the defaults of period, history, timezone and min_history
// and checks them together. Errors point at the setting that is wrong, or
// at the baseline mapping n when it is a default that does not fit.
func (b *Baseline) settle(r *strictyaml.Reader, n, periodNode, historyNode, zoneNode, minNode *yaml.Node) {
	at := func(nodes ...*yaml.Node) *yaml.Node {
		for _, v := range nodes {
			if v != nil {
				return v
			}
		}
		return n
	}
	if b.Period == 0 {
		b.Period = DefaultBaselinePeriod
	}
	if b.History == 0 {
		b.History = max(DefaultBaselineHistory, b.Period)
	}
	switch {
	case b.History > MaxBaselineHistory:
		r.Errorf(at(historyNode), "baseline history %s is more than the maximum of %s", days(b.History), days(MaxBaselineHistory))
	case b.History < b.Period:
		r.Errorf(at(historyNode, periodNode), "baseline history %s is shorter than one period of %s", days(b.History), days(b.Period))
	case b.History%b.Period != 0:
		r.Errorf(at(historyNode, periodNode), "baseline history %s is not a whole number of %s periods", days(b.History), days(b.Period))
	case b.History/b.Period > MaxBaselinePeriods:
		r.Errorf(at(historyNode, periodNode), "baseline history %s of %s periods is %d periods, more than the %d a group may keep: use a longer period or a shorter history",
			days(b.History), days(b.Period), b.History/b.Period, MaxBaselinePeriods)
	}
	b.periods = int(min(max(b.History/b.Period, 1), MaxBaselinePeriods))
	if b.MinHistory < 0 {
		b.MinHistory = min(DefaultMinHistory, b.periods)
	}
	if b.MinHistory > b.periods {
		r.Errorf(at(minNode), "baseline min_history %d is more than the %d periods of history %s", b.MinHistory, b.periods, days(b.History))
	}
	if zoneNode == nil {
		return
	}
	switch loc, err := time.LoadLocation(b.Timezone); {
	case b.Timezone == "" || b.Timezone == "Local":
		r.Errorf(zoneNode, "baseline timezone must be an IANA time zone name such as Europe/Berlin or UTC, not %q", b.Timezone)
	case err != nil:
		r.Errorf(zoneNode, "baseline timezone %q is not a time zone this system knows (IANA names such as Europe/Berlin)", b.Timezone)
	case b.Period != 24*time.Hour:
		r.Errorf(zoneNode, "baseline timezone applies to day periods (period: 1d), not to periods of %s", days(b.Period))
	case b.Timezone == "UTC":
		b.Timezone = "" // the default: UTC days aligned on the Unix epoch
	default:
		b.loc = loc
	}
}

// defaultBaseline is the settings of a baseline rule without a
// "baseline:" mapping.
func defaultBaseline(line int) *Baseline {
	return &Baseline{Period: DefaultBaselinePeriod, History: DefaultBaselineHistory, periods: int(DefaultBaselineHistory / DefaultBaselinePeriod),
		MinHistory: DefaultMinHistory, Factor: DefaultBaselineFactor, MADs: DefaultBaselineMADs, line: line}
}

// days formats d as settings are written: "28d", "36h", "90m", "1h30m".
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// periodOf returns the number of the period holding t (unix ns): t's
// calendar day in the rule's time zone (days since 1970-01-01 there), or
// t / Period rounded down.
func (b *Baseline) periodOf(t int64) int32 {
	if b.loc == nil {
		return int32(floorDiv(t, int64(b.Period)))
	}
	_, off := time.Unix(0, t).In(b.loc).Zone()
	return int32(floorDiv(t+int64(off)*int64(time.Second), int64(24*time.Hour)))
}

// periodStart returns the start (unix ns) of period p: p × Period, or
// with a time zone the first instant of the day: local midnight, or when
// the clocks skip or repeat midnight, the first instant whose local date
// is the day's.
func (b *Baseline) periodStart(p int32) int64 {
	if b.loc == nil {
		return int64(p) * int64(b.Period)
	}
	y, m, d := time.Unix(int64(p)*86400, 0).UTC().Date()
	t := time.Date(y, m, d, 0, 0, 0, 0, b.loc)
	const near = 3 * time.Hour // more than any change of the clocks
	if from, to := t.ZoneBounds(); (from.IsZero() || !from.After(t.Add(-near))) && (to.IsZero() || to.After(t.Add(near))) {
		return t.UnixNano() // no change of the clocks near midnight
	}
	lo, hi := t.Add(-near).Unix(), t.Add(near).Unix() // whole seconds: zones change on them
	for lo < hi {
		mid := lo + (hi-lo)/2
		if b.periodOf(mid*int64(time.Second)) >= p {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo * int64(time.Second)
}

func readFloat(r *strictyaml.Reader, v *yaml.Node, what string) float64 {
	s := r.String(v, what)
	if r.Failed() {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		r.Errorf(v, "%s must be a non-negative number, not %q", what, s)
		return 0
	}
	return f
}

// finishBaseline checks a baseline rule and fills its defaults.
func finishBaseline(r *strictyaml.Reader, n *yaml.Node, ru *Rule, latenessSet bool) {
	if ru.Baseline == nil {
		ru.Baseline = defaultBaseline(n.Line)
	}
	b := ru.Baseline
	if ru.Aggregate == "" {
		ru.Aggregate = "sum(records)"
	}
	if strings.HasPrefix(ru.Aggregate, "distinct(") {
		r.Errorf(n, "rule %s: a baseline rule aggregates count, sum(records) or sum(bytes), not %s", ru.ID, ru.Aggregate)
	}
	if b.Factor == 0 && b.MADs == 0 && b.Peers == nil && b.MinVolume == 0 {
		r.Errorf(n, "rule %s: a baseline rule with factor 0, mads 0, no min_volume and no peers would alert on every period", ru.ID)
	}
	ru.Window = b.Period
	if !latenessSet {
		ru.AllowedLateness = min(time.Hour, b.Period/4)
	}
	if ru.AllowedLateness > b.Period/4 {
		r.Errorf(n, "rule %s: allowed_lateness %s is more than a quarter of the period %s", ru.ID, days(ru.AllowedLateness), days(b.Period))
	}
	ru.Suppress = b.Period
}

// ---- baseline: state ----

// noPeriod marks "no period".
const noPeriod = math.MinInt32

// baseGroup is one group's period totals: a ring of History/Period + 2
// totals indexed by period number modulo its length. The struct is 80
// bytes, the ring 4 bytes per period.
type baseGroup struct {
	maxT    int64     // newest event time of the group (unix ns)
	evid    *evidence // sample event ids, kept only while near the bound
	tot     []uint32  // period totals, by period number modulo len(tot)
	ev      [2]uint32 // events of the newest two periods, by period parity
	head    int32     // newest period number
	cacheP  int32     // period the cached bound is for (noPeriod: none)
	bound   uint32    // cached own-history bound (math.MaxUint32: warm-up)
	median  uint32    // cached own-history median
	alerted int32     // period of the last alert raised or suppressed
	peer    uint16    // index+1 of the peer group (0: none)
	active  uint16    // cached number of active history periods
	level   int8      // escalation level of the alert of period alerted
}

// ringIndex is p modulo n, in [0, n).
func ringIndex(p int32, n int) int {
	k := int(p) % n
	if k < 0 {
		k += n
	}
	return k
}

// peerBuckets is the number of log-scale buckets of a peer histogram: four
// per power of two of a uint32 total (±9% resolution).
const peerBuckets = 128

// peerGroup is a peer group's histogram of its members' period totals, per
// period (a ring as long as its members'): order-independent, so seeded
// and observed states agree.
type peerGroup struct {
	hist   [][peerBuckets]uint32
	head   int32
	cacheP int32
	median uint32
	n      uint32
}

// baselineState holds a baseline rule's groups and peer groups. Its rings
// are ring periods long, numbered by period and zone: conform adapts them
// when a reload changes the rule's settings.
type baselineState struct {
	groups  map[string]*baseGroup
	peerIdx map[string]uint16
	peers   []*peerGroup
	buf     []byte
	vals    []float64 // scratch of refresh
	ring    int       // ring length: history periods + 2 (0: not yet set)
	period  time.Duration
	zone    string
}

func newBaselineState() *baselineState {
	return &baselineState{groups: map[string]*baseGroup{}, peerIdx: map[string]uint16{}}
}

func (st *baselineState) keys() int { return len(st.groups) }

// conform makes the state fit rule settings b. A state kept across a
// reload (same rule, grouping and period) keeps its totals when only the
// history length changed (rings are cut or extended), and starts empty
// when the time zone changed (the periods are other days).
func (st *baselineState) conform(b *Baseline) {
	ring := b.periods + 2
	if st.ring == ring && st.period == b.Period && st.zone == b.Timezone {
		return
	}
	if st.ring != 0 && (st.period != b.Period || st.zone != b.Timezone) {
		clear(st.groups)
		clear(st.peerIdx)
		st.peers = nil
	}
	if st.ring != 0 && st.ring != ring {
		for _, g := range st.groups {
			g.resize(ring)
		}
		for _, pg := range st.peers {
			pg.resize(ring)
		}
	}
	st.ring, st.period, st.zone = ring, b.Period, b.Timezone
}

// resize moves the group's totals to a ring of n periods, keeping the
// newest ones both rings hold.
func (g *baseGroup) resize(n int) {
	old := g.tot
	g.tot = make([]uint32, n)
	for q := g.head; q > g.head-int32(min(n, len(old))); q-- {
		g.tot[ringIndex(q, n)] = old[ringIndex(q, len(old))]
	}
	g.cacheP = noPeriod
}

// resize moves the peer group's histograms to a ring of n periods.
func (pg *peerGroup) resize(n int) {
	old := pg.hist
	pg.hist = make([][peerBuckets]uint32, n)
	if pg.head != noPeriod {
		for q := pg.head; q > pg.head-int32(min(n, len(old))); q-- {
			pg.hist[ringIndex(q, n)] = old[ringIndex(q, len(old))]
		}
	}
	pg.cacheP = noPeriod
}

// newGroup returns an empty group whose newest period is p.
func (st *baselineState) newGroup(maxT int64, p int32) *baseGroup {
	return &baseGroup{maxT: maxT, tot: make([]uint32, st.ring), head: p, cacheP: noPeriod, alerted: noPeriod}
}

// baselineAdd adds ev to its group's period total and judges the total.
func (s *State) baselineAdd(r *rule, ev *event.Event, t int64, emit func(*Alert)) {
	st := s.rs[r.idx].(*baselineState)
	st.conform(r.Baseline)
	key, buf := groupKey(r, ev, st.buf)
	st.buf = buf
	g := st.groups[key]
	shared := s.shr != nil && s.shr[r.idx]
	p := r.Baseline.periodOf(t)
	if g == nil {
		g = st.newGroup(t, p)
		key = strings.Clone(key)
		st.groups[key] = g
	} else if t < g.maxT-r.lateness && !shared {
		s.late++
		return
	}
	if t > g.maxT {
		g.maxT = t
	}
	if !g.at(p) && !(shared && p > g.head-int32(len(g.tot))) {
		// A shared group takes events from partitions that lag one
		// another (and from partitions rebuilt after a rebalance): a
		// period still in its ring counts whatever the order, as totals
		// are sums; only the newest two periods are judged.
		s.late++
		return
	}
	var add int64
	switch r.agg {
	case aggCount:
		add = 1
	case aggRecords:
		add = ev.Data.Records
	case aggBytes:
		add = (ev.Data.Bytes + 1023) / 1024 // KiB resolution
	}
	before := g.tot[ringIndex(p, len(g.tot))]
	total := st.add(r, g, ev, p, add)
	if p < g.head-1 {
		return // an older period of a shared group: counted, not judged
	}
	g.ev[p&1]++
	s.judge(r, st, g, ev, key, p, before, total, emit)
}

// at moves the group's ring to period p when p is newer, and reports
// whether p is still in the ring's writable range (the newest two periods).
func (g *baseGroup) at(p int32) bool {
	if p > g.head {
		n := min(int64(p)-int64(g.head), int64(len(g.tot)))
		for i := int64(1); i <= n; i++ {
			g.tot[ringIndex(int32(int64(g.head)+i), len(g.tot))] = 0
		}
		if p-g.head >= 2 {
			g.ev = [2]uint32{}
		} else {
			g.ev[p&1] = 0
		}
		g.head = p
	}
	return p >= g.head-1
}

// add adds n units to the group's total of period p (in its ring), keeps
// the peer histogram in step and returns the new total.
func (st *baselineState) add(r *rule, g *baseGroup, ev *event.Event, p int32, n int64) uint32 {
	k := ringIndex(p, len(g.tot))
	old := g.tot[k]
	nu := addSat32(old, n)
	if nu == old {
		return nu
	}
	g.tot[k] = nu
	if p < g.cacheP {
		g.cacheP = noPeriod // history of the cached period changed
	}
	if r.peerBy != noField {
		if old == 0 || g.peer == 0 {
			g.peer = st.peerOf(r.stringField(ev, r.peerBy))
		}
		if g.peer != 0 {
			st.peers[g.peer-1].move(p, old, nu)
		}
	}
	return nu
}

// peerOf returns the index+1 of the peer group named v, creating it.
func (st *baselineState) peerOf(v string) uint16 {
	if v == "" {
		return 0
	}
	if i, ok := st.peerIdx[v]; ok {
		return i
	}
	if len(st.peers) >= math.MaxUint16-1 {
		return 0
	}
	st.peers = append(st.peers, &peerGroup{hist: make([][peerBuckets]uint32, st.ring), head: noPeriod, cacheP: noPeriod})
	i := uint16(len(st.peers))
	st.peerIdx[strings.Clone(v)] = i
	return i
}

// move replaces a member's total of period p, old, by nu in the histogram.
func (pg *peerGroup) move(p int32, old, nu uint32) {
	ring := len(pg.hist)
	if p > pg.head {
		if pg.head != noPeriod {
			n := min(int64(p)-int64(pg.head), int64(ring))
			for i := int64(1); i <= n; i++ {
				pg.hist[ringIndex(int32(int64(pg.head)+i), ring)] = [peerBuckets]uint32{}
			}
		} else {
			clear(pg.hist)
		}
		pg.head = p
	}
	if p <= pg.head-int32(ring) {
		return
	}
	h := &pg.hist[ringIndex(p, ring)]
	if old > 0 && h[bucketOf(old)] > 0 {
		h[bucketOf(old)]--
	}
	if nu > 0 {
		h[bucketOf(nu)]++
	}
	if p < pg.cacheP {
		pg.cacheP = noPeriod
	}
}

// bucketOf is the log-scale bucket of v > 0: four buckets per power of two.
func bucketOf(v uint32) int {
	l := bits.Len32(v) - 1
	var frac uint32
	if l >= 2 {
		frac = (v >> (l - 2)) & 3
	} else {
		frac = (v << (2 - l)) & 3
	}
	return l*4 + int(frac)
}

// bucketValue is the middle of bucket b.
func bucketValue(b int) uint32 {
	l, frac := b/4, uint64(b%4)
	lo := (4 + frac) << l >> 2
	hi := (5 + frac) << l >> 2
	return uint32((lo + hi) / 2)
}

// medianOf returns the peers' median total and how many member periods it
// is the median of, over the history periods before p.
func (pg *peerGroup) medianOf(p int32, history int) (uint32, uint32) {
	if p == pg.cacheP {
		return pg.median, pg.n
	}
	ring := len(pg.hist)
	var sum [peerBuckets]uint32
	var n uint32
	for q := p - int32(history); q < p; q++ {
		if q > pg.head || q <= pg.head-int32(ring) {
			continue
		}
		h := &pg.hist[ringIndex(q, ring)]
		for b, c := range h {
			sum[b] += c
			n += c
		}
	}
	var med uint32
	if n > 0 {
		half, acc := (n+1)/2, uint32(0)
		for b, c := range sum {
			if acc += c; acc >= half {
				med = bucketValue(b)
				break
			}
		}
	}
	pg.cacheP, pg.median, pg.n = p, med, n
	return med, n
}

// refresh recomputes the cached own-history statistics for period p, with
// vals as scratch.
func (g *baseGroup) refresh(r *rule, st *baselineState, p int32) {
	if g.cacheP == p {
		return
	}
	b := r.Baseline
	ring := len(g.tot)
	vals := st.vals[:0]
	for q := p - int32(b.periods); q < p; q++ {
		if q > g.head || q <= g.head-int32(ring) {
			continue
		}
		if v := g.tot[ringIndex(q, ring)]; v > 0 {
			vals = append(vals, float64(v))
		}
	}
	st.vals = vals
	n := len(vals)
	g.cacheP, g.active = p, uint16(n)
	if n < b.MinHistory {
		g.bound, g.median = math.MaxUint32, 0
		if n > 0 {
			g.median = uint32(Median(vals))
		}
		return
	}
	med, mad := MedianMAD(vals)
	g.median = uint32(med)
	g.bound = uint32(min(HistoryBound(med, mad, b.Factor, b.MADs), math.MaxUint32-1))
}

// Median returns the median of vals (sorted in place).
func Median(vals []float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	sort.Float64s(vals)
	m := len(vals) / 2
	if len(vals)%2 == 1 {
		return vals[m]
	}
	return (vals[m-1] + vals[m]) / 2
}

// MedianMAD returns the median of vals and their median absolute
// deviation from it. vals is reordered.
func MedianMAD(vals []float64) (median, mad float64) {
	median = Median(vals)
	dev := make([]float64, len(vals))
	for i, v := range vals {
		dev[i] = math.Abs(v - median)
	}
	return median, Median(dev)
}

// HistoryBound is the value a period total must exceed to be anomalous
// against a history of median and MAD: max(factor × median, median + mads
// × 1.4826 × MAD). (1.4826 × MAD estimates the standard deviation of
// normally distributed totals, without being moved by the outliers it is
// meant to find.)
func HistoryBound(median, mad, factor, mads float64) float64 {
	return max(factor*median, median+mads*1.4826*mad)
}

// trigger says what a baseline total was found anomalous against.
type trigger uint8

const (
	trigHistory trigger = 1 << iota
	trigPeers
)

func (t trigger) String() string {
	switch t {
	case trigHistory:
		return "history"
	case trigPeers:
		return "peers"
	case trigHistory | trigPeers:
		return "history and peers"
	}
	return ""
}

// judge compares the group's total of period p, before the current event
// and total with it, with its bounds and raises, escalates or suppresses
// the period's alert.
func (s *State) judge(r *rule, st *baselineState, g *baseGroup, ev *event.Event, key string, p int32, before, total uint32, emit func(*Alert)) {
	b := r.Baseline
	unit := r.unit()
	value := int64(total) * unit
	hot := false
	defer func() { s.keepBaselineEvidence(r, g, ev, hot) }()
	if value <= b.MinVolume {
		hot = value*2 > b.MinVolume
		return
	}
	g.refresh(r, st, p)
	var trig trigger
	ref, bound := uint32(0), uint32(math.MaxUint32)
	if total > g.bound {
		trig, ref, bound = trigHistory, g.median, g.bound
	}
	var peerMed uint32
	var peerN uint32
	if g.peer != 0 {
		peerMed, peerN = st.peers[g.peer-1].medianOf(p, b.periods)
		if int(peerN) >= b.Peers.MinPeers {
			pb := uint32(min(b.Peers.Factor*float64(peerMed), math.MaxUint32-1))
			if total > pb && (int(g.active) < b.MinHistory || total > g.median) {
				if trig == 0 {
					ref, bound = peerMed, pb
				}
				trig |= trigPeers
			}
		}
	}
	hot = trig != 0 || (g.bound != math.MaxUint32 && uint64(total)*2 > uint64(g.bound))
	if trig == 0 {
		return
	}
	ratio := func(v uint32) int64 {
		if ref == 0 {
			return math.MaxInt32
		}
		return int64(v) / int64(ref)
	}
	sev, level := severityAt(r, ratio(total))
	slot := b.periodStart(p)
	info := &baselineInfo{trig: trig, median: int64(g.median) * unit, active: int(g.active), bound: int64(bound) * unit,
		peerMedian: int64(peerMed) * unit, peerN: int(peerN), ratio: float64(total) / float64(max(ref, 1))}
	if b.Peers != nil {
		info.peerGroup = r.stringField(ev, r.peerBy)
	}
	if p == g.alerted {
		if g.level == suppressedLevel || level <= g.level {
			return
		}
		g.level = level
		id := StableID(r.ID, key, time.Unix(0, slot))
		al := s.baselineAlert(r, ev, g, id, key, p, value, info, sev)
		s.emitOnce(al, emit, true)
		return
	}
	id := StableID(r.ID, key, time.Unix(0, slot))
	if p < g.alerted && s.seenID(id) {
		return
	}
	newest := p > g.alerted
	if newest {
		g.alerted, g.level = p, level
	}
	applies, expired := s.excepted(r, ev.Time)
	if applies {
		s.suppressed++
		if newest {
			g.level = suppressedLevel
		}
		return
	}
	if s.seenID(id) {
		if newest && before > 0 {
			// Raised before this state judged the period: by the process
			// before a restart, on totals now seeded. It stands at the
			// level the total before this event gives; beyond it, it
			// escalates as it would have without the restart.
			if _, prev := severityAt(r, ratio(before)); level > prev {
				info.expired = expired
				s.emitOnce(s.baselineAlert(r, ev, g, id, key, p, value, info, sev), emit, true)
			}
		}
		return
	}
	info.expired = expired
	al := s.baselineAlert(r, ev, g, id, key, p, value, info, sev)
	s.emitOnce(al, emit, false)
}

// baselineInfo is what a baseline alert's text says beyond the shared
// fields.
type baselineInfo struct {
	trig       trigger
	median     int64
	active     int
	bound      int64
	peerGroup  string
	peerMedian int64
	peerN      int
	ratio      float64
	expired    *Exception
}

func (s *State) keepBaselineEvidence(r *rule, g *baseGroup, ev *event.Event, hot bool) {
	if !hot || r.evidence == 0 {
		g.evid = nil
		return
	}
	if g.evid == nil {
		g.evid = newEvidence(r.evidence)
	}
	g.evid.push(ev.ID, ev.Time.UnixNano())
}

func (s *State) baselineAlert(r *rule, ev *event.Event, g *baseGroup, id, key string, p int32, value int64, info *baselineInfo, sev Severity) *Alert {
	slot, end := r.Baseline.periodStart(p), r.Baseline.periodStart(p+1)
	al := s.newAlert(r, ev, id, key, slot, sev)
	al.WindowStart, al.WindowEnd = time.Unix(0, slot).UTC(), time.Unix(0, end).UTC()
	al.FirstSeen = al.WindowStart
	al.LastSeen = time.Unix(0, min(g.maxT, end-1)).UTC()
	al.Events, al.Value, al.Threshold = int64(g.ev[p&1]), value, info.bound
	if r.agg == aggRecords {
		al.Records = value
	}
	if g.evid != nil {
		al.Evidence = g.evid.between(slot, end)
	}
	s.base = info
	s.finishAlert(r, ev, al, info.expired, "")
	s.base = nil
	return al
}

// fillBaseline adds a baseline alert's figures to its summary data.
func (info *baselineInfo) fill(r *rule, d *SummaryData) {
	d.Trigger = info.trig.String()
	d.Baseline, d.HistoryPeriods = info.median, int64(info.active)
	d.PeerGroup, d.PeerMedian, d.PeerPeriods = info.peerGroup, info.peerMedian, int64(info.peerN)
	d.Ratio = strconv.FormatFloat(info.ratio, 'f', 1, 64) + "×"
	d.Period = periodName(r.Window)
}

func periodName(d time.Duration) string {
	switch d {
	case 24 * time.Hour:
		return "day"
	case time.Hour:
		return "hour"
	case 7 * 24 * time.Hour:
		return "week"
	}
	return days(d)
}

// sweepBaseline drops groups with no total left in their history.
func sweepBaseline(r *rule, st *baselineState, now int64) int {
	dropped := 0
	keep := int32(r.Baseline.periods) + 1
	p := r.Baseline.periodOf(now)
	for k, g := range st.groups {
		if g.head < p-keep {
			delete(st.groups, k)
			dropped++
		}
	}
	return dropped
}

// ---- baseline: seeding from storage ----

// BaselineSeed says what storage must total to seed one baseline rule's
// history after a restart or a rebalance: per period of the rule (periods
// of Period aligned on the Unix epoch, or the calendar days of Timezone)
// and per distinct combination of Fields, the aggregate of the events;
// State.SeedBaseline takes each row. HistoryStart says how far back.
//
// Fields are the group_by fields, the peers field, and every field the
// rule's condition reads (directly or through macros), so that
// SeedBaseline can evaluate the condition on each row exactly: grouping by
// what the condition reads pushes the condition down without translating
// CEL to SQL. A condition that reads a field storage cannot group by (the
// event time, volumes, subjects, request details, attributes, derived
// fields) or calls a function other than CEL's and the pure partner
// look-ups makes the rule unseedable (Engine.BaselineSeeds says why): its
// history is learnt again from live events after a restart.
type BaselineSeed struct {
	// Rule is the rule id.
	Rule string
	// Period is the rule's period length.
	Period time.Duration
	// Periods is how many past periods of history the rule keeps.
	Periods int
	// Timezone, when set, is the IANA time zone whose calendar days are
	// the periods (Period is then 24h; a day may last 23 or 25 hours).
	// Empty: periods of Period aligned on the Unix epoch (UTC days).
	Timezone string
	// Aggregate is count, sum(records) or sum(bytes); bytes are totalled
	// in KiB, each event rounded up (sum(intDiv(bytes + 1023, 1024))).
	Aggregate string
	// Fields are the event fields (paths such as actor.id) to group by.
	Fields []string

	b *Baseline
}

// HistoryStart returns the start of the oldest period a state judging at
// t still holds: Periods periods before the period holding t. Storage
// totals from there.
func (sd BaselineSeed) HistoryStart(t time.Time) time.Time {
	b := sd.b
	if b == nil { // a seed built by hand: no time zone
		b = &Baseline{Period: sd.Period}
	}
	return time.Unix(0, b.periodStart(b.periodOf(t.UnixNano())-int32(sd.Periods))).UTC()
}

// UnseedableRule is a baseline rule whose history cannot be seeded.
type UnseedableRule struct {
	Rule, Reason string
}

// seedableFields are the fields storage can group by exactly.
var seedableFields = map[fieldID]bool{
	fType: true, fAction: true, fActorID: true, fActorKind: true, fActorRole: true, fActorDepartment: true,
	fSourceSystem: true, fSourceDataset: true, fSourceEnvironment: true, fCategories: true, fHasRecords: true,
	fSubjectKinds: true, fRecipientID: true, fRecipientName: true, fRecipientDomain: true, fRecipientCountry: true,
	fRecipientKind: true, fChannelKind: true, fChannelEncrypted: true, fChannelEncryptedSet: true, fPurpose: true,
	fLegalBasis: true, fOutcome: true,
}

// seedableVia are derived fields that storage can seed through the stored
// fields they are derived from.
var seedableVia = map[fieldID][]fieldID{
	fTransferPartner: {fType, fRecipientID, fRecipientDomain, fRecipientKind},
}

// pureFunctions are the identifiers a seedable condition may call besides
// event fields, lists and macros: CEL's own, and look-ups that depend only
// on their arguments.
var pureFunctions = map[string]bool{
	"in": true, "size": true, "has": true, "exists": true, "all": true, "exists_one": true, "map": true, "filter": true,
	"true": true, "false": true, "null": true, "int": true, "uint": true, "double": true, "string": true, "bool": true,
	"partner": true, "covers": true,
}

var (
	identPattern   = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*`)
	stringLiterals = regexp.MustCompile(`"(\\.|[^"\\])*"|'(\\.|[^'\\])*'`)
	comprehension  = regexp.MustCompile(`(exists|all|exists_one|map|filter)\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,`)
	pureCalls      = regexp.MustCompile(`^partner\.(known|known_id|status|kind)$`)
)

// conditionFields returns the event fields expr reads, following macros,
// or the reason it cannot be seeded.
func (e *Engine) conditionFields(expr string, seen map[string]bool, out map[fieldID]bool) string {
	text := stringLiterals.ReplaceAllString(expr, `""`)
	local := map[string]bool{}
	for _, m := range comprehension.FindAllStringSubmatch(text, -1) {
		local[m[2]] = true
	}
	for _, loc := range identPattern.FindAllStringIndex(text, -1) {
		if loc[0] > 0 && text[loc[0]-1] == '.' {
			continue // a method name
		}
		id := text[loc[0]:loc[1]]
		head, _, _ := strings.Cut(id, ".")
		switch {
		case head == "event":
			f, ok := fieldByVar[id]
			if !ok {
				// event.x.method: find the longest field prefix.
				for p := id; p != "event"; p = p[:strings.LastIndex(p, ".")] {
					if f, ok = fieldByVar[p]; ok {
						break
					}
				}
			}
			if !ok || !seedableFields[f] && seedableVia[f] == nil {
				return "its condition reads " + id + ", which storage cannot total exactly"
			}
			out[f] = true
		case local[head] || pureCalls.MatchString(id) || (pureFunctions[head] && head != "partner"):
		case e.isList(head):
		default:
			i, ok := e.macroIdx[head]
			if !ok {
				return "its condition calls " + id
			}
			if !seen[head] {
				seen[head] = true
				if why := e.conditionFields(e.macros[i].Expr, seen, out); why != "" {
					return why
				}
			}
		}
	}
	return ""
}

func (e *Engine) isList(name string) bool {
	for _, f := range e.files {
		for _, l := range f.Lists {
			if l.Name == name {
				return true
			}
		}
	}
	return false
}

// BaselineSeeds returns what storage must total to seed the history of the
// baseline rules in force, and the baseline rules it cannot seed, with why.
func (e *Engine) BaselineSeeds() ([]BaselineSeed, []UnseedableRule) {
	var seeds []BaselineSeed
	var skipped []UnseedableRule
	for _, r := range e.rules {
		if r.Kind != KindBaseline {
			continue
		}
		if r.seed == nil {
			skipped = append(skipped, UnseedableRule{Rule: r.ID, Reason: r.unseedable})
			continue
		}
		seeds = append(seeds, *r.seed)
	}
	return seeds, skipped
}

// compileBaseline prepares a baseline rule's peers field and seed.
func (e *Engine) compileBaseline(ru *rule) {
	ru.peerBy = noField
	if p := ru.Baseline.Peers; p != nil {
		ru.peerBy, _ = fieldByPath(p.By)
	}
	fields := map[fieldID]bool{}
	if why := e.conditionFields(ru.Condition, map[string]bool{}, fields); why != "" {
		ru.unseedable = why
		return
	}
	for _, f := range ru.groupBy {
		fields[f] = true
	}
	if ru.peerBy != noField {
		fields[ru.peerBy] = true
	}
	b := ru.Baseline
	seed := &BaselineSeed{Rule: ru.ID, Period: b.Period, Periods: b.periods, Timezone: b.Timezone, Aggregate: ru.Aggregate, b: b}
	for f := range fields {
		if via := seedableVia[f]; via != nil {
			delete(fields, f)
			for _, v := range via {
				fields[v] = true
			}
		}
	}
	for f := range fields {
		if !seedableFields[f] {
			ru.unseedable = "it groups by " + eventFields[f].path + ", which storage cannot total exactly"
			return
		}
		seed.Fields = append(seed.Fields, eventFields[f].path)
	}
	slices.Sort(seed.Fields)
	ru.seed = seed
}

// noField marks "no field".
const noField fieldID = math.MaxUint8

// SeedBaseline adds one stored total to the history of baseline rule
// rule: total is the aggregate, in the rule's units (records, KiB or
// events), of the stored events of one period whose grouped fields (those
// of BaselineSeed.Fields) have the values ev carries, and events how many
// events they are; ev.Time is any time
// within the period. The rule's condition is evaluated on ev, and the
// total counts only when it holds. Totals of periods older than the
// history, or of unknown rules, are ignored. Seed before observing or
// evaluating the events that follow the seeded ones.
func (s *State) SeedBaseline(rule string, ev *event.Event, total, events int64) bool {
	r, ok := s.eng.byID[rule]
	if !ok || r.Kind != KindBaseline || total <= 0 {
		return false
	}
	s.act.reset(ev)
	if !s.test(r.cond) {
		return false
	}
	if s.shr != nil && s.shr[r.idx] {
		s.sh.mu.Lock()
		defer s.sh.mu.Unlock()
	}
	st := s.rs[r.idx].(*baselineState)
	st.conform(r.Baseline)
	key, buf := groupKey(r, ev, st.buf)
	st.buf = buf
	p := r.Baseline.periodOf(ev.Time.UnixNano())
	g := st.groups[key]
	if g == nil {
		g = st.newGroup(math.MinInt64/2, p)
		st.groups[strings.Clone(key)] = g
	}
	if p > g.head {
		g.at(p)
	}
	if p <= g.head-int32(len(g.tot)) {
		return false
	}
	st.add(r, g, ev, p, total)
	if p >= g.head-1 {
		g.ev[p&1] = uint32(min(int64(g.ev[p&1])+events, math.MaxUint32))
	}
	g.cacheP = noPeriod
	return true
}

// ---- first_seen: seeding a partition's terms from storage ----

// PartitionTermSeeds returns what storage must return to seed, from one
// partition's stored events, the terms of the first_seen rules in force
// that keep their state with the partition (those grouped by actor.id, the
// Kafka key: a first export from a dataset by an actor), and those it
// cannot seed, with why. Each TermSeed is as for Engine.TermSeeds (the
// shared rules, seeded from every partition), but totalled over the
// partition's events only; State.SeedTerms takes each row. Seeded at each
// assignment, a restart or a rebalance neither starts their learning
// period again nor takes a term the actor showed before for new.
func (e *Engine) PartitionTermSeeds() ([]TermSeed, []UnseedableRule) {
	var seeds []TermSeed
	var skipped []UnseedableRule
	for _, r := range e.rules {
		if r.Kind != KindFirstSeen || sharedRule(r) {
			continue
		}
		fields := map[fieldID]bool{}
		why := e.conditionFields(r.Condition, map[string]bool{}, fields)
		for _, f := range slices.Concat(r.groupBy, r.terms) {
			fields[f] = true
		}
		seed := TermSeed{Rule: r.ID, Window: time.Duration(r.retention)}
		for f := range fields {
			stored := seedableVia[f]
			if stored == nil {
				stored = []fieldID{f}
			}
			for _, g := range stored {
				if why == "" && !seedableFields[g] {
					why = "it reads " + eventFields[g].path + ", which storage cannot group by exactly"
				}
				if !slices.Contains(seed.Fields, eventFields[g].path) {
					seed.Fields = append(seed.Fields, eventFields[g].path)
				}
			}
		}
		if why != "" {
			skipped = append(skipped, UnseedableRule{Rule: r.ID, Reason: why})
			continue
		}
		slices.Sort(seed.Fields)
		seeds = append(seeds, seed)
	}
	return seeds, skipped
}
