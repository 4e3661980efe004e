package rules

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// fullEvent is a share with every field set.
func fullEvent() *event.Event {
	return &event.Event{
		Schema: event.SchemaV1, ID: "7d0c-1", Time: time.Date(2026, 3, 2, 10, 15, 4, 123e6, time.UTC),
		Type: event.TypeShare, Action: event.ActionTransfer,
		Actor:  event.Actor{ID: "svc-crm-sync", Kind: event.ActorService, Role: "integration", Department: "it"},
		Source: event.Source{System: "crm", Dataset: "customers", Environment: "production"},
		Data: event.Data{Categories: []string{"user.contact.email", "user.name"}, Records: 15000, HasRecords: true, Bytes: 1 << 20,
			Subjects: []string{"0123456789abcdef0123456789abcdef"}, SubjectsTruncated: true, SubjectKinds: []string{"customer"}},
		Recipient: event.Recipient{ID: "acme-analytics", Name: "Acme Analytics Ltd", Domain: "sftp.acme-analytics.com", Country: "DE", Kind: event.RecipientProcessor},
		Channel:   event.Channel{Kind: event.ChannelSFTP, Encrypted: true, EncryptedSet: true},
		Purpose:   "analytics.reporting", LegalBasis: "contract", Outcome: event.OutcomeSuccess,
		Request:    event.Request{ID: "req-1", Session: "s-1", Ticket: "T-42", ClientIP: "10.0.0.1", UserAgent: "curl"},
		Attributes: []event.Attribute{{Key: "cluster", Value: "eu-1"}},
		Extra:      []byte(`{"x":1}`),
		Origin:     event.Origin{Topic: "custos.events", Partition: 3, Offset: 123456},
	}
}

func TestContributionCodec(t *testing.T) {
	base := fullEvent()
	// What a contribution without optional parts keeps.
	lean := *base
	lean.Data.Subjects, lean.Request, lean.Attributes, lean.Extra = nil, event.Request{}, nil, nil
	hint := &event.Event{Schema: event.SchemaV1, Time: base.Time, Origin: base.Origin}
	cases := []struct {
		name string
		c    Contribution
		want *event.Event
	}{
		{"one rule, no optional part", Contribution{Rules: []RuleKey{{"partner_volume_spike", KindBaseline, "acme-analytics"}}, Event: base}, &lean},
		{"two rules, every part", Contribution{Rules: []RuleKey{{"r", KindSequence, "a|b"}, {"first_seen_country", KindFirstSeen, "share"}},
			Parts: allParts, Event: base}, base},
		{"hint", Contribution{Rules: []RuleKey{{Rule: "first_seen_category", Kind: KindFirstSeen}}, Hint: true, Event: base}, hint},
		{"progress", *Progress(base.Origin, base.Time), hint},
		{"empty strings and lists", Contribution{Rules: []RuleKey{{Rule: "x", Kind: KindMatch}}, Event: &event.Event{Time: time.Unix(0, 0).UTC()}},
			&event.Event{Schema: event.SchemaV1, Time: time.Unix(0, 0).UTC()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.c.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var got Contribution
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Rules, tc.c.Rules) || got.Hint != tc.c.Hint || got.Progress != tc.c.Progress || got.Parts != tc.c.Parts {
				t.Fatalf("header: got %+v, want %+v", got, tc.c)
			}
			if !reflect.DeepEqual(got.Event, tc.want) {
				t.Fatalf("event:\n got %+v\nwant %+v", got.Event, tc.want)
			}
			o, isHint, err := OriginOf(b)
			if err != nil || o != base.Origin && tc.c.Event == base || isHint != tc.c.Hint {
				t.Fatalf("OriginOf = %+v, %v, %v", o, isHint, err)
			}
			// Every truncation is refused, as is trailing garbage.
			for n := 0; n < len(b); n++ {
				var c Contribution
				if err := c.UnmarshalBinary(b[:n]); err == nil {
					t.Fatalf("truncated to %d of %d bytes: no error", n, len(b))
				}
			}
			if err := (&Contribution{}).UnmarshalBinary(append(bytes.Clone(b), 0)); err == nil {
				t.Fatal("trailing byte accepted")
			}
		})
	}
	t.Run("size", func(t *testing.T) {
		b, _ := (&Contribution{Rules: []RuleKey{{"partner_volume_spike", KindBaseline, "acme-analytics"}}, Event: base}).MarshalBinary()
		if len(b) > 400 {
			t.Fatalf("a share's contribution is %d bytes", len(b))
		}
	})
	t.Run("unknown version", func(t *testing.T) {
		b, _ := (&Contribution{Rules: []RuleKey{{Rule: "x", Kind: KindMatch}}, Event: base}).MarshalBinary()
		b[0] = 9
		if err := (&Contribution{}).UnmarshalBinary(b); err == nil || !strings.Contains(err.Error(), "version") {
			t.Fatalf("err = %v", err)
		}
	})
}

func FuzzContributionDecode(f *testing.F) {
	b, _ := (&Contribution{Rules: []RuleKey{{"r", KindThreshold, "k"}}, Parts: allParts, Event: fullEvent()}).MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Contribution
		if err := c.UnmarshalBinary(data); err != nil {
			return
		}
		again, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var d Contribution
		if err := d.UnmarshalBinary(again); err != nil || !reflect.DeepEqual(c, d) {
			t.Fatalf("re-encoded contribution differs: %v", err)
		}
	})
}

func TestMarks(t *testing.T) {
	at := func(p int32, off int64) event.Origin { return event.Origin{Topic: "ev", Partition: p, Offset: off} }
	var m Marks
	steps := []struct {
		o    event.Origin
		want bool
	}{
		{at(0, 5), true},
		{at(0, 5), false}, // the same contribution again
		{at(0, 3), false}, // an earlier one, produced again after a crash
		{at(1, 2), true},  // another source partition
		{at(0, 9), true},
		{at(1, 2), false},
		{event.Origin{}, true}, // not read from Kafka
		{event.Origin{}, true},
	}
	for i, s := range steps {
		if got := m.Admit(s.o); got != s.want {
			t.Fatalf("step %d: Admit(%+v) = %v, want %v", i, s.o, got, s.want)
		}
	}
	text, err := m.MarshalText()
	if err != nil || string(text) != "ev:0=9,1=2" {
		t.Fatalf("MarshalText = %q, %v", text, err)
	}
	var back Marks
	if err := back.UnmarshalText(text); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.m, m.m) {
		t.Fatalf("round trip: %v, want %v", back.m, m.m)
	}
	c := back.Clone()
	c.Set(SourcePartition{"other", 4}, -1)
	text, _ = c.MarshalText()
	if string(text) != "ev:0=9,1=2\nother:4=-1" || back.Len() != 2 {
		t.Fatalf("clone: %q, original has %d", text, back.Len())
	}
	if c.Admit(at(0, 9)) || !c.Admit(event.Origin{Topic: "other", Partition: 4, Offset: 0}) {
		t.Fatal("a mark set from storage does not decide")
	}
	// A progress mark raises a mark, never lowers it.
	c.Advance(at(1, 40))
	c.Advance(at(0, 3))
	c.Advance(at(7, 1))
	if c.Admit(at(1, 40)) || !c.Admit(at(1, 41)) || c.Admit(at(0, 9)) || c.Admit(at(7, 1)) || !c.Admit(at(7, 2)) {
		t.Fatal("Advance")
	}
	for _, bad := range []string{"ev", "ev:x=1", "ev:1=", ":1=2"} {
		if err := (&Marks{}).UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", bad)
		}
	}
	if err := (&Marks{}).UnmarshalText(nil); err != nil {
		t.Error(err)
	}
}
