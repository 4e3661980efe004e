package rules_test

import (
	"fmt"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules"
	"github.com/custos-privacy/custos/rules/partner"
)

// A partition's State raises a bulk_export alert once an actor's exports
// reach the threshold within the window.
func Example() {
	reg, err := partner.Parse("partners.yml", []byte(`
partners:
  - id: acme-analytics
    name: Acme Analytics Ltd
    kind: processor
    status: approved
    domains: [acme-analytics.com]
`))
	if err != nil {
		panic(err)
	}
	eng, err := rules.New(rules.DefaultConfig(), reg)
	if err != nil {
		panic(err)
	}
	st := eng.NewState(0)
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i, n := range []int64{6000, 3000, 2000} {
		st.Evaluate(&event.Event{
			ID: fmt.Sprintf("e%d", i), Time: start.Add(time.Duration(i) * 20 * time.Minute),
			Type: event.TypeAccess, Action: event.ActionExport, Outcome: event.OutcomeSuccess,
			Actor:  event.Actor{ID: "jdoe", Role: "analyst", Department: "finance"},
			Source: event.Source{System: "crm", Dataset: "customers"},
			Data:   event.Data{Records: n, HasRecords: true},
		}, func(a *rules.Alert) {
			fmt.Println(a.Rule, a.Severity, a.Records)
			fmt.Println(a.Summary)
		})
	}
	// Output:
	// bulk_export high 11000
	// jdoe (analyst, finance) exported 11,000 records in 3 events between 09:00 and 09:40 UTC (up to 40 min), at or above the 10,000-record threshold for 1h; latest export from crm/customers.
}
