package synth

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Shares of normal events: services emit about 62% (svc-app-backend alone
// 30%), employees the rest.
const bucketLen = int64(time.Minute)

// background is the normal traffic: Events events spread over the
// duration by a per-minute intensity that follows working hours, the week
// and the services' daily curve.
type background struct {
	w    *world
	rng  *rand.Rand // content
	trng *rand.Rand // times
	n    int        // events in all
	done int        // events yielded

	start   int64     // first bucket start, ns
	end     int64     // end of the period, ns
	weights []float64 // per-minute intensity
	total   float64
	cum     float64 // cumulative weight before the current bucket
	bucket  int     // current bucket
	bcount  int     // events in the current bucket
	bidx    int     // events yielded from it
	nextT   int64

	svcP     [168]float64 // chance that an event in the slot is a service's
	grpPick  [168]picker  // shift group by slot
	svcPick  picker
	emp      [168]float64 // employee intensity by slot
	svcShare float64      // services' share of the normal events

	peaks  []peakRT // full scenario: seasonal peak days
	peakOf []uint8  // per bucket: 1 + index in peaks, 0 for none
}

func (b *background) init(w *world, c Config) {
	b.w = w
	b.rng = rand.New(rand.NewPCG(uint64(c.Seed), 0xbac6))
	b.trng = rand.New(rand.NewPCG(uint64(c.Seed), 0x71e5))
	b.n = c.Events
	b.start = c.Start.UnixNano()
	b.end = c.Start.Add(c.Duration).UnixNano()

	// Employee intensity per slot: sum of group weights.
	var emp [168]float64
	for s := range 168 {
		ws := make([]float64, len(w.groups))
		for i, g := range w.groups {
			ws[i] = g.total * g.weight(s)
			emp[s] += ws[i]
		}
		b.grpPick[s] = newPicker(ws)
	}
	// Service intensity per slot: customers' daily curve (peak ~18:00
	// UTC, trough ~05:00), a little lower at weekends.
	var svc [168]float64
	var svcShare float64
	sw := make([]float64, len(w.services))
	for i, s := range w.services {
		sw[i] = s.weight
		svcShare += s.weight
	}
	b.svcPick = newPicker(sw)
	for s := range 168 {
		h := float64(s % 24)
		svc[s] = 1 + 0.6*math.Cos((h-18)/24*2*math.Pi)
		if s/24 >= 5 {
			svc[s] *= 0.85
		}
	}
	// Scale so that over the simulated period services emit svcShare of
	// the events.
	nb := int((c.Duration + time.Minute - 1) / time.Minute)
	var sumE, sumS float64
	for i := range nb {
		s := slotOf(b.start + int64(i)*bucketLen)
		sumE += emp[s]
		sumS += svc[s]
	}
	if sumE == 0 {
		sumE = 1
	}
	k := svcShare / (1 - svcShare) * sumE / sumS
	for s := range 168 {
		svc[s] *= k
		b.svcP[s] = svc[s] / (svc[s] + emp[s])
	}
	b.emp, b.svcShare = emp, svcShare
	b.weights = make([]float64, nb)
	b.initPeaks(c, &svc, &emp, svcShare)
	for i := range nb {
		s := slotOf(b.start + int64(i)*bucketLen)
		base := svc[s] + emp[s]
		if b.peakOf != nil && b.peakOf[i] != 0 {
			base += b.peaks[b.peakOf[i]-1].extra[s]
		}
		x := base * (0.85 + 0.3*b.trng.Float64())
		if i == nb-1 { // partial last minute
			rest := c.Duration - time.Duration(i)*time.Minute
			x *= float64(rest) / float64(time.Minute)
		}
		b.weights[i] = x
		b.total += x
	}
	b.bucket = -1
	b.advance()
}

// advance computes the time of the next event.
func (b *background) advance() {
	if b.done >= b.n {
		return
	}
	for b.bidx >= b.bcount {
		if b.bucket >= 0 {
			b.cum += b.weights[b.bucket]
		}
		b.bucket++
		if b.bucket >= len(b.weights)-1 {
			b.bucket = len(b.weights) - 1
			b.bcount = b.n - b.done // everything left
			b.bidx = 0
			break
		}
		lo := int(math.Round(float64(b.n) * b.cum / b.total))
		hi := int(math.Round(float64(b.n) * (b.cum + b.weights[b.bucket]) / b.total))
		b.bcount, b.bidx = hi-lo, 0
	}
	bstart := b.start + int64(b.bucket)*bucketLen
	span := min(bucketLen, b.end-bstart) // the last bucket may be partial
	off := (float64(b.bidx) + b.trng.Float64()) / float64(b.bcount) * float64(span)
	b.nextT = bstart + int64(off)
}

func (b *background) more() bool  { return b.done < b.n }
func (b *background) peek() int64 { return b.nextT }

// next fills e with the next normal event.
func (b *background) next(e *ev) {
	t := b.nextT
	b.bidx++
	seq := uint64(b.done)
	b.done++
	b.advance()

	rng := b.rng
	slot := slotOf(t)
	var a *actor
	if b.peakOf != nil {
		if p := b.peakOf[(t-b.start)/bucketLen]; p != 0 {
			pk := &b.peaks[p-1]
			if rng.Float64() < pk.pExtra[slot] {
				a = pk.actors[pk.pick[slot].pick(rng)]
			}
		}
	}
	switch {
	case a != nil:
	case rng.Float64() < b.svcP[slot]:
		a = b.w.services[b.svcPick.pick(rng)]
	default:
		g := b.w.groups[b.grpPick[slot].pick(rng)]
		a = g.members[g.pick.pick(rng)]
	}
	*e = ev{t: t, actor: a, records: -1, enc: -1}
	e.idHi, e.idLo = eventID(b.w.seed, seq)
	b.fill(e, a, a.role.acts[a.role.pick.pick(rng)])
}

// fill writes the content of one activity of a into e.
func (b *background) fill(e *ev, a *actor, act *activity) {
	rng := b.rng
	ds := act.ds
	e.ds = ds
	e.skind = ds.skind
	e.reqID = rng.Uint64() | 1
	e.schema = rng.IntN(2) == 0
	e.noEnv = rng.IntN(2) == 0
	e.purpose = act.purpose
	e.legal = act.legal
	if a.service {
		if rng.IntN(3) == 0 {
			e.attrs = a.attrJSON
		}
		e.client = rng.IntN(4) == 0
	} else {
		e.session = sessionID(b.w.seed, a, e.t)
		e.client = rng.IntN(10) < 7
		if a.role.name == "software_engineer" && ds.system == "app-db" && rng.IntN(10) == 0 {
			e.staging = true
		}
	}
	if act.ticket != "" && rng.IntN(5) != 0 {
		e.ticket = act.ticket
		e.ticketNo = 100000 + rng.IntN(400000)
	}
	switch x := rng.IntN(1000); {
	case x < 15:
		e.trace = rng.Uint64() | 1
	case x < 20:
		e.pipeline = true
	}

	kind := act.kind
	var share *shareOpt
	var records int64 = 1
	if act.hi > 1 {
		records = logUniform(rng, act.lo, act.hi)
	}
	moves := act.action == "export" || act.action == "download" || act.action == "transfer"
	if kind == actPartnerShare {
		share = act.pickShare(rng, e.t)
		if share == nil {
			kind = actAccess // no agreement valid now: a lookup instead
			moves = false
		}
	}
	downgraded := kind != act.kind
	if moves && !b.allow(a, e.t, records) {
		// Over the actor's hourly budget: the export becomes a query.
		kind, moves, downgraded = actAccess, false, true
	}

	if a.service && !moves && rng.IntN(2) == 0 {
		e.legal = "" // many services do not state it on routine access
	}
	switch kind {
	case actAccess:
		e.typ = "access"
		e.action = act.action
		if downgraded {
			e.action = "query"
		}
		if act.kind != actAccess {
			if e.purpose == "" {
				e.purpose = share0(act).purpose
				e.legal = share0(act).legal
			}
		}
		if !moves && e.action != "query" && rng.IntN(3) == 0 {
			records = -1 // single-record reads often omit it
		}
		e.catJSON = ds.catJSON[max(rng.IntN(len(ds.catJSON)), rng.IntN(len(ds.catJSON)))]
	case actEmailSubject:
		e.typ = "share"
		e.action = "transfer"
		e.catJSON = ds.catJSON[max(rng.IntN(len(ds.catJSON)), rng.IntN(len(ds.catJSON)))]
		e.rDomain = subjectMailDomains[rng.IntN(len(subjectMailDomains))]
		e.rCountry = subjectMailCountries[rng.IntN(len(subjectMailCountries))]
		e.rKind = "data_subject"
		e.chKind = "email"
		e.enc = 1
	case actPartnerShare:
		e.typ = "share"
		e.action = "transfer"
		e.catJSON = share.catJSON
		e.rID = share.p.ID
		e.rName = share.p.Name
		ci := rng.IntN(len(share.channels))
		e.rDomain = share.domains[ci]
		e.rCountry = share.countries[rng.IntN(len(share.countries))]
		e.rKind = share.p.Kind
		e.chKind = share.channels[ci]
		e.enc = 1
		e.purpose = share.ag.Uses[rng.IntN(len(share.ag.Uses))]
		e.legal = share.legal
	}
	e.records = records
	if records > 0 && (moves || rng.IntN(4) == 0) {
		e.bytes = records * ds.recBytes
	}

	// Subjects: one for single-record actions, a sample otherwise.
	n := int(records)
	if records < 0 {
		n = 1
	}
	if n > 0 {
		lim := 1
		if n > 1 {
			lim = 3
		}
		if n > lim {
			e.trunc = true
			n = lim
		}
		e.nSubj = n
		for i := range n {
			e.subj[i] = int32(rng.IntN(ds.nSubj))
		}
	}

	// Outcomes: a few denied or failed actions; denied moves nothing.
	switch x := rng.IntN(1000); {
	case x < 4:
		e.outcome = "denied"
	case x < 6:
		e.outcome = "failure"
	case x < 300:
		e.outcome = "success"
	}
}

// share0 returns the activity's first share option.
func share0(act *activity) *shareOpt { return act.shares[0] }

// pickShare picks one of the activity's agreements valid at t.
func (act *activity) pickShare(rng *rand.Rand, t int64) *shareOpt {
	tt := time.Unix(0, t).UTC()
	var valid [4]*shareOpt
	n := 0
	for _, o := range act.shares {
		if o.p.Status == "approved" && o.ag.covers(tt) && n < len(valid) {
			valid[n] = o
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return valid[rng.IntN(n)]
}

// allow reports whether a may move records more records in the clock hour
// of t, and books them if so.
func (b *background) allow(a *actor, t int64, records int64) bool {
	h := t / int64(time.Hour)
	if a.hour != h {
		a.hour, a.hourRecs = h, 0
	}
	limit := int64(userHourCap)
	if a.service {
		limit = serviceHourCap
	}
	if a.hourRecs+records > limit {
		return false
	}
	a.hourRecs += records
	return true
}

// logUniform draws from [lo, hi] with a log-uniform distribution.
func logUniform(rng *rand.Rand, lo, hi int64) int64 {
	if lo < 1 {
		lo = 1
	}
	if hi <= lo {
		return lo
	}
	l, h := math.Log(float64(lo)), math.Log(float64(hi)+1)
	v := int64(math.Exp(l + rng.Float64()*(h-l)))
	return min(max(v, lo), hi)
}

// expectedEvents returns how many normal events the model expects of a
// between from and to (ns since the epoch), peaks included.
func (b *background) expectedEvents(a *actor, from, to int64) float64 {
	var sum float64
	for i, w := range b.weights {
		t := b.start + int64(i)*bucketLen
		if t < from || t >= to {
			continue
		}
		s := slotOf(t)
		n := float64(b.n) * w / b.total
		// The actor's intensity relative to everyone's in the slot.
		var own float64
		if a.service {
			own = b.svcP[s] * a.weight / b.svcShare
		} else {
			own = (1 - b.svcP[s]) * a.group.weight(s) * a.weight / b.emp[s]
		}
		if b.peakOf != nil && b.peakOf[i] != 0 {
			pk := &b.peaks[b.peakOf[i]-1]
			own *= 1 - pk.pExtra[s]
			if slices.Contains(pk.actors, a) {
				own *= pk.Factor
			}
		}
		sum += n * own
	}
	return sum
}

// expectedRecords returns how many records the model expects a to touch
// through act between from and to, ignoring the hourly cap.
func (b *background) expectedRecords(a *actor, act *activity, from, to int64) float64 {
	var total float64
	for _, x := range a.role.acts {
		total += x.weight
	}
	return b.expectedEvents(a, from, to) * act.weight / total * meanLogUniform(act.lo, act.hi)
}

// meanLogUniform is the mean of logUniform(lo, hi).
func meanLogUniform(lo, hi int64) float64 {
	lo = max(lo, 1)
	if hi <= lo {
		return float64(lo)
	}
	l, h := math.Log(float64(lo)), math.Log(float64(hi)+1)
	return (float64(hi) + 1 - float64(lo)) / (h - l)
}
