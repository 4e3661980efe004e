package synth

import (
	"math/rand/v2"
	"time"
)

// habits returns the habit events of the full scenario: on its first
// working hour of the run (at the latest in the first learning day for
// actors who do not work then), every actor performs each data move of
// its role once, with the fewest records the activity moves: every export
// or download activity, every e-mail to the data subject, and every share
// to a partner under each valid agreement, over each of its channels, to
// each country normal traffic uses. Afterwards, normal traffic never moves
// a dataset, a category to a recipient, or data to a country that the
// learning period has not seen, so first-seen rules learn every habit
// before the last day.
func (w *world) habits(c Config) []*ev {
	rng := rand.New(rand.NewPCG(uint64(c.Seed), 0x4ab175))
	start := c.Start.UnixNano()
	lastDay := c.Start.Add(time.Duration(c.days()-1) * 24 * time.Hour).UnixNano()
	var out []*ev
	actors := append(append([]*actor(nil), w.employees...), w.services...)
	for _, a := range actors {
		t := firstWorkHour(a, start, lastDay) + int64(5*time.Minute) + rng.Int64N(int64(20*time.Minute))
		for _, act := range a.role.acts {
			moves := act.action == "export" || act.action == "download" || act.action == "transfer"
			if !moves {
				continue
			}
			switch act.kind {
			case actAccess, actEmailSubject:
				out = append(out, w.habitEvent(rng, a, act, t, nil, 0, ""))
				t += int64(2*time.Minute) + rng.Int64N(int64(2*time.Minute))
			case actPartnerShare:
				for _, o := range act.shares {
					if o.p.Status != "approved" || !o.ag.covers(time.Unix(0, t).UTC()) {
						continue
					}
					for ci := range o.channels {
						for _, country := range o.countries {
							out = append(out, w.habitEvent(rng, a, act, t, o, ci, country))
							t += int64(2*time.Minute) + rng.Int64N(int64(2*time.Minute))
						}
					}
				}
			}
		}
	}
	for n, e := range out {
		e.idHi, e.idLo = specialID(w.seed, 1<<22+n) // apart from batch and incident ids
	}
	return out
}

// firstWorkHour returns the start of a's first full working hour from
// start (ns), before lastDay; services start at once, and employees who do
// not work before lastDay do their habits on the first day at 10:00 UTC.
func firstWorkHour(a *actor, start, lastDay int64) int64 {
	if a.service {
		return start
	}
	h := (start + int64(time.Hour) - 1) / int64(time.Hour) * int64(time.Hour)
	for ; h+int64(time.Hour) <= lastDay; h += int64(time.Hour) {
		if a.group.weight(slotOf(h)) == 1 {
			return h
		}
	}
	return start + int64(10*time.Hour)
}

// habitEvent is one habit: act by a at t, through share option o (channel
// ci, country) for partner shares.
func (w *world) habitEvent(rng *rand.Rand, a *actor, act *activity, t int64, o *shareOpt, ci int, country string) *ev {
	ds := act.ds
	records := max(act.lo, 1)
	e := &ev{
		t: t, actor: a, typ: "access", action: act.action, ds: ds, catJSON: ds.catJSON[0],
		records: records, bytes: records * ds.recBytes, skind: ds.skind, enc: -1,
		purpose: act.purpose, legal: act.legal, outcome: "success", schema: true, reqID: rng.Uint64() | 1,
	}
	if !a.service {
		e.session = sessionID(w.seed, a, t)
		e.client = true
	}
	if act.ticket != "" {
		e.ticket, e.ticketNo = act.ticket, 100000+rng.IntN(400000)
	}
	switch act.kind {
	case actEmailSubject:
		e.typ, e.action = "share", "transfer"
		e.rDomain = subjectMailDomains[rng.IntN(len(subjectMailDomains))]
		e.rCountry = subjectMailCountries[rng.IntN(len(subjectMailCountries))]
		e.rKind, e.chKind, e.enc = "data_subject", "email", 1
	case actPartnerShare:
		e.typ, e.action = "share", "transfer"
		e.catJSON = o.catJSON
		e.rID, e.rName, e.rKind = o.p.ID, o.p.Name, o.p.Kind
		e.rDomain, e.rCountry = o.domains[ci], country
		e.chKind, e.enc = o.channels[ci], 1
		e.purpose, e.legal = o.ag.Uses[0], o.legal
	}
	n := int(min(records, 3))
	e.nSubj, e.trunc = n, records > int64(n)
	for i := range n {
		e.subj[i] = int32(rng.IntN(ds.nSubj))
	}
	return e
}
