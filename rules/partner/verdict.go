package partner

import (
	"fmt"
	"strings"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// Finding is the stable rule id of a built-in third-party detection.
type Finding string

// Findings of Judge, in the order they take precedence, then the
// clear-text channel finding of ClearText.
const (
	// FindingUnknownRecipient: the recipient matches no partner.
	FindingUnknownRecipient Finding = "unknown_recipient"
	// FindingRecipientNotApproved: the partner is under review, suspended
	// or revoked.
	FindingRecipientNotApproved Finding = "recipient_not_approved"
	// FindingNoAgreement: the partner has no agreement at all.
	FindingNoAgreement Finding = "no_agreement"
	// FindingAgreementExpired: the closest agreement ended before the share.
	FindingAgreementExpired Finding = "agreement_expired"
	// FindingAgreementNotYetValid: the closest agreement starts after the
	// share.
	FindingAgreementNotYetValid Finding = "agreement_not_yet_valid"
	// FindingAgreementCategory: a data category is not covered.
	FindingAgreementCategory Finding = "agreement_category"
	// FindingAgreementUse: the data use (purpose) is not covered.
	FindingAgreementUse Finding = "agreement_use"
	// FindingAgreementChannel: the channel is not allowed.
	FindingAgreementChannel Finding = "agreement_channel"
	// FindingAgreementCountry: the recipient's country is not allowed.
	FindingAgreementCountry Finding = "agreement_country"
	// FindingCleartextChannel: personal data went over unencrypted e-mail,
	// ftp or http (see ClearText).
	FindingCleartextChannel Finding = "cleartext_channel"
)

// Findings lists every finding, for rule listings and documentation.
var Findings = []Finding{
	FindingUnknownRecipient, FindingRecipientNotApproved, FindingNoAgreement,
	FindingAgreementExpired, FindingAgreementNotYetValid, FindingAgreementCategory,
	FindingAgreementUse, FindingAgreementChannel, FindingAgreementCountry,
	FindingCleartextChannel,
}

// Verdict is the registry's judgement of one share: either fine (Finding
// is empty) or exactly one primary finding, with the partner, the closest
// agreement and the values it does not cover for the alert text.
type Verdict struct {
	// Finding is the primary finding; empty when the share is fine or was
	// skipped.
	Finding Finding
	// Skipped is true when the event needs no agreement: not a share, or a
	// share to the data subject or an internal recipient.
	Skipped bool
	// Partner is the partner the recipient resolved to; nil when unknown.
	Partner *Partner
	// Agreement is the agreement that covers the share or, for an agreement
	// finding, the closest one (fewest gaps, agreements in force preferred);
	// nil when there is none.
	Agreement *Agreement
	// Gap is every gap of Agreement for this share (the primary finding is
	// one of them); 0 when covered.
	Gap Gap
	// Uncovered are the values behind the primary finding: the categories
	// not covered, or the one use, channel or country; nil otherwise.
	Uncovered []string
	// Recipient is how the recipient was named in the event (domain, else
	// id, else name), for the alert text.
	Recipient string
	// At is the event time, for the validity texts.
	At time.Time
}

// OK reports whether the verdict has no finding.
func (v *Verdict) OK() bool { return v.Finding == "" }

// Resolve finds the partner an event's recipient is: by domain when the
// event names one (the host the data actually went to decides, whatever
// id the producer claimed), otherwise by id. It does not allocate.
func (r *Registry) Resolve(rc *event.Recipient) (*Partner, bool) {
	if rc.Domain != "" {
		return r.ByDomain(rc.Domain)
	}
	if rc.ID != "" {
		return r.ByID(rc.ID)
	}
	return nil, false
}

// NeedsAgreement reports whether a share to this recipient kind is a
// transfer to a third party that needs a partner and an agreement: every
// kind but data_subject and internal.
func NeedsAgreement(k event.RecipientKind) bool {
	return k != event.RecipientDataSubject && k != event.RecipientInternal
}

// Judge checks a share event against the registry and returns its verdict.
// Non-share events and shares to the data subject or internal recipients
// are skipped. Otherwise the first that applies is the finding:
// unknown_recipient, recipient_not_approved, no_agreement, then the gaps
// of the closest agreement in the order agreement_expired,
// agreement_not_yet_valid, agreement_category, agreement_use,
// agreement_channel, agreement_country (an agreement not in force makes
// its scope moot). It judges the share as described whatever its outcome:
// callers decide whether denied or failed shares matter. It allocates only
// when there is a finding with uncovered values.
func (r *Registry) Judge(ev *event.Event) Verdict {
	v := Verdict{At: ev.Time}
	if ev.Type != event.TypeShare || !NeedsAgreement(ev.Recipient.Kind) {
		v.Skipped = true
		return v
	}
	v.Recipient = recipientName(&ev.Recipient)
	p, ok := r.Resolve(&ev.Recipient)
	if !ok {
		v.Finding = FindingUnknownRecipient
		return v
	}
	v.Partner = p
	if !p.Approved() {
		v.Finding = FindingRecipientNotApproved
		return v
	}
	tr := TransferOf(ev)
	a, g := p.closest(tr)
	v.Agreement, v.Gap = a, g
	switch {
	case g == 0:
	case g.Has(GapNoAgreement):
		v.Finding = FindingNoAgreement
	case g.Has(GapExpired):
		v.Finding = FindingAgreementExpired
	case g.Has(GapNotYetValid):
		v.Finding = FindingAgreementNotYetValid
	case g.Has(GapCategory):
		v.Finding = FindingAgreementCategory
		v.Uncovered = a.UncoveredCategories(tr.Categories)
	case g.Has(GapUse):
		v.Finding = FindingAgreementUse
		v.Uncovered = []string{tr.Use}
	case g.Has(GapChannel):
		v.Finding = FindingAgreementChannel
		v.Uncovered = []string{string(tr.Channel)}
	case g.Has(GapCountry):
		v.Finding = FindingAgreementCountry
		v.Uncovered = []string{tr.Country}
	}
	return v
}

// closest is Check with a tie-break that prefers agreements in force: an
// agreement that only lacks a category beats an expired one that covered
// everything, since the one in force is the one the share must meet.
func (p *Partner) closest(tr Transfer) (*Agreement, Gap) {
	var best *Agreement
	bestGap, bestScore := GapNoAgreement, 1<<30
	for i := range p.Agreements {
		a := &p.Agreements[i]
		g := a.Check(tr)
		if g == 0 {
			return a, 0
		}
		score := 2 * popcount(g)
		if g&(GapExpired|GapNotYetValid) != 0 {
			score++
		}
		if score < bestScore {
			best, bestGap, bestScore = a, g, score
		}
	}
	return best, bestGap
}

func recipientName(rc *event.Recipient) string {
	switch {
	case rc.Domain != "":
		return rc.Domain
	case rc.ID != "":
		return rc.ID
	case rc.Name != "":
		return rc.Name
	}
	return "(unnamed recipient)"
}

// Reason is the finding in words for a privacy officer, e.g. "category
// user.health_and_medical is not covered by DPA-2024-017 (covers
// user.contact, user.behavior)"; "" when the verdict is OK.
func (v *Verdict) Reason() string {
	a := v.Agreement
	switch v.Finding {
	case "":
		return ""
	case FindingUnknownRecipient:
		return fmt.Sprintf("recipient %s is not in the partner registry", v.Recipient)
	case FindingRecipientNotApproved:
		s := fmt.Sprintf("partner %s is %s, not approved", v.Partner, strings.ReplaceAll(string(v.Partner.Status), "_", " "))
		if v.Partner.RiskNotes != "" {
			s += " (" + v.Partner.RiskNotes + ")"
		}
		return s
	case FindingNoAgreement:
		return fmt.Sprintf("partner %s has no agreement", v.Partner)
	case FindingAgreementExpired:
		return fmt.Sprintf("agreement %s with %s expired on %s; the share was on %s",
			a.Ref, v.Partner.Name, a.ValidTo.Format("2006-01-02"), v.At.UTC().Format("2006-01-02"))
	case FindingAgreementNotYetValid:
		return fmt.Sprintf("agreement %s with %s applies only from %s; the share was on %s",
			a.Ref, v.Partner.Name, a.ValidFrom.Format("2006-01-02"), v.At.UTC().Format("2006-01-02"))
	case FindingAgreementCategory:
		word := "category"
		if len(v.Uncovered) > 1 {
			word = "categories"
		}
		verb := "is"
		if len(v.Uncovered) > 1 {
			verb = "are"
		}
		return fmt.Sprintf("%s %s %s not covered by %s (covers %s)",
			word, strings.Join(v.Uncovered, ", "), verb, a.Ref, strings.Join(a.Categories, ", "))
	case FindingAgreementUse:
		use := v.Uncovered[0]
		if use == "" {
			return fmt.Sprintf("the share declares no purpose; %s covers only %s", a.Ref, strings.Join(a.Uses, ", "))
		}
		return fmt.Sprintf("use %s is not covered by %s (covers %s)", use, a.Ref, strings.Join(a.Uses, ", "))
	case FindingAgreementChannel:
		return fmt.Sprintf("channel %s is not allowed by %s (allows %s)", orNone(v.Uncovered[0]), a.Ref, joinChannels(a.Channels))
	case FindingAgreementCountry:
		return fmt.Sprintf("country %s is not allowed by %s (allows %s)", orNone(v.Uncovered[0]), a.Ref, strings.Join(a.Countries, ", "))
	}
	return string(v.Finding)
}

func orNone(s string) string {
	if s == "" {
		return "(none given)"
	}
	return s
}

func joinChannels(cs []event.ChannelKind) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = string(c)
	}
	return strings.Join(parts, ", ")
}

// ClearText reports whether the event moved personal data (it names at
// least one data category) over e-mail, ftp or http without the producer
// stating channel.encrypted: true. It applies to every recipient, the data
// subject included: whatever the customer asked, personal data does not
// travel in clear text. The finding is FindingCleartextChannel.
func ClearText(ev *event.Event) bool {
	switch ev.Channel.Kind {
	case event.ChannelEmail, event.ChannelFTP, event.ChannelHTTP:
	default:
		return false
	}
	return len(ev.Data.Categories) > 0 && !(ev.Channel.EncryptedSet && ev.Channel.Encrypted)
}

// ClearTextReason is the clear-text finding in words, e.g. "personal data
// (user.contact.email) sent by email without encryption (channel.encrypted
// not set)"; "" when ClearText(ev) is false.
func ClearTextReason(ev *event.Event) string {
	if !ClearText(ev) {
		return ""
	}
	why := "channel.encrypted not set"
	if ev.Channel.EncryptedSet {
		why = "channel.encrypted is false"
	}
	return fmt.Sprintf("personal data (%s) sent by %s without encryption (%s)",
		strings.Join(ev.Data.Categories, ", "), ev.Channel.Kind, why)
}
