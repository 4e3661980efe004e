package event_test

import (
	"errors"
	"fmt"

	"github.com/custos-privacy/custos/ingest/event"
)

func ExampleDecoder_Decode() {
	d := event.NewDecoder(event.DefaultLimits()) // one per goroutine
	var ev event.Event
	msg := []byte(`{"event_id":"e-1","time":"2026-03-02T10:00:00+01:00","type":"access","action":"export",
		"actor":{"id":"u-2208"},"source":{"system":"snowflake"},"data":{"records":48213},"tenant":"acme"}`)
	if err := d.Decode(msg, nil, &ev); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.Actor.ID, ev.Actor.Kind, ev.Action, ev.Data.Records, ev.Time, ev.Outcome, string(ev.Extra))

	err := d.Decode([]byte(`{"event_id":"e-2","time":"2026-03-02T10:00:00Z","type":"access","action":"export",
		"actor":{"id":"u-2208"},"source":{"system":"snowflake"}}`), nil, &ev)
	var e *event.Error
	if errors.As(err, &e) {
		fmt.Println(e.Reason, e.Field, "|", e)
	}
	// Output:
	// u-2208 user export 48213 2026-03-02 09:00:00 +0000 UTC success {"tenant":"acme"}
	// missing data.records | data.records: required for action "export"
}
