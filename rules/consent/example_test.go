package consent_test

import (
	"fmt"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/consent"
)

func ExampleRegistry_Check() {
	reg := consent.New()
	at := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	reg.Apply(&event.SubjectStatus{Subject: "9f86d081884c7d659a2feaa0c55ad015", Time: at("2026-01-10T09:00:00Z"),
		Status: event.StatusOptedOut, Uses: []string{"marketing"}})
	reg.Apply(&event.SubjectStatus{Subject: "2c26b46b68ffc68ff99b453c1d304134", Time: at("2026-02-20T17:45:00Z"),
		Status: event.StatusClosed})

	share := []string{"9f86d081884c7d659a2feaa0c55ad015", "2c26b46b68ffc68ff99b453c1d304134", "fcde2b2edba56bf408601fb721fe9b5c"}
	out, closed := reg.Check(share, "marketing.advertising.third_party", at("2026-03-02T06:30:00Z"))
	fmt.Printf("%d opted out, %d closed\n", out, closed)
	out, closed = reg.Check(share, "marketing.advertising.third_party", at("2026-01-05T00:00:00Z"))
	fmt.Printf("before: %d opted out, %d closed\n", out, closed)
	// Output:
	// 1 opted out, 1 closed
	// before: 0 opted out, 0 closed
}
