// Package partner is the registry of the third parties Custos knows: who
// they are, which domains they receive data on, whether they are approved,
// and which agreements cover what they may receive.
//
// It loads the registry from a YAML file, answers lookups by domain and by
// id on the hot path without allocating, and offers small coverage helpers
// (hierarchical data categories and uses, channels, countries, validity
// dates) for the rules that check shares against agreements. Judge gives
// the verdict on one share (one primary finding with a stable id such as
// agreement_category, the agreement and the uncovered values for the alert
// text), ClearText the clear-text channel finding, and partner tags
// (advertiser, data_broker, ...) feed the privacy-statement policy. It does
// not decide what is an alert or its severity: that is the rules package's
// job.
package partner

import (
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/custos-privacy/custos/ingest/event"
)

// Kind is the legal relationship with a partner.
type Kind string

// Partner kinds.
const (
	KindPartner   Kind = "partner"
	KindProcessor Kind = "processor"
	KindAffiliate Kind = "affiliate"
	KindAuthority Kind = "authority"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindPartner, KindProcessor, KindAffiliate, KindAuthority:
		return true
	}
	return false
}

// Status is where a partner stands with the privacy office.
type Status string

// Partner statuses. Only approved partners may receive personal data.
const (
	StatusApproved    Status = "approved"
	StatusUnderReview Status = "under_review"
	StatusSuspended   Status = "suspended"
	StatusRevoked     Status = "revoked"
)

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusApproved, StatusUnderReview, StatusSuspended, StatusRevoked:
		return true
	}
	return false
}

// Partner is one third party of the registry.
type Partner struct {
	// ID is the partner's unique id, as used in events' recipient.id.
	ID string
	// Name is the display name.
	Name string
	// Kind is partner, processor, affiliate or authority.
	Kind Kind
	// Status is approved, under_review, suspended or revoked.
	Status Status
	// Domains are the hosts the partner receives data on, lower case; each
	// also covers its subdomains.
	Domains []string
	// Tags say what sort of business the partner is (advertiser,
	// data_broker, ...), from the closed vocabulary of Tags; may be empty.
	Tags []Tag
	// RiskNotes is free text for the privacy office (e.g. past incidents).
	RiskNotes string
	// Agreements are the signed agreements with the partner.
	Agreements []Agreement
	// Line is the line of the partner's entry in its file (0 if unknown).
	Line int

	domainNodes []*yaml.Node // positions while parsing only
}

// Agreement is one signed agreement (e.g. a DPA) and what it covers.
type Agreement struct {
	// Ref is the reference of the signed document, e.g. "DPA-2024-017".
	Ref string
	// Categories are the data categories covered, hierarchically:
	// "user.contact" covers "user.contact.email". Never empty.
	Categories []string
	// Uses are the data uses (purposes) covered, hierarchically. Never
	// empty.
	Uses []string
	// Channels are the channels allowed; empty means any channel.
	Channels []event.ChannelKind
	// Countries are the ISO 3166-1 alpha-2 codes (upper case) the data may
	// go to; empty means any country.
	Countries []string
	// ValidFrom is the first day the agreement applies (midnight UTC).
	ValidFrom time.Time
	// ValidTo is the last day the agreement applies, inclusive (midnight
	// UTC of that day); zero means open-ended.
	ValidTo time.Time
}

// Covers reports whether the dotted term granted covers value, matching on
// dot boundaries: "user.contact" covers "user.contact" and
// "user.contact.email" but not "user.contactless".
func Covers(granted, value string) bool {
	if len(value) < len(granted) || value[:len(granted)] != granted {
		return false
	}
	return len(value) == len(granted) || value[len(granted)] == '.'
}

func coversAny(granted []string, value string) bool {
	for _, g := range granted {
		if Covers(g, value) {
			return true
		}
	}
	return false
}

// CoversCategory reports whether the agreement covers the data category.
func (a *Agreement) CoversCategory(category string) bool { return coversAny(a.Categories, category) }

// CoversUse reports whether the agreement covers the data use. An empty
// use (an event that declared no purpose) is never covered.
func (a *Agreement) CoversUse(use string) bool { return use != "" && coversAny(a.Uses, use) }

// CoversChannel reports whether the agreement allows the channel.
func (a *Agreement) CoversChannel(ch event.ChannelKind) bool {
	if len(a.Channels) == 0 {
		return true
	}
	for _, c := range a.Channels {
		if c == ch {
			return true
		}
	}
	return false
}

// CoversCountry reports whether the agreement allows the country
// (case-insensitive). An empty country is covered only when the agreement
// restricts no country.
func (a *Agreement) CoversCountry(country string) bool {
	if len(a.Countries) == 0 {
		return true
	}
	for _, c := range a.Countries {
		if strings.EqualFold(c, country) {
			return true
		}
	}
	return false
}

// ValidAt reports whether the agreement applies at t: from ValidFrom
// midnight UTC up to the end of ValidTo's day.
func (a *Agreement) ValidAt(t time.Time) bool {
	return a.validity(t) == 0
}

func (a *Agreement) validity(t time.Time) Gap {
	if t.Before(a.ValidFrom) {
		return GapNotYetValid
	}
	if !a.ValidTo.IsZero() && !t.Before(a.ValidTo.AddDate(0, 0, 1)) {
		return GapExpired
	}
	return 0
}

// Transfer is what a share moved, as the coverage check sees it.
type Transfer struct {
	// Categories are the data categories moved.
	Categories []string
	// Use is the declared data use (purpose).
	Use string
	// Channel is the channel used.
	Channel event.ChannelKind
	// Country is the recipient's country.
	Country string
	// Time is the event time.
	Time time.Time
}

// TransferOf extracts the Transfer of a share event.
func TransferOf(ev *event.Event) Transfer {
	return Transfer{
		Categories: ev.Data.Categories,
		Use:        ev.Purpose,
		Channel:    ev.Channel.Kind,
		Country:    ev.Recipient.Country,
		Time:       ev.Time,
	}
}

// Gap is a set of reasons why an agreement does not cover a transfer.
type Gap uint8

// Gaps; a zero Gap means covered.
const (
	GapCategory Gap = 1 << iota
	GapUse
	GapChannel
	GapCountry
	GapNotYetValid
	GapExpired
	GapNoAgreement
)

var gapNames = [...]string{"category", "use", "channel", "country", "not_yet_valid", "expired", "no_agreement"}

// Has reports whether g includes all of the gaps in o.
func (g Gap) Has(o Gap) bool { return g&o == o }

// String lists the gaps, e.g. "category,country"; "" when covered.
func (g Gap) String() string {
	var b strings.Builder
	for i, name := range gapNames {
		if g&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(name)
		}
	}
	return b.String()
}

// Check returns what of tr the agreement does not cover; 0 if it covers
// it all.
func (a *Agreement) Check(tr Transfer) Gap {
	g := a.validity(tr.Time)
	for _, c := range tr.Categories {
		if !a.CoversCategory(c) {
			g |= GapCategory
			break
		}
	}
	if !a.CoversUse(tr.Use) {
		g |= GapUse
	}
	if !a.CoversChannel(tr.Channel) {
		g |= GapChannel
	}
	if !a.CoversCountry(tr.Country) {
		g |= GapCountry
	}
	return g
}

// UncoveredCategories returns the categories of tr the agreement does not
// cover, in order (nil if all are covered).
func (a *Agreement) UncoveredCategories(categories []string) []string {
	var out []string
	for _, c := range categories {
		if !a.CoversCategory(c) {
			out = append(out, c)
		}
	}
	return out
}

// Check finds the partner's agreement that best covers tr: one that covers
// it fully if any, else the one with the fewest gaps (the first such in
// file order). Without agreements it returns nil and GapNoAgreement.
func (p *Partner) Check(tr Transfer) (*Agreement, Gap) {
	var best *Agreement
	bestGap, bestN := GapNoAgreement, 99
	for i := range p.Agreements {
		a := &p.Agreements[i]
		g := a.Check(tr)
		if g == 0 {
			return a, 0
		}
		if n := popcount(g); n < bestN {
			best, bestGap, bestN = a, g, n
		}
	}
	return best, bestGap
}

func popcount(g Gap) int {
	n := 0
	for ; g != 0; g &= g - 1 {
		n++
	}
	return n
}
