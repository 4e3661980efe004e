package partner

// Tag is a label the privacy office puts on a partner to say what sort of
// business it is, for policy checks such as "precise location is never
// shared with advertisers". Tags come from a closed vocabulary so that a
// typo in the registry or in a policy file is an error, not a check that
// silently never matches.
type Tag string

// Partner tags.
const (
	// TagAdvertiser is an ad network, ad exchange or audience platform.
	TagAdvertiser Tag = "advertiser"
	// TagDataBroker buys, sells or resells personal data.
	TagDataBroker Tag = "data_broker"
	// TagAnalytics is an analytics or measurement provider.
	TagAnalytics Tag = "analytics"
	// TagMarketing is a marketing or communications service (e-mail, SMS).
	TagMarketing Tag = "marketing"
	// TagPayment is a payment service or bank.
	TagPayment Tag = "payment"
	// TagLogistics is a carrier or fulfilment service.
	TagLogistics Tag = "logistics"
	// TagHealth is a health-care provider or laboratory.
	TagHealth Tag = "health"
	// TagPayroll is a payroll or HR service.
	TagPayroll Tag = "payroll"
	// TagAuditor is an auditor or legal adviser.
	TagAuditor Tag = "auditor"
	// TagSupervisory is a supervisory authority or regulator.
	TagSupervisory Tag = "supervisory"
	// TagResearch is a research or survey organisation.
	TagResearch Tag = "research"
	// TagCloud is a hosting, storage or infrastructure provider.
	TagCloud Tag = "cloud"
)

// Tags lists the known tags in documentation order.
var Tags = []Tag{
	TagAdvertiser, TagDataBroker, TagAnalytics, TagMarketing, TagPayment, TagLogistics,
	TagHealth, TagPayroll, TagAuditor, TagSupervisory, TagResearch, TagCloud,
}

// Valid reports whether t is one of the known tags.
func (t Tag) Valid() bool {
	for _, k := range Tags {
		if k == t {
			return true
		}
	}
	return false
}

// HasTag reports whether the partner carries tag t.
func (p *Partner) HasTag(t Tag) bool {
	for _, x := range p.Tags {
		if x == t {
			return true
		}
	}
	return false
}

// Approved reports whether the partner may receive personal data: its
// status is approved. Under review, suspended and revoked partners may not.
func (p *Partner) Approved() bool { return p.Status == StatusApproved }

// ValidTerm reports whether s is a well-formed dotted term (data category,
// data use): lower-case words of letters, digits, '_' or '-' joined by
// dots, such as "user.contact.email".
func ValidTerm(s string) bool { return validDotted(s) }
