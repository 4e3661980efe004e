package synth

import (
	"fmt"
	"strings"
	"time"
)

// Partners the date-dependent scenarios rely on.
const (
	expiredPartner = "brightcall" // its only agreement ended 2025-12-31
	futurePartner  = "linguaflow" // its only agreement starts 2027-07-01
)

// checkAgreements reports whether every agreement of the partner has ended
// (expired true) or not yet begun at t.
func checkAgreements(id string, t time.Time, expired bool) error {
	for _, p := range partnerSpecs {
		if p.ID != id {
			continue
		}
		for _, a := range p.Agreements {
			switch {
			case expired && a.covers(t) || expired && t.Before(a.ValidFrom.Time):
				return fmt.Errorf("partner %s's agreement %s (%s to %s) is not over on %s", id, a.Ref, a.ValidFrom, a.ValidTo, t.Format(time.DateOnly))
			case !expired && !t.Before(a.ValidFrom.Time):
				return fmt.Errorf("partner %s's agreement %s (%s to %s) has begun by %s", id, a.Ref, a.ValidFrom, a.ValidTo, t.Format(time.DateOnly))
			}
		}
		return nil
	}
	return fmt.Errorf("no partner %s in the registry", id)
}

// shareSpec is one share of an incident.
type shareSpec struct {
	ds      *dataset
	cats    []string // default: the dataset's
	records int64
	partner string // registry id; "" for none
	domain  string // default: the partner's domain for the channel
	country string
	kind    string // default: the partner's kind
	channel string
	clear   bool // encrypted:false
	purpose string
	legal   string // default: by recipient kind
	ticket  string
	// subjects are listed first, then random ones up to min(records, 5).
	subjects []int32
}

// share adds a share event by a at offset d and returns it.
func (s *scenarioCtx) share(a *actor, d time.Duration, sp shareSpec) *ev {
	e := s.newEvent(a, d)
	e.typ, e.action = "share", "transfer"
	e.ds, e.skind = sp.ds, sp.ds.skind
	e.cats = sp.cats
	if e.cats == nil {
		e.catJSON = sp.ds.catJSON[0]
	}
	e.records, e.bytes = sp.records, sp.records*sp.ds.recBytes
	s.subjects(e, sp.subjects)
	kind := sp.kind
	if sp.partner != "" {
		p := s.w.partners[sp.partner]
		e.rID, e.rName = p.ID, p.Name
		if kind == "" {
			kind = p.Kind
		}
		if sp.domain == "" {
			sp.domain = channelDomain(&p.Partner, sp.channel)
		}
		s.inc.Partner = p.ID
	}
	e.rDomain, e.rCountry, e.rKind = sp.domain, sp.country, kind
	e.chKind, e.enc = sp.channel, 1
	if sp.clear {
		e.enc = 0
	}
	e.purpose, e.legal = sp.purpose, sp.legal
	if e.legal == "" {
		e.legal = legalBasisFor(kind)
	}
	if sp.ticket != "" {
		e.ticket, e.ticketNo = sp.ticket, 100000+s.rng.IntN(400000)
	}
	s.finish(e)
	s.inc.Domain = sp.domain
	return e
}

// access adds an access event by a at offset d and returns it.
func (s *scenarioCtx) access(a *actor, d time.Duration, ds *dataset, action string, records int64, purpose, legal, ticket string) *ev {
	e := s.newEvent(a, d)
	e.typ, e.action = "access", action
	e.ds, e.skind, e.catJSON = ds, ds.skind, ds.catJSON[0]
	e.records = records
	if action == "export" || action == "download" {
		e.bytes = records * ds.recBytes
	}
	s.subjects(e, nil)
	e.purpose, e.legal = purpose, legal
	if ticket != "" {
		e.ticket, e.ticketNo = ticket, 100000+s.rng.IntN(400000)
	}
	s.finish(e)
	return e
}

// subjects lists the given subjects, then random ones of the dataset's
// population, up to min(records, maxSubjects).
func (s *scenarioCtx) subjects(e *ev, given []int32) {
	n := int(min(e.records, maxSubjects))
	n = max(n, len(given))
	copy(e.subj[:], given)
	for i := len(given); i < n; i++ {
		e.subj[i] = int32(s.rng.IntN(e.ds.nSubj))
	}
	e.nSubj, e.trunc = n, e.records > int64(n)
}

// finish sets what every incident event has and records it.
func (s *scenarioCtx) finish(e *ev) {
	e.outcome = "success"
	if e.actor.service {
		e.session, e.client = 0, false
	}
	s.inc.Actor = e.actor.id
	s.record(e)
}

// reservedSubject is the i-th customer id reserved for the incident: above
// the population normal traffic draws from and above the range of the
// background's subject statuses.
func (s *scenarioCtx) reservedSubject(i int) int32 {
	return int32(s.w.customers + 100_000 + 16*s.index + i)
}

// status adds a subject status message for customer id at t.
func (s *scenarioCtx) status(id int32, t time.Time, status, uses string) string {
	key := appendSubject(nil, "cust-", id)
	key = key[1 : len(key)-1]
	v := []byte(`{"subject":"`)
	v = append(v, key...)
	v = append(v, `","time":"`...)
	v = appendTime(v, t.UnixNano())
	v = append(v, `","status":"`+status+`","uses":`+uses+`}`...)
	*s.statuses = append(*s.statuses, SubjectMessage{Time: t, Key: key, Value: v})
	s.inc.Subjects = append(s.inc.Subjects, string(key))
	return string(key)
}

// before returns the time back before the incident, but not before the
// start of the stream (then halfway between the start and the incident),
// in whole milliseconds.
func (s *scenarioCtx) before(back time.Duration) time.Time {
	t := s.at.Add(-back)
	if t.Before(s.cfg.Start) {
		t = s.cfg.Start.Add(s.at.Sub(s.cfg.Start) / 2)
	}
	return t.Truncate(time.Millisecond)
}

// also notes rules that may rightly fire too.
func (s *scenarioCtx) also(k ...IncidentKind) { s.inc.Also = append(s.inc.Also, k...) }

// who names an actor for a description: "anna.keller (support agent,
// Europe/London)" or "svc-payments".
func who(a *actor) string {
	if a.service {
		return a.id
	}
	return fmt.Sprintf("%s (%s, %s)", a.id, strings.ReplaceAll(a.role.name, "_", " "), a.loc.name)
}

// localClock is the time of t in a's office, for employees ("" for
// services).
func localClock(a *actor, t time.Time) string {
	if a.service {
		return ""
	}
	return " at " + t.Add(time.Duration(a.loc.offset)*time.Hour).Format("15:04") + " local time"
}

// recipientNotApproved: variant 0, the ad-audience sync sends 2,400
// purchase histories to ClickHarbor, suspended since 2025-10, although its
// agreement would cover them; variant 1, a campaign specialist uploads
// 900 customer e-mail addresses to LeadMagnet Data, revoked after it
// resold customer lists.
func recipientNotApproved(s *scenarioCtx) Incident {
	if s.spec.Variant%2 == 0 {
		a := s.w.service("svc-ads-audience-sync")
		ds := s.w.dataset("marketing-automation", "audiences")
		s.share(a, 0, shareSpec{ds: ds, cats: []string{"user.behavior.purchase_history"}, records: 2400, partner: "clickharbor",
			country: "IE", channel: "api", purpose: "marketing.advertising.third_party", legal: "consent"})
		s.inc.Agreement = "JCA-2024-010"
		s.also(KindFirstSeenCategory)
		s.inc.Description = fmt.Sprintf("%s sent 2,400 customers' purchase histories from %s/%s to ClickHarbor Media Ltd (%s), a partner suspended since October 2025 after an audit found an unannounced sub-processor outside the EEA; its agreement JCA-2024-010 would otherwise cover the transfer",
			who(a), ds.system, ds.name, s.inc.Domain)
		return s.inc
	}
	a := s.w.pickEmployee(s.rng, "campaign_specialist", "")
	ds := s.w.dataset("marketing-automation", "audiences")
	s.share(a, 0, shareSpec{ds: ds, cats: []string{"user.contact.email"}, records: 900, partner: "leadmagnet-data",
		country: "US", channel: "sftp", purpose: "marketing.advertising.third_party", legal: "consent", ticket: "MKT-"})
	s.inc.Agreement = "DSA-2023-022"
	s.also(KindAgreementExpired, KindFirstSeenCategory, KindPolicyViolation) // a data broker
	s.inc.Description = fmt.Sprintf("%s uploaded 900 customer e-mail addresses from %s/%s to LeadMagnet Data Solutions (%s)%s; the partner is revoked since it resold customer lists to data brokers (INC-2024-117) and its agreement ended on 2024-11-30",
		who(a), ds.system, ds.name, s.inc.Domain, localClock(a, s.at))
	return s.inc
}

// agreementCategory: after a tracking change in the telehealth app, the
// analytics collector sends symptom-checker answers (health data) with
// the usage events to Acme Analytics, whose agreement covers usage data
// only.
func agreementCategory(s *scenarioCtx) Incident {
	a := s.w.service("svc-analytics-collector")
	ds := s.w.dataset("analytics", "events")
	s.share(a, 0, shareSpec{ds: ds, cats: []string{"user.unique_id", "user.behavior.browsing_history", "user.health_and_medical"},
		records: 320, partner: "acme-analytics", country: "DE", channel: "api", purpose: "analytics.reporting"})
	s.inc.Agreement = "DPA-2024-017"
	s.also(KindFirstSeenCategory, KindPolicyViolation)
	s.inc.Description = fmt.Sprintf("%s sent 320 usage events to Acme Analytics Ltd (%s) that include health data (user.health_and_medical, symptom-checker answers); agreement DPA-2024-017 covers ids, behaviour and device data only",
		who(a), s.inc.Domain)
	return s.inc
}

// agreementUse: the analytics collector sends usage events to Acme
// Analytics for building look-alike advertising audiences; the agreement
// covers analytics.reporting only.
func agreementUse(s *scenarioCtx) Incident {
	a := s.w.service("svc-analytics-collector")
	ds := s.w.dataset("analytics", "events")
	s.share(a, 0, shareSpec{ds: ds, records: 280, partner: "acme-analytics", country: "IE", channel: "api",
		purpose: "marketing.advertising.third_party", legal: "consent"})
	s.inc.Agreement = "DPA-2024-017"
	s.inc.Description = fmt.Sprintf("%s sent 280 usage events to Acme Analytics Ltd (%s) for third-party advertising (look-alike audiences); agreement DPA-2024-017 covers analytics.reporting only",
		who(a), s.inc.Domain)
	return s.inc
}

// agreementChannel: an HR partner e-mails the payroll file to PayrollPro,
// whose agreement allows SFTP only (the e-mail is TLS-encrypted, so only
// the channel is wrong).
func agreementChannel(s *scenarioCtx) Incident {
	a := s.w.pickEmployee(s.rng, "hr_partner", "")
	ds := s.w.dataset("hr", "payroll")
	s.share(a, 0, shareSpec{ds: ds, records: 38, partner: "payrollpro", country: "DE", channel: "email",
		purpose: "employment.payroll"})
	s.inc.Agreement = "DPA-2021-019"
	s.inc.Description = fmt.Sprintf("%s e-mailed the payroll data of 38 employees (names, bank accounts, national ids) to PayrollPro Services GmbH (%s)%s; agreement DPA-2021-019 allows SFTP only",
		who(a), s.inc.Domain, localClock(a, s.at))
	return s.inc
}

// agreementCountry: the analytics collector sends usage events to Acme
// Analytics' US endpoint; the agreement allows Germany and Ireland only.
func agreementCountry(s *scenarioCtx) Incident {
	a := s.w.service("svc-analytics-collector")
	ds := s.w.dataset("analytics", "events")
	s.share(a, 0, shareSpec{ds: ds, records: 350, partner: "acme-analytics", domain: "api.us.acme-analytics.com",
		country: "US", channel: "api", purpose: "analytics.reporting"})
	s.inc.Agreement = "DPA-2024-017"
	s.inc.Description = fmt.Sprintf("%s sent 350 usage events to Acme Analytics Ltd's US endpoint (%s); agreement DPA-2024-017 allows transfers to Germany and Ireland only",
		who(a), s.inc.Domain)
	return s.inc
}

// agreementExpired: a support lead sends 600 customer contacts to the
// overflow call centre BrightCall, whose only agreement ended 2025-12-31.
func agreementExpired(s *scenarioCtx) Incident {
	a := s.w.pickEmployee(s.rng, "support_lead", "")
	ds := s.w.dataset("support-desk", "customers")
	s.share(a, 0, shareSpec{ds: ds, cats: []string{"user.name", "user.contact.email", "user.contact.phone_number"}, records: 600,
		partner: expiredPartner, country: "PT", channel: "sftp", purpose: "essential.service.operations.support", ticket: "CS-"})
	s.inc.Agreement = "DPA-2022-008"
	s.also(KindFirstSeenCategory, KindFirstSeenCountry) // nothing went to Portugal while the agreement was expired
	s.inc.Description = fmt.Sprintf("%s sent 600 customer contacts from %s/%s to the overflow call centre BrightCall Contact Services (%s)%s; its only agreement, DPA-2022-008, ended on 2025-12-31 and the renewal is not signed",
		who(a), ds.system, ds.name, s.inc.Domain, localClock(a, s.at))
	return s.inc
}

// agreementNotYetValid: a support agent sends 12 tickets to the
// translation service LinguaFlow, whose agreement only starts 2027-07-01.
func agreementNotYetValid(s *scenarioCtx) Incident {
	a := s.w.pickEmployee(s.rng, "support_agent", "Europe/Berlin")
	ds := s.w.dataset("support-desk", "tickets")
	s.share(a, 0, shareSpec{ds: ds, cats: []string{"user.name", "user.contact.email", "user.account.username"}, records: 12,
		partner: futurePartner, country: "DE", channel: "https", purpose: "essential.service.operations.support", ticket: "CS-"})
	s.inc.Agreement = "DPA-2026-044"
	s.also(KindFirstSeenCategory)
	s.inc.Description = fmt.Sprintf("%s sent 12 support tickets to the translation service LinguaFlow (%s)%s; its agreement DPA-2026-044 is signed but applies only from 2027-07-01",
		who(a), s.inc.Domain, localClock(a, s.at))
	return s.inc
}

// subjectOptedOut: the ad-audience sync sends an audience of 180 customers
// to Adnexa; 3 of the 5 subjects it lists opted out of third-party
// advertising in the days before.
func subjectOptedOut(s *scenarioCtx) Incident {
	a := s.w.service("svc-ads-audience-sync")
	ds := s.w.dataset("marketing-automation", "audiences")
	var ids []int32
	var when []string
	for i, back := range []time.Duration{50 * time.Hour, 29 * time.Hour, 7 * time.Hour} {
		id := s.reservedSubject(i)
		t := s.before(back)
		s.status(id, t, "opted_out", `["marketing.advertising.third_party"]`)
		ids = append(ids, id)
		when = append(when, t.Format("Jan 2 15:04"))
	}
	s.share(a, 0, shareSpec{ds: ds, records: 180, partner: "adnexa", country: "DE", channel: "api",
		purpose: "marketing.advertising.third_party", legal: "consent", subjects: ids})
	s.inc.Agreement = "JCA-2025-006"
	s.inc.Description = fmt.Sprintf("%s sent an audience of 180 customers to Adnexa Advertising GmbH (%s) for third-party advertising; 3 of the 5 subjects it lists (%s) had opted out of third-party advertising earlier (%s UTC)",
		who(a), s.inc.Domain, strings.Join(s.inc.Subjects, ", "), strings.Join(when, ", "))
	return s.inc
}

// subjectClosed: the payments service sends the payment details of a
// customer whose account was closed three days earlier to PayFlux.
func subjectClosed(s *scenarioCtx) Incident {
	a := s.w.service("svc-payments")
	ds := s.w.dataset("billing", "payment_methods")
	id := s.reservedSubject(0)
	t := s.before(70 * time.Hour)
	s.status(id, t, "closed", `[]`)
	s.share(a, 0, shareSpec{ds: ds, records: 1, partner: "payflux", country: "NL", channel: "api",
		purpose: "essential.service.payment_processing", subjects: []int32{id}})
	s.inc.Agreement = "DPA-2023-031"
	s.inc.Description = fmt.Sprintf("%s sent the payment details of %s to PayFlux B.V. (%s) for a payment retry, although the customer closed their account on %s UTC",
		who(a), s.inc.Subjects[0], s.inc.Domain, t.Format("Jan 2 15:04"))
	return s.inc
}

// cleartextChannel: variant 0, a privacy officer answers a data-access
// request by e-mailing the customer their data unencrypted, because the
// customer asked for a plain e-mail; variant 1, a care coordinator uploads
// 40 lab results to Helix Labs over plain ftp.
func cleartextChannel(s *scenarioCtx) Incident {
	if s.spec.Variant%2 == 0 {
		a := s.w.pickEmployee(s.rng, "privacy_officer", "")
		ds := s.w.dataset("app-db", "users")
		s.share(a, 0, shareSpec{ds: ds, records: 1, domain: "gmail.com", country: "DE", kind: "data_subject", channel: "email",
			clear: true, purpose: "legal.compliance", legal: "legal_obligation", ticket: "DSR-"})
		s.also(KindPolicyViolation) // a statement promising encrypted channels
		s.inc.Description = fmt.Sprintf("%s e-mailed a customer their personal data (answer to an access request) without encryption%s, because the customer asked for a plain e-mail; clear-text e-mail is never allowed for personal data",
			who(a), localClock(a, s.at))
		return s.inc
	}
	a := s.w.pickEmployee(s.rng, "care_coordinator", "")
	ds := s.w.dataset("care-portal", "lab_results")
	s.share(a, 0, shareSpec{ds: ds, records: 40, partner: "helix-labs", country: "DE", channel: "ftp", clear: true,
		purpose: "essential.service"})
	s.inc.Agreement = "DPA-2023-012"
	s.also(KindAgreementChannel, KindPolicyViolation)
	s.inc.Description = fmt.Sprintf("%s uploaded 40 patients' lab results (health data) to Helix Labordiagnostik (%s) over plain, unencrypted ftp%s; agreement DPA-2023-012 requires SFTP",
		who(a), s.inc.Domain, localClock(a, s.at))
	return s.inc
}

// policyViolation breaks the promise Promises()[variant]: 0, an account
// executive sells 1,200 customer e-mail addresses to Adnexa (purpose
// marketing.sale); 1, the ad-audience sync sends precise locations to
// Adnexa (which its agreement, but not the privacy statement, allows); 2,
// a care coordinator sends lab results to the UK affiliate, which is not a
// processor; 3, the ad-audience sync sends children's profiles from
// family plans to Adnexa.
func policyViolation(s *scenarioCtx) Incident {
	v := s.spec.Variant % len(Promises())
	s.inc.Promise = Promises()[v]
	switch v {
	case 0:
		a := s.w.pickEmployee(s.rng, "account_executive", "")
		ds := s.w.dataset("crm", "contacts")
		s.share(a, 0, shareSpec{ds: ds, cats: []string{"user.contact.email"}, records: 1200, partner: "adnexa", country: "DE",
			channel: "api", purpose: "marketing.sale", legal: "consent"})
		s.inc.Agreement = "JCA-2025-006"
		s.also(KindAgreementUse)
		s.inc.Description = fmt.Sprintf(`%s sold 1,200 customer e-mail addresses from %s/%s to Adnexa Advertising GmbH (%s, purpose marketing.sale)%s; the privacy statement promises "We never sell personal data."`,
			who(a), ds.system, ds.name, s.inc.Domain, localClock(a, s.at))
	case 1:
		a := s.w.service("svc-ads-audience-sync")
		ds := s.w.dataset("app-db", "locations")
		s.share(a, 0, shareSpec{ds: ds, records: 250, partner: "adnexa", country: "DE", channel: "api",
			purpose: "marketing.advertising.third_party", legal: "consent"})
		s.inc.Agreement = "JCA-2025-006"
		s.also(KindFirstSeenCategory, KindFirstSeenDataset)
		s.inc.Description = fmt.Sprintf(`%s sent 250 customers' precise locations (user.location.precise) to the advertiser Adnexa Advertising GmbH (%s); its agreement JCA-2025-006 lists the category, but the privacy statement promises "Precise location is never shared with advertisers."`,
			who(a), s.inc.Domain)
	case 2:
		a := s.w.pickEmployee(s.rng, "care_coordinator", "")
		ds := s.w.dataset("care-portal", "lab_results")
		s.share(a, 0, shareSpec{ds: ds, records: 35, partner: "northwind-group-uk", country: "GB", channel: "api",
			purpose: "essential.service"})
		s.inc.Agreement = "IGA-2023-001"
		s.also(KindAgreementCategory, KindFirstSeenCategory)
		s.inc.Description = fmt.Sprintf(`%s sent 35 patients' lab results (health data) to the UK affiliate Northwind Health UK Ltd (%s)%s; it is not a processor and its agreement does not cover health data, and the privacy statement promises "Health data leaves only to processors under an agreement."`,
			who(a), s.inc.Domain, localClock(a, s.at))
	default:
		a := s.w.service("svc-ads-audience-sync")
		ds := s.w.dataset("app-db", "family_members")
		s.share(a, 0, shareSpec{ds: ds, cats: []string{"user.unique_id", "user.demographic.age_range"}, records: 90, partner: "adnexa",
			country: "DE", channel: "api", purpose: "marketing.advertising.third_party", legal: "consent"})
		s.inc.Agreement = "JCA-2025-006"
		s.also(KindFirstSeenDataset)
		s.inc.Description = fmt.Sprintf(`%s sent 90 children's profiles (ids and age ranges from family plans, subject kind child) to Adnexa Advertising GmbH (%s) for advertising; the privacy statement promises "Children's data is never shared with third parties."`,
			who(a), s.inc.Domain)
	}
	return s.inc
}
