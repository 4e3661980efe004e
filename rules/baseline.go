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
	// DefaultBaselinePeriod is the period whose total is judged: a UTC day.
	DefaultBaselinePeriod = 24 * time.Hour
	// DefaultBaselineHistory is how many past periods form the history.
	DefaultBaselineHistory = 14
	// MaxBaselineHistory is the most past periods a group keeps.
	MaxBaselineHistory = baseRing - 2
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
// A baseline rule totals, per group and per aligned event-time period
// (UTC days by default), the aggregate of the events that satisfy its
// condition, and raises an alert as soon as the running total of a period
// exceeds the group's bound:
//
//   - history: once the group has MinHistory active periods (periods with
//     a non-zero total) among the last History periods, the bound is
//     max(MinVolume, Factor × median, median + MADs × 1.4826 × MAD) of
//     those active periods' totals. A period without any matching event is
//     not a normal day of 0: an actor who exports twice a week would
//     otherwise have a median of 0 and look anomalous at every export.
//   - peers (optional): the median of the active-period totals of every
//     group sharing the same Peers.By value (e.g. actor.role), over the
//     same History periods; the bound is max(MinVolume, Peers.Factor ×
//     that median), needs MinPeers such periods, and applies only when the
//     group is also above its own median (when it has history), so that an
//     actor whose ordinary day is far above its peers is not flagged for
//     being ordinary.
//
// One alert per group and period (stable id); it escalates with the
// ratio of the total to the median that triggered it.
type Baseline struct {
	// Period is the length of the aligned event-time periods (default
	// 24h: UTC days). At least 1h, a whole number of minutes.
	Period time.Duration
	// History is how many past periods the statistics use (default 14, at
	// most 14).
	History int
	// MinHistory is the warm-up: how many active past periods the group
	// needs before its own history judges it (default 5).
	MinHistory int
	// MinVolume is the floor: a period total at or below it never alerts.
	MinVolume int64
	// Factor and MADs set the sensitivity to the own history (defaults 3
	// and 6; 0 turns that term off).
	Factor, MADs float64
	// Peers optionally compares the group with its peer group.
	Peers *Peers
	line  int
}

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
	b := &Baseline{History: -1, MinHistory: -1, Factor: -1, MADs: -1, line: n.Line}
	count := func(dst *int, what string, lo, hi int) strictyaml.Field {
		return strictyaml.Field{Read: func(v *yaml.Node) {
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
			b.Period = r.Duration(v, "period")
			if !r.Failed() && (b.Period < time.Hour || b.Period%time.Minute != 0) {
				r.Errorf(v, "baseline period must be a whole number of minutes, at least 1h, not %s", b.Period)
			}
		}},
		"history":     count(&b.History, "history", 1, MaxBaselineHistory),
		"min_history": count(&b.MinHistory, "min_history", 1, MaxBaselineHistory),
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
				"min_peers": count(&p.MinPeers, "min_peers", 1, 1<<20),
			})
			b.Peers = p
		}},
	})
	if b.Period == 0 {
		b.Period = DefaultBaselinePeriod
	}
	if b.History < 0 {
		b.History = DefaultBaselineHistory
	}
	if b.MinHistory < 0 {
		b.MinHistory = min(DefaultMinHistory, b.History)
	}
	if b.MinHistory > b.History {
		r.Errorf(n, "baseline min_history %d is more than history %d", b.MinHistory, b.History)
	}
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
		ru.Baseline = &Baseline{Period: DefaultBaselinePeriod, History: DefaultBaselineHistory, MinHistory: DefaultMinHistory,
			Factor: DefaultBaselineFactor, MADs: DefaultBaselineMADs, line: n.Line}
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
		r.Errorf(n, "rule %s: allowed_lateness %s is more than a quarter of the period %s", ru.ID, ru.AllowedLateness, b.Period)
	}
	ru.Suppress = b.Period
}

// ---- baseline: state ----

// baseRing is the number of period totals a group keeps: the current
// period, the previous one (late events), and up to 14 periods of history.
const baseRing = 16

// noPeriod marks "no period".
const noPeriod = math.MinInt32

// baseGroup is one group's period totals: a ring indexed by period number
// modulo baseRing. It is 112 bytes.
type baseGroup struct {
	maxT    int64     // newest event time of the group (unix ns)
	evid    *evidence // sample event ids, kept only while near the bound
	tot     [baseRing]uint32
	ev      [2]uint32 // events of the newest two periods, by period parity
	head    int32     // newest period number
	cacheP  int32     // period the cached bound is for (noPeriod: none)
	bound   uint32    // cached own-history bound (math.MaxUint32: warm-up)
	median  uint32    // cached own-history median
	alerted int32     // period of the last alert raised or suppressed
	peer    uint16    // index+1 of the peer group (0: none)
	level   int8      // escalation level of the alert of period alerted
	active  uint8     // cached number of active history periods
}

// peerBuckets is the number of log-scale buckets of a peer histogram: four
// per power of two of a uint32 total (±9% resolution).
const peerBuckets = 128

// peerGroup is a peer group's histogram of its members' period totals, per
// period: order-independent, so seeded and observed states agree.
type peerGroup struct {
	hist   [baseRing][peerBuckets]uint32
	head   int32
	cacheP int32
	median uint32
	n      uint32
}

// baselineState holds a baseline rule's groups and peer groups.
type baselineState struct {
	groups  map[string]*baseGroup
	peerIdx map[string]uint16
	peers   []*peerGroup
	buf     []byte
}

func newBaselineState() *baselineState {
	return &baselineState{groups: map[string]*baseGroup{}, peerIdx: map[string]uint16{}}
}

func (st *baselineState) keys() int { return len(st.groups) }

// period returns the period number of t (unix ns).
func (r *rule) period(t int64) int32 { return int32(floorDiv(t, r.window)) }

// baselineAdd adds ev to its group's period total and judges the total.
func (s *State) baselineAdd(r *rule, ev *event.Event, t int64, emit func(*Alert)) {
	st := s.rs[r.idx].(*baselineState)
	key, buf := groupKey(r, ev, st.buf)
	st.buf = buf
	g := st.groups[key]
	shared := s.shr != nil && s.shr[r.idx]
	if g == nil {
		g = &baseGroup{maxT: t, head: r.period(t), cacheP: noPeriod, alerted: noPeriod}
		key = strings.Clone(key)
		st.groups[key] = g
	} else if t < g.maxT-r.lateness && !shared {
		s.late++
		return
	}
	if t > g.maxT {
		g.maxT = t
	}
	p := r.period(t)
	if !g.at(p) && !(shared && p > g.head-baseRing) {
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
	total := st.add(r, g, ev, p, add)
	if p < g.head-1 {
		return // an older period of a shared group: counted, not judged
	}
	g.ev[p&1]++
	s.judge(r, st, g, ev, key, p, total, emit)
}

// at moves the group's ring to period p when p is newer, and reports
// whether p is still in the ring's writable range (the newest two periods).
func (g *baseGroup) at(p int32) bool {
	if p > g.head {
		n := min(int64(p)-int64(g.head), baseRing)
		for i := int64(1); i <= n; i++ {
			g.tot[(int64(g.head)+i)&(baseRing-1)] = 0
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
	k := p & (baseRing - 1)
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
	st.peers = append(st.peers, &peerGroup{head: noPeriod, cacheP: noPeriod})
	i := uint16(len(st.peers))
	st.peerIdx[strings.Clone(v)] = i
	return i
}

// move replaces a member's total of period p, old, by nu in the histogram.
func (pg *peerGroup) move(p int32, old, nu uint32) {
	if p > pg.head {
		if pg.head != noPeriod {
			n := min(int64(p)-int64(pg.head), baseRing)
			for i := int64(1); i <= n; i++ {
				pg.hist[(int64(pg.head)+i)&(baseRing-1)] = [peerBuckets]uint32{}
			}
		} else {
			pg.hist = [baseRing][peerBuckets]uint32{}
		}
		pg.head = p
	}
	if p <= pg.head-baseRing {
		return
	}
	h := &pg.hist[p&(baseRing-1)]
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
	var sum [peerBuckets]uint32
	var n uint32
	for q := p - int32(history); q < p; q++ {
		if q > pg.head || q <= pg.head-baseRing {
			continue
		}
		h := &pg.hist[q&(baseRing-1)]
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

// refresh recomputes the cached own-history statistics for period p.
func (g *baseGroup) refresh(r *rule, p int32) {
	if g.cacheP == p {
		return
	}
	b := r.Baseline
	var vals [MaxBaselineHistory]float64
	n := 0
	for q := p - int32(b.History); q < p; q++ {
		if q > g.head || q <= g.head-baseRing {
			continue
		}
		if v := g.tot[q&(baseRing-1)]; v > 0 {
			vals[n] = float64(v)
			n++
		}
	}
	g.cacheP, g.active = p, uint8(n)
	if n < b.MinHistory {
		g.bound, g.median = math.MaxUint32, 0
		if n > 0 {
			g.median = uint32(Median(vals[:n]))
		}
		return
	}
	med, mad := MedianMAD(vals[:n])
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

// judge compares the group's total of period p with its bounds and raises,
// escalates or suppresses the period's alert.
func (s *State) judge(r *rule, st *baselineState, g *baseGroup, ev *event.Event, key string, p int32, total uint32, emit func(*Alert)) {
	b := r.Baseline
	unit := r.unit()
	value := int64(total) * unit
	hot := false
	defer func() { s.keepBaselineEvidence(r, g, ev, hot) }()
	if value <= b.MinVolume {
		hot = value*2 > b.MinVolume
		return
	}
	g.refresh(r, p)
	var trig trigger
	ref, bound := uint32(0), uint32(math.MaxUint32)
	if total > g.bound {
		trig, ref, bound = trigHistory, g.median, g.bound
	}
	var peerMed uint32
	var peerN uint32
	if g.peer != 0 {
		peerMed, peerN = st.peers[g.peer-1].medianOf(p, b.History)
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
	ratio := int64(math.MaxInt32)
	if ref > 0 {
		ratio = int64(total) / int64(ref)
	}
	sev, level := severityAt(r, ratio)
	slot := int64(p) * r.window
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
	slot := int64(p) * r.window
	al := s.newAlert(r, ev, id, key, slot, sev)
	al.WindowStart, al.WindowEnd = time.Unix(0, slot).UTC(), time.Unix(0, slot+r.window).UTC()
	al.FirstSeen = al.WindowStart
	al.LastSeen = time.Unix(0, min(g.maxT, slot+r.window-1)).UTC()
	al.Events, al.Value, al.Threshold = int64(g.ev[p&1]), value, info.bound
	if r.agg == aggRecords {
		al.Records = value
	}
	if g.evid != nil {
		al.Evidence = g.evid.between(slot, slot+r.window)
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
	return shortDuration(d)
}

// sweepBaseline drops groups with no total left in their history.
func sweepBaseline(r *rule, st *baselineState, now int64) int {
	dropped := 0
	keep := int32(r.Baseline.History) + 1
	p := r.period(now)
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
// history after a restart or a rebalance: per period (aligned event-time
// periods of Period) and per distinct combination of Fields, the aggregate
// of the events; State.SeedBaseline takes each row.
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
	// Aggregate is count, sum(records) or sum(bytes); bytes are totalled
	// in KiB, each event rounded up (sum(intDiv(bytes + 1023, 1024))).
	Aggregate string
	// Fields are the event fields (paths such as actor.id) to group by.
	Fields []string
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
	seed := &BaselineSeed{Rule: ru.ID, Period: ru.Window, Periods: ru.Baseline.History, Aggregate: ru.Aggregate}
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
	key, buf := groupKey(r, ev, st.buf)
	st.buf = buf
	t := ev.Time.UnixNano()
	p := r.period(t)
	g := st.groups[key]
	if g == nil {
		g = &baseGroup{maxT: math.MinInt64 / 2, head: p, cacheP: noPeriod, alerted: noPeriod}
		st.groups[strings.Clone(key)] = g
	}
	if p > g.head {
		g.at(p)
	}
	if p <= g.head-baseRing {
		return false
	}
	st.add(r, g, ev, p, total)
	if p >= g.head-1 {
		g.ev[p&1] = uint32(min(int64(g.ev[p&1])+events, math.MaxUint32))
	}
	g.cacheP = noPeriod
	return true
}
