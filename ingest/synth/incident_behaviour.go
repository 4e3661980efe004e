package synth

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// activityOf returns a's activity on the dataset with the action.
func activityOf(a *actor, ds *dataset, action string) *activity {
	for _, act := range a.role.acts {
		if act.ds == ds && act.action == action {
			return act
		}
	}
	panic("synth: " + a.id + " has no " + action + " on " + ds.system + "/" + ds.name)
}

// usualDaily returns the most records per day the model expects a to move
// through acts together on any learning day (the days before the
// incident's).
func (s *scenarioCtx) usualDaily(a *actor, acts ...*activity) float64 {
	day := s.at.Truncate(24 * time.Hour)
	expect := func(d time.Time) float64 {
		var sum float64
		for _, act := range acts {
			sum += s.bg.expectedRecords(a, act, d.UnixNano(), d.Add(24*time.Hour).UnixNano())
		}
		return sum
	}
	var most float64
	for d := s.cfg.Start.Truncate(24 * time.Hour); d.Before(day); d = d.Add(24 * time.Hour) {
		most = max(most, expect(d))
	}
	if most == 0 { // no learning day: the incident's own day
		most = expect(day)
	}
	return most
}

// busiestExporter picks, among the employees of role not yet in an
// incident (those of loc first), the one the model expects to export the
// most on the learning days: a baseline judges an actor against its own
// history only after enough active days (min_history), and the busiest
// exporter has them at any event count, where a random one may still be
// warming up.
func (s *scenarioCtx) busiestExporter(role, loc string) *actor {
	var best *actor
	var most float64
	bestLoc := false
	for _, e := range s.w.employees {
		if e.role.name != role || s.w.used[e] {
			continue
		}
		atLoc := e.loc.name == loc
		u := s.usualDaily(e, exportActs(e)...)
		if best == nil || atLoc && !bestLoc || atLoc == bestLoc && u > most {
			best, most, bestLoc = e, u, atLoc
		}
	}
	if best == nil {
		return s.w.pickEmployee(s.rng, role, loc)
	}
	s.w.used[best] = true
	return best
}

// exportActs returns a's activities that export or download data: what a
// baseline of the actor's exported records (export_baseline) adds up.
func exportActs(a *actor) []*activity {
	var out []*activity
	for _, act := range a.role.acts {
		if act.action == "export" || act.action == "download" {
			out = append(out, act)
		}
	}
	return out
}

// partnerUsualDaily returns the median over the learning days (the days
// before the incident's) of the records the model expects the partner to
// receive a day.
func (s *scenarioCtx) partnerUsualDaily(id string) float64 {
	day := s.at.Truncate(24 * time.Hour)
	var days []float64
	for d := s.cfg.Start.Truncate(24 * time.Hour); d.Before(day) || len(days) == 0; d = d.Add(24 * time.Hour) {
		var sum float64
		for _, a := range append(append([]*actor(nil), s.w.employees...), s.w.services...) {
			for _, act := range a.role.acts {
				if act.partner != nil && act.partner.ID == id {
					sum += s.bg.expectedRecords(a, act, d.UnixNano(), d.Add(24*time.Hour).UnixNano())
				}
			}
		}
		days = append(days, sum)
	}
	slices.Sort(days)
	return days[len(days)/2]
}

// partnerVolumeSpike: a care coordinator re-sends lab results to Helix
// Labs after an outage: twelve times the partner's usual daily volume
// (at least 6,000 and at most 60,000 records) in transfers of 1,500 every
// 12 minutes, each within the agreement; no sliding hour reaches 7,500
// records, under the bulk-export threshold.
func partnerVolumeSpike(s *scenarioCtx) Incident {
	a := s.w.pickEmployee(s.rng, "care_coordinator", "Europe/Berlin")
	ds := s.w.dataset("care-portal", "lab_results")
	usual := s.partnerUsualDaily("helix-labs")
	total := int64(min(max(12*usual, 6000), 60000))
	for i := 0; total > 0; i++ {
		r := min(total, 1500)
		total -= r
		s.share(a, time.Duration(i)*12*time.Minute+time.Duration(s.rng.IntN(60))*time.Second, shareSpec{
			ds: ds, records: r, partner: "helix-labs", country: "DE", channel: "sftp", purpose: "essential.service"})
	}
	s.inc.Agreement = "DPA-2023-012"
	s.also(KindExportBaseline)
	s.inc.Description = fmt.Sprintf("%s sent %d patients' lab results to Helix Labordiagnostik in %d transfers between %s and %s local time (a re-submission after an outage), about %.0f times the ~%.0f records a day Helix usually receives; each transfer is within agreement DPA-2023-012 and no hour reaches the bulk-export threshold",
		who(a), s.inc.Records, len(s.inc.EventIDs), s.inc.Start.Add(time.Duration(a.loc.offset)*time.Hour).Format("15:04"),
		s.inc.End.Add(time.Duration(a.loc.offset)*time.Hour).Format("15:04"), float64(s.inc.Records)/max(usual, 1), usual)
	return s.inc
}

// exportBaseline: low-and-slow exfiltration. A Berlin software engineer,
// who exports a few dozen small batches of customer addresses a day for
// incident work, exports eight times their usual daily volume (at least
// 3,000 and at most 36,000 records) from app-db/addresses in many exports
// of 150-300 records, evenly over 9.5 hours of the working day: no export
// is larger than the ones they usually make, and no hour comes near the
// bulk-export threshold.
func exportBaseline(s *scenarioCtx) Incident {
	a := s.busiestExporter("software_engineer", "Europe/Berlin")
	ds := s.w.dataset("app-db", "addresses")
	_ = activityOf(a, ds, "export") // the actor's usual export, made bigger
	// The baseline adds up every export and download of the actor, not
	// only this dataset's: scale the incident to all of them.
	usual := s.usualDaily(a, exportActs(a)...)
	total := int64(min(max(8*usual, 3000), 36000))
	n := int((total + 224) / 225)
	span := 9*time.Hour + 30*time.Minute
	left := total
	for i := range n {
		r := left / int64(n-i)
		if i < n-1 {
			r += int64(s.rng.IntN(61)) - 30
		}
		r = min(max(r, 150), 300, left)
		if i == n-1 {
			r = left
		}
		left -= r
		d := span*time.Duration(i)/time.Duration(n) + time.Duration(s.rng.IntN(120))*time.Second
		s.access(a, d, ds, "export", r, "essential.service.operations", "legitimate_interests", "INC-")
	}
	s.inc.Description = fmt.Sprintf("%s exported %d customer address records from %s/%s in %d small exports of at most 300 records between %s and %s local time, about %.0f times the ~%.0f records a day they usually export; no single export or hour comes near the bulk-export threshold",
		who(a), s.inc.Records, ds.system, ds.name, n,
		s.inc.Start.Add(time.Duration(a.loc.offset)*time.Hour).Format("15:04"), s.inc.End.Add(time.Duration(a.loc.offset)*time.Hour).Format("15:04"),
		math.Round(float64(s.inc.Records)/max(usual, 1)), usual)
	return s.inc
}

// firstSeenDataset: a London support agent, who exports support tickets
// but has never touched crm/accounts, exports 150 customer accounts with
// their credit-card data from it.
func firstSeenDataset(s *scenarioCtx) Incident {
	a := s.w.pickEmployee(s.rng, "support_agent", "Europe/London")
	ds := s.w.dataset("crm", "accounts")
	s.access(a, 0, ds, "export", 150, "essential.service.operations.support", "contract", "CS-")
	s.inc.Description = fmt.Sprintf("%s exported 150 customer accounts, with credit-card data, from %s/%s%s: the first export from that dataset by this agent, whose exports always came from support-desk/tickets",
		who(a), ds.system, ds.name, localClock(a, s.at))
	return s.inc
}

// firstSeenCategory: a new personalised template makes the mailer send
// customers' names along with their e-mail addresses to Mailwave for the
// first time (the agreement covers names).
func firstSeenCategory(s *scenarioCtx) Incident {
	a := s.w.service("svc-mailer")
	ds := s.w.dataset("notifications", "outbox")
	s.share(a, 0, shareSpec{ds: ds, cats: []string{"user.contact.email", "user.name"}, records: 60, partner: "mailwave",
		country: "IE", channel: "api", purpose: "essential.service.notifications"})
	s.inc.Agreement = "DPA-2024-002"
	s.inc.Description = fmt.Sprintf("%s sent customers' names (user.name) to Mailwave Inc. (%s) for the first time, with 60 notification e-mails of a new personalised template; agreement DPA-2024-002 covers names, but Mailwave had only ever received e-mail addresses and phone numbers",
		who(a), s.inc.Domain)
	return s.inc
}

// firstSeenCountry: the payments service sends a payment to PayFlux's
// Brussels data centre: Belgium is in the agreement (since an amendment)
// but no data ever went there.
func firstSeenCountry(s *scenarioCtx) Incident {
	a := s.w.service("svc-payments")
	ds := s.w.dataset("billing", "payment_methods")
	s.share(a, 0, shareSpec{ds: ds, records: 1, partner: "payflux", country: "BE", channel: "api",
		purpose: "essential.service.payment_processing"})
	s.inc.Agreement = "DPA-2023-031"
	s.inc.Description = fmt.Sprintf("%s sent payment details to PayFlux B.V.'s Brussels data centre (%s, Belgium): allowed by agreement DPA-2023-031, but the first transfer of personal data to Belgium",
		who(a), s.inc.Domain)
	return s.inc
}

// queryThenShare: a Berlin data scientist queries 120,000 customer
// profiles from the feature store, then 25 minutes later sends 1,500 of
// them to Acme Analytics over SFTP (within its agreement).
func queryThenShare(s *scenarioCtx) Incident {
	a := s.w.pickEmployee(s.rng, "data_scientist", "Europe/Berlin")
	ds := s.w.dataset("feature-store", "user_features")
	s.access(a, 0, ds, "query", 120_000, "analytics.reporting", "legitimate_interests", "")
	s.share(a, 25*time.Minute, shareSpec{ds: ds, cats: []string{"user.unique_id", "user.behavior.browsing_history"}, records: 1500,
		partner: "acme-analytics", country: "DE", channel: "sftp", purpose: "analytics.reporting"})
	s.inc.Agreement = "DPA-2024-017"
	s.inc.Description = fmt.Sprintf("%s queried 120,000 customer profiles from %s/%s%s, then 25 minutes later sent 1,500 of them to Acme Analytics Ltd (%s); each step alone is allowed, the sequence is how data leaves",
		who(a), ds.system, ds.name, localClock(a, s.at), s.inc.Domain)
	return s.inc
}
