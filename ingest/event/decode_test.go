package event

import (
	"errors"
	"testing"
	"time"
)

func TestExamplesDecodeAndValidate(t *testing.T) {
	evSchema, _ := schemas(t)
	d := NewDecoder(DefaultLimits())
	for name, b := range exampleFiles(t) {
		t.Run(name, func(t *testing.T) {
			if err := schemaAccepts(evSchema, b); err != nil {
				t.Fatalf("schema rejects example: %v", err)
			}
			var ev Event
			if err := d.Decode(b, nil, &ev); err != nil {
				t.Fatalf("decode: %v", err)
			}
			checkInvariants(t, &ev)
		})
	}
}

// checkInvariants asserts what every accepted event satisfies.
func checkInvariants(t testing.TB, ev *Event) {
	t.Helper()
	switch {
	case ev.Schema != SchemaV1:
		t.Fatalf("schema %q", ev.Schema)
	case ev.ID == "":
		t.Fatal("empty id")
	case ev.Time.IsZero() && ev.Time.Location() != time.UTC:
		t.Fatal("time not UTC")
	case ev.Time.Location() != time.UTC:
		t.Fatal("time not UTC")
	case ev.Type != TypeAccess && ev.Type != TypeShare:
		t.Fatalf("type %q", ev.Type)
	case ev.Actor.ID == "" || (ev.Actor.Kind != ActorUser && ev.Actor.Kind != ActorService):
		t.Fatalf("actor %+v", ev.Actor)
	case ev.Source.System == "":
		t.Fatal("no source.system")
	case ev.Outcome == "":
		t.Fatal("no outcome")
	case ev.Type == TypeShare && (ev.Action != ActionTransfer || ev.Recipient.Kind == ""):
		t.Fatalf("share %q %+v", ev.Action, ev.Recipient)
	case ev.Type == TypeAccess && ev.Action == ActionTransfer:
		t.Fatal("access transfer")
	case ev.Action.MovesData() && !ev.Data.HasRecords:
		t.Fatal("no records")
	case ev.Data.Records < 0 || ev.Data.Bytes < 0:
		t.Fatal("negative count")
	}
	for i := 1; i < len(ev.Attributes); i++ {
		if ev.Attributes[i-1].Key >= ev.Attributes[i].Key {
			t.Fatal("attributes not sorted and unique")
		}
	}
}

func TestDecodeSmoke(t *testing.T) {
	d := NewDecoder(Limits{})
	var ev Event
	in := []byte(`{"event_id":"e1","time":"2026-03-02T10:00:00+01:00","type":"share","action":"transfer",
	"actor":{"id":"a","team":{"x":[1,2]}},"source":{"system":"s"},"data":{"records":5.0},
	"recipient":{"domain":"x.example"},"tenant":"t1","request":{"client":{"os":"linux"}},
	"attributes":{"b":"2","a":"1"}}`)
	if err := d.Decode(in, nil, &ev); err != nil {
		t.Fatal(err)
	}
	if got, want := string(ev.Extra), `{"tenant":"t1","actor":{"team":{"x":[1,2]}},"request":{"client":{"os":"linux"}}}`; got != want {
		t.Errorf("extra %s, want %s", got, want)
	}
	if !ev.Time.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) || ev.Data.Records != 5 || ev.Recipient.Kind != RecipientUnknown {
		t.Errorf("%+v", ev)
	}
	if ev.Attributes[0].Key != "a" {
		t.Errorf("attributes %+v", ev.Attributes)
	}
	err := d.Decode([]byte(`{"event_id":"e1","time":"2026-03-02T10:00:00Z","type":"access","action":"export","actor":{"id":"a"},"source":{"system":"s"}}`), nil, &ev)
	var e *Error
	if !errors.As(err, &e) || e.Error() != `data.records: required for action "export"` || e.Reason != ReasonMissing {
		t.Fatalf("got %v", err)
	}
}
