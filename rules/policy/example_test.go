package policy_test

import (
	"fmt"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/partner"
	"github.com/custos-privacy/custos/rules/policy"
)

func ExamplePolicy_Check() {
	pol, err := policy.Parse("policy.yml", []byte(`
promises:
  - id: no-precise-location-to-advertisers
    text: "Your precise location is never shared with advertisers."
    checks:
      - when:
          type: share
          categories: [user.location.precise]
          recipient: {partner_tags: [advertiser]}
        forbid: true
`))
	if err != nil {
		panic(err)
	}
	reg, err := partner.Parse("partners.yml", []byte(`
partners:
  - id: adnexa
    name: Adnexa Advertising GmbH
    kind: partner
    status: approved
    tags: [advertiser]
    domains: [adnexa.com]
`))
	if err != nil {
		panic(err)
	}
	ev := &event.Event{
		Time: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), Type: event.TypeShare, Action: event.ActionTransfer,
		Data:      event.Data{Categories: []string{"user.unique_id", "user.location.precise.gps"}},
		Recipient: event.Recipient{Domain: "api.adnexa.com", Kind: event.RecipientPartner, Country: "DE"},
		Purpose:   "marketing.advertising.third_party",
	}
	for _, v := range pol.Check(ev, reg) {
		fmt.Printf("%s\n  %q\n  %s\n", v.PromiseID, v.Text, v.Reason)
	}
	// Output:
	// no-precise-location-to-advertisers
	//   "Your precise location is never shared with advertisers."
	//   transfer of user.location.precise.gps for purpose marketing.advertising.third_party to Adnexa Advertising GmbH (adnexa, tagged advertiser)
}
