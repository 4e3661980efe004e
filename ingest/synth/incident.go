package synth

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// IncidentKind names a kind of injected incident.
type IncidentKind string

// Incident kinds the generator can inject. Each is produced by one scenario
// function listed in scenarios; adding a kind means writing that function
// and listing it.
const (
	// KindBulkExport: an employee exports or downloads far more records
	// within an hour than the bulk-export threshold (10,000).
	KindBulkExport IncidentKind = "bulk_export"
	// KindUnknownRecipient: an employee shares customer data to a domain
	// that no partner entry lists.
	KindUnknownRecipient IncidentKind = "unknown_recipient"

	// KindRecipientNotApproved: a share to a registered partner that is
	// suspended (variant 0) or revoked (variant 1).
	KindRecipientNotApproved IncidentKind = "recipient_not_approved"
	// KindAgreementCategory: a share to an approved partner of a data
	// category none of its agreements covers.
	KindAgreementCategory IncidentKind = "agreement_category"
	// KindAgreementUse: a share for a purpose the agreement does not cover.
	KindAgreementUse IncidentKind = "agreement_use"
	// KindAgreementChannel: a share over a channel the agreement does not
	// allow.
	KindAgreementChannel IncidentKind = "agreement_channel"
	// KindAgreementCountry: a share to a country the agreement does not
	// allow.
	KindAgreementCountry IncidentKind = "agreement_country"
	// KindAgreementExpired: a share to an approved partner whose only
	// agreement ended before the event.
	KindAgreementExpired IncidentKind = "agreement_expired"
	// KindAgreementNotYetValid: a share to an approved partner whose only
	// agreement starts after the event.
	KindAgreementNotYetValid IncidentKind = "agreement_not_yet_valid"
	// KindSubjectOptedOut: a share listing subjects who opted out of that
	// use earlier (subjects topic).
	KindSubjectOptedOut IncidentKind = "subject_opted_out"
	// KindSubjectClosed: a share listing a subject whose account was closed
	// earlier (subjects topic).
	KindSubjectClosed IncidentKind = "subject_closed"
	// KindCleartextChannel: personal data over a clear-text channel: an
	// unencrypted e-mail to the data subject who asked for it (variant 0),
	// an ftp upload to a processor (variant 1).
	KindCleartextChannel IncidentKind = "cleartext_channel"
	// KindPolicyViolation: a share that breaks a promise of the privacy
	// statement (Incident.Promise); variant i breaks Promises()[i].
	KindPolicyViolation IncidentKind = "policy_violation"
	// KindPartnerVolumeSpike: transfers to an approved partner, within its
	// agreement, far above the partner's usual volume.
	KindPartnerVolumeSpike IncidentKind = "partner_volume_spike"
	// KindExportBaseline: low-and-slow exfiltration: an employee exports
	// several times their usual daily volume in many small exports over
	// the working day, none of them, nor any hour, near the bulk threshold.
	KindExportBaseline IncidentKind = "export_baseline"
	// KindFirstSeenDataset: an employee's first export from a dataset they
	// never exported from before.
	KindFirstSeenDataset IncidentKind = "first_seen_dataset"
	// KindFirstSeenCategory: the first share of a data category to a
	// recipient (within its agreement).
	KindFirstSeenCategory IncidentKind = "first_seen_category"
	// KindFirstSeenCountry: the first share to a country (within the
	// agreement).
	KindFirstSeenCountry IncidentKind = "first_seen_country"
	// KindQueryThenShare: a bulk query, then within the hour a share to an
	// external domain by the same actor.
	KindQueryThenShare IncidentKind = "query_then_share"
)

// Ids of the privacy-statement promises the policy_violation incidents
// break, as in deploy/demo/policy.yml.
const (
	// PromiseNoSale: "We never sell personal data." (no share for a
	// purpose under marketing.sale).
	PromiseNoSale = "no-sale-of-personal-data"
	// PromiseNoPreciseLocationToAdvertisers: "Precise location is never
	// shared with advertisers." (user.location.precise to adnexa,
	// clickharbor or leadmagnet-data).
	PromiseNoPreciseLocationToAdvertisers = "no-precise-location-to-advertisers"
	// PromiseHealthOnlyToProcessors: "Health data leaves only to
	// processors under an agreement." (user.health_and_medical shared with
	// a recipient that is not a processor whose agreement covers it; the
	// data subject excepted).
	PromiseHealthOnlyToProcessors = "health-data-only-to-processors"
	// PromiseNoChildrenData: "Children's data is never shared with third
	// parties." (subject kind child in a share to a third party).
	PromiseNoChildrenData = "no-children-data-to-third-parties"
)

// Promises returns the promise ids, in the order of the policy_violation
// variants.
func Promises() []string {
	return []string{PromiseNoSale, PromiseNoPreciseLocationToAdvertisers, PromiseHealthOnlyToProcessors, PromiseNoChildrenData}
}

// Advertisers are the partners the demo policy counts as advertisers.
var Advertisers = []string{"adnexa", "clickharbor", "leadmagnet-data"}

// Incident is the ground truth of one injected incident: the events that
// make it up and what a rule should say about it.
type Incident struct {
	// Kind is the kind of incident, e.g. "bulk_export".
	Kind IncidentKind
	// Actor is the actor id of the events (their Kafka key).
	Actor string
	// EventIDs are the event_id of every event of the incident.
	EventIDs []string
	// Start and End are the event times of its first and last event.
	Start, End time.Time
	// Records is the total of data.records over its events.
	Records int64
	// Domain is the recipient domain, for share incidents.
	Domain string
	// Description says what happened, for people.
	Description string
	// Partner is the registry id of the recipient, for shares to a
	// registered partner.
	Partner string
	// Agreement is the reference of the agreement involved, if any.
	Agreement string
	// Promise is the id of the privacy-statement promise broken, for
	// policy_violation incidents.
	Promise string
	// Subjects are the raw ids of the subjects whose earlier status (opted
	// out, closed) the share ignores, for subject_* incidents.
	Subjects []string
	// Also lists other rules that may rightly fire on the same events
	// (e.g. first_seen_category for any share to a recipient never used
	// before); Kind is the rule that must.
	Also []IncidentKind
}

// IncidentSpec places one incident in the stream.
type IncidentSpec struct {
	// Kind is the incident kind; it must be one the generator knows.
	Kind IncidentKind
	// At is the offset from Config.Start of the incident's first event.
	At time.Duration
	// Variant picks one of the kind's variants (0, 1, ...); variants
	// differ in actor, system, volume and recipient.
	Variant int
}

// DefaultIncidentPlan returns the incidents injected by default: two bulk
// exports (an analyst at night, a support agent in working hours) and two
// shares to unknown domains, all within the first simulated day.
func DefaultIncidentPlan() []IncidentSpec {
	return []IncidentSpec{
		{Kind: KindBulkExport, At: 21*time.Hour + 40*time.Minute, Variant: 0},
		{Kind: KindUnknownRecipient, At: 14*time.Hour + 20*time.Minute, Variant: 0},
		{Kind: KindBulkExport, At: 11*time.Hour + 5*time.Minute, Variant: 1},
		{Kind: KindUnknownRecipient, At: 16*time.Hour + 45*time.Minute, Variant: 1},
	}
}

// scenario builds the events of one incident kind through s and returns
// its ground truth.
type scenario func(s *scenarioCtx) Incident

// scenarios lists the incident kinds the generator can inject.
var scenarios = map[IncidentKind]scenario{
	KindBulkExport:           bulkExport,
	KindUnknownRecipient:     unknownRecipient,
	KindRecipientNotApproved: recipientNotApproved,
	KindAgreementCategory:    agreementCategory,
	KindAgreementUse:         agreementUse,
	KindAgreementChannel:     agreementChannel,
	KindAgreementCountry:     agreementCountry,
	KindAgreementExpired:     agreementExpired,
	KindAgreementNotYetValid: agreementNotYetValid,
	KindSubjectOptedOut:      subjectOptedOut,
	KindSubjectClosed:        subjectClosed,
	KindCleartextChannel:     cleartextChannel,
	KindPolicyViolation:      policyViolation,
	KindPartnerVolumeSpike:   partnerVolumeSpike,
	KindExportBaseline:       exportBaseline,
	KindFirstSeenDataset:     firstSeenDataset,
	KindFirstSeenCategory:    firstSeenCategory,
	KindFirstSeenCountry:     firstSeenCountry,
	KindQueryThenShare:       queryThenShare,
}

// scenarioChecks are preconditions of the scenarios that depend on the
// date: they report why the kind cannot happen at that time.
var scenarioChecks = map[IncidentKind]func(at time.Time) error{
	KindAgreementExpired:     func(at time.Time) error { return checkAgreements(expiredPartner, at, true) },
	KindAgreementNotYetValid: func(at time.Time) error { return checkAgreements(futurePartner, at, false) },
}

// scenarioCtx is what a scenario function works with.
type scenarioCtx struct {
	w        *world
	bg       *background
	cfg      Config
	rng      *rand.Rand
	at       time.Time
	spec     IncidentSpec
	index    int
	out      *[]*ev
	statuses *[]SubjectMessage
	inc      Incident
}

// newEvent returns a fresh event of the incident at offset d from its
// start, by actor a, with an event id; the caller fills in the rest.
func (s *scenarioCtx) newEvent(a *actor, d time.Duration) *ev {
	e := &ev{
		t:       s.at.Add(d).UnixNano(),
		actor:   a,
		records: -1,
		reqID:   s.rng.Uint64(),
		session: sessionID(s.w.seed, a, s.at.Add(d).UnixNano()),
		client:  true,
		schema:  true,
	}
	e.idHi, e.idLo = specialID(s.w.seed, len(*s.out))
	*s.out = append(*s.out, e)
	return e
}

// record adds e to the incident's ground truth.
func (s *scenarioCtx) record(e *ev) {
	s.inc.EventIDs = append(s.inc.EventIDs, string(appendUUID(nil, e.idHi, e.idLo)))
	t := time.Unix(0, e.t).UTC()
	if s.inc.Start.IsZero() || t.Before(s.inc.Start) {
		s.inc.Start = t
	}
	if t.After(s.inc.End) {
		s.inc.End = t
	}
	if e.records > 0 {
		s.inc.Records += e.records
	}
}

// inject runs the scenario of spec and returns its ground truth; events go
// to out, subject statuses to statuses.
func (w *world) inject(c Config, bg *background, index int, spec IncidentSpec, out *[]*ev, statuses *[]SubjectMessage) Incident {
	s := &scenarioCtx{
		w:        w,
		bg:       bg,
		cfg:      c,
		rng:      rand.New(rand.NewPCG(uint64(c.Seed), 0x1c1de47+uint64(index))),
		at:       c.Start.Add(spec.At),
		spec:     spec,
		index:    index,
		out:      out,
		statuses: statuses,
	}
	inc := scenarios[spec.Kind](s)
	inc.Kind = spec.Kind
	return inc
}

// bulkExport: variant 0, an analyst in Berlin exports 60,000 customer
// records from the warehouse in four exports within 25 minutes, late in the
// evening; variant 1, a support agent in London downloads 28,000 customer
// records from the support desk in seven downloads within 35 minutes.
func bulkExport(s *scenarioCtx) Incident {
	type step struct {
		d       time.Duration
		records int64
	}
	var (
		a       *actor
		ds      *dataset
		action  string
		purpose string
		steps   []step
	)
	if s.spec.Variant%2 == 0 {
		a = s.w.pickEmployee(s.rng, "analyst", "Europe/Berlin")
		ds = s.w.dataset("dwh", "customers_dim")
		action = "export"
		purpose = "analytics.reporting"
		steps = []step{{0, 15000}, {11 * time.Minute, 15000}, {17 * time.Minute, 15000}, {25 * time.Minute, 15000}}
	} else {
		a = s.w.pickEmployee(s.rng, "support_agent", "Europe/London")
		ds = s.w.dataset("support-desk", "customers")
		action = "download"
		purpose = "essential.service.operations.support"
		for i := range 7 {
			steps = append(steps, step{time.Duration(i) * 5 * time.Minute, 4000})
		}
	}
	s.inc.Actor = a.id
	for _, st := range steps {
		e := s.newEvent(a, st.d)
		e.typ = "access"
		e.action = action
		e.ds = ds
		e.cats = ds.cats
		e.records = st.records
		e.bytes = st.records * ds.recBytes
		e.skind = ds.skind
		e.nSubj = 5
		for i := range e.nSubj {
			e.subj[i] = int32(s.rng.IntN(s.w.customers))
		}
		e.purpose = purpose
		e.legal = "legitimate_interests"
		s.record(e)
	}
	s.also(KindExportBaseline)
	if s.spec.Variant%2 != 0 {
		s.also(KindFirstSeenDataset) // agents export tickets, never customers
	}
	s.inc.Description = fmt.Sprintf("%s (%s, %s) %ss %d %s records from %s/%s in %d events within %s, at %s local time",
		a.id, a.role.name, a.loc.name, action, s.inc.Records, ds.skind, ds.system, ds.name, len(steps),
		s.inc.End.Sub(s.inc.Start).Round(time.Minute), s.inc.Start.Add(time.Duration(a.loc.offset)*time.Hour).Format("15:04"))
	return s.inc
}

// unknownRecipient: variant 0, a sales account executive uploads 1,850
// customer contacts from the CRM to a file-transfer site
// (dropfiles-xfer.net) over https; variant 1, a campaign specialist sends
// 3,200 prospects to a lead-enrichment service (leadgen-boost.io) over its
// API for third-party advertising. Neither domain is in the registry.
func unknownRecipient(s *scenarioCtx) Incident {
	var (
		a                      *actor
		ds                     *dataset
		records                int64
		domain, country, chann string
		purpose, name          string
		cats                   []string
	)
	if s.spec.Variant%2 == 0 {
		a = s.w.pickEmployee(s.rng, "account_executive", "")
		ds = s.w.dataset("crm", "contacts")
		records, domain, country, chann = 1850, "dropfiles-xfer.net", "US", "https"
		purpose = "sales.prospecting"
		cats = []string{"user.name", "user.contact.email", "user.contact.phone_number"}
	} else {
		a = s.w.pickEmployee(s.rng, "campaign_specialist", "")
		ds = s.w.dataset("marketing-automation", "audiences")
		records, domain, country, chann = 3200, "leadgen-boost.io", "SG", "api"
		purpose = "marketing.advertising.third_party"
		name = "LeadGen Boost"
		cats = []string{"user.contact.email", "user.demographic.age_range", "user.behavior.purchase_history"}
	}
	s.inc.Actor = a.id
	s.inc.Domain = domain
	e := s.newEvent(a, 0)
	e.typ = "share"
	e.action = "transfer"
	e.ds = ds
	e.cats = cats
	e.records = records
	e.bytes = records * 180
	e.skind = ds.skind
	e.nSubj = 5
	for i := range e.nSubj {
		e.subj[i] = int32(s.rng.IntN(s.w.customers))
	}
	e.rDomain, e.rCountry, e.rKind, e.rName = domain, country, "unknown", name
	e.chKind, e.enc = chann, 1
	e.purpose = purpose
	e.legal = "legitimate_interests"
	s.record(e)
	// Marketing and sales staff query large audiences as part of their job:
	// such a query in the hour before this share rightly makes it a
	// query-then-share sequence too.
	s.also(KindFirstSeenCategory, KindQueryThenShare)
	// Normal traffic sends nothing to a third party in the US or in
	// Singapore (US shares go to processors and data subjects only): the
	// share is the first of personal data to that country. Which of the
	// day's first shares to a country carries the alert depends on the
	// order they reach the group's owner, so each may.
	s.also(KindFirstSeenCountry)
	if country == "SG" {
		s.also(KindPolicyViolation) // outside the EEA and adequate countries
	}
	s.inc.Description = fmt.Sprintf("%s (%s) sent %d %s records from %s/%s to %s over %s; no partner in the registry lists that domain",
		a.id, a.role.name, records, ds.skind, ds.system, ds.name, domain, chann)
	return s.inc
}
