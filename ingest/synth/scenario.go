package synth

import (
	"fmt"
	"time"
)

// Scenario names a ready-made kind of stream, for a -scenario flag.
type Scenario string

// Scenarios.
const (
	// ScenarioFoundation is one day (by default Monday 2026-03-02) with the
	// four incidents of DefaultIncidentPlan: the stream of the foundation,
	// byte for byte.
	ScenarioFoundation Scenario = "foundation"
	// ScenarioFull is several days (by default eight, Monday 2026-02-23 to
	// Monday 2026-03-02) for the stateful rules: every day but the last is
	// a learning period of normal traffic only, with a realistic week, a
	// campaign day and a month-end close (see Peak); on the first day every
	// actor performs each of its habitual data moves once (so first-seen
	// rules learn every habit before the last day); and on the last day
	// the incidents of FullIncidentPlan, one or more for every built-in
	// detection, happen amid normal traffic.
	ScenarioFull Scenario = "full"
)

// Scenarios lists the scenarios, the default first.
func Scenarios() []Scenario { return []Scenario{ScenarioFoundation, ScenarioFull} }

// ParseScenario parses a scenario name; "" is the default (foundation).
func ParseScenario(s string) (Scenario, error) {
	switch Scenario(s) {
	case "":
		return ScenarioFoundation, nil
	case ScenarioFoundation, ScenarioFull:
		return Scenario(s), nil
	}
	return "", fmt.Errorf("unknown scenario %q: want %q or %q", s, ScenarioFoundation, ScenarioFull)
}

// String returns the scenario's name.
func (s Scenario) String() string { return string(s) }

// DefaultFullDays is how many days the full scenario spans by default (seven
// to learn from, then the incident day); Events defaults to DefaultEvents
// per day.
const DefaultFullDays = 8

// DefaultFullStart is the default start of the full scenario: the Monday a
// week before DefaultStart, so that its last (incident) day is DefaultStart.
var DefaultFullStart = DefaultStart.AddDate(0, 0, -7)

// FullIncidentPlan returns the incidents of the full scenario, all on the
// last day of a days-day run (day index days-1; days below 2 count as 2):
// the four foundation incidents at their usual times, and one or more
// incidents for every other built-in detection, at distinct times between
// 07:30 and 21:40 UTC, each by a different employee (services may recur).
func FullIncidentPlan(days int) []IncidentSpec {
	day := time.Duration(max(days, 2)-1) * 24 * time.Hour
	at := func(h, m int) time.Duration { return day + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute }
	return []IncidentSpec{
		// The foundation's four.
		{Kind: KindBulkExport, At: at(21, 40), Variant: 0},
		{Kind: KindUnknownRecipient, At: at(14, 20), Variant: 0},
		{Kind: KindBulkExport, At: at(11, 5), Variant: 1},
		{Kind: KindUnknownRecipient, At: at(16, 45), Variant: 1},
		// Partners, agreements and subjects.
		{Kind: KindRecipientNotApproved, At: at(12, 30), Variant: 0},
		{Kind: KindRecipientNotApproved, At: at(15, 10), Variant: 1},
		{Kind: KindAgreementCategory, At: at(13, 0)},
		{Kind: KindAgreementUse, At: at(13, 40)},
		{Kind: KindAgreementChannel, At: at(10, 40)},
		{Kind: KindAgreementCountry, At: at(15, 50)},
		{Kind: KindAgreementExpired, At: at(9, 45)},
		{Kind: KindAgreementNotYetValid, At: at(11, 30)},
		{Kind: KindSubjectOptedOut, At: at(18, 15)},
		{Kind: KindSubjectClosed, At: at(19, 5)},
		{Kind: KindCleartextChannel, At: at(10, 20), Variant: 0},
		{Kind: KindCleartextChannel, At: at(14, 50), Variant: 1},
		// The privacy statement's promises, one incident each.
		{Kind: KindPolicyViolation, At: at(16, 10), Variant: 0},
		{Kind: KindPolicyViolation, At: at(17, 25), Variant: 1},
		{Kind: KindPolicyViolation, At: at(12, 5), Variant: 2},
		{Kind: KindPolicyViolation, At: at(18, 40), Variant: 3},
		// Volumes, baselines, new terms and sequences.
		{Kind: KindPartnerVolumeSpike, At: at(8, 20)},
		{Kind: KindExportBaseline, At: at(7, 30)},
		{Kind: KindFirstSeenDataset, At: at(9, 12)},
		{Kind: KindFirstSeenCategory, At: at(20, 10)},
		{Kind: KindFirstSeenCountry, At: at(20, 35)},
		{Kind: KindQueryThenShare, At: at(10, 5)},
	}
}
