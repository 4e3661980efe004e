package synth_test

import (
	"bytes"
	"slices"
	"strconv"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/synth"
)

// TestTargetSize: with a target size every event still matches the
// schema and decodes, the stream keeps its events, order, keys and
// everything the rules look at, and the average size lands near the
// target (a 300 B target reaches the leanest events the contract and the
// rules' inputs allow, about 370 B).
func TestTargetSize(t *testing.T) {
	n := 20_000
	if testing.Short() {
		n = 3_000
	}
	schema := compileSchema(t, event.EventSchemaID, event.SchemaJSON())
	for _, tc := range []struct {
		name     string
		target   int
		scenario synth.Scenario
		lo, hi   float64 // bounds of the average size
	}{
		{"300", 300, synth.ScenarioFoundation, 300, 390},
		{"600", 600, synth.ScenarioFoundation, 580, 620},
		{"2048", 2048, synth.ScenarioFoundation, 1990, 2100},
		{"2048 full", 2048, synth.ScenarioFull, 1990, 2100},
		{"8192", 8192, synth.ScenarioFoundation, 2048, 8192},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := synth.Config{Events: n, Incidents: true, Scenario: tc.scenario}
			if tc.scenario == synth.ScenarioFull {
				base.Events = 2 * n
			}
			sized := base
			sized.TargetSize = tc.target
			avg := compareSized(t, schema, base, sized)
			t.Logf("target %d: average %.0f B", tc.target, avg)
			if avg < tc.lo || avg > tc.hi {
				t.Fatalf("average size %.0f B, want between %.0f and %.0f", avg, tc.lo, tc.hi)
			}
		})
	}
}

// compareSized walks the streams of base and sized side by side and
// returns the average size of sized's events.
func compareSized(t *testing.T, schema *jsonschema.Schema, base, sized synth.Config) float64 {
	t.Helper()
	gb, err := synth.New(base)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := synth.New(sized)
	if err != nil {
		t.Fatal(err)
	}
	if gb.Total() != gs.Total() {
		t.Fatalf("totals differ: %d and %d", gb.Total(), gs.Total())
	}
	db, ds := event.NewDecoder(event.DefaultLimits()), event.NewDecoder(event.DefaultLimits())
	var (
		bufB, bufS []byte
		eb, es     event.Event
		total      int
	)
	for i := 0; ; i++ {
		kb, vb, okb := gb.Next(bufB)
		ks, vs, oks := gs.Next(bufS)
		if okb != oks {
			t.Fatalf("event %d: one stream ended early", i)
		}
		if !okb {
			return float64(total) / float64(i)
		}
		bufB, bufS = vb, vs
		total += len(vs)
		if !bytes.Equal(kb, ks) {
			t.Fatalf("event %d: key %s, want %s", i, ks, kb)
		}
		if i%10 == 0 { // the schema check is slow
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(vs))
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			if err := schema.Validate(doc); err != nil {
				t.Fatalf("event %d does not match the schema: %v\n%s", i, err, vs)
			}
		}
		if err := db.Decode(vb, nil, &eb); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if err := ds.Decode(vs, nil, &es); err != nil {
			t.Fatalf("event %d does not decode: %v\n%s", i, err, vs)
		}
		if d := ruleDiff(&eb, &es); d != "" {
			t.Fatalf("event %d: %s differs\nwithout target: %s\nwith target:    %s", i, d, vb, vs)
		}
	}
}

// ruleDiff names the first field the rules look at that differs.
func ruleDiff(a, b *event.Event) string {
	switch {
	case a.ID != b.ID || !a.Time.Equal(b.Time) || a.Type != b.Type || a.Action != b.Action:
		return "id, time, type or action"
	case a.Actor.ID != b.Actor.ID || a.Actor.Kind != b.Actor.Kind || a.Actor.Role != b.Actor.Role:
		return "actor"
	case a.Source.System != b.Source.System || a.Source.Dataset != b.Source.Dataset:
		return "source"
	case (a.Source.Environment == "staging") != (b.Source.Environment == "staging"):
		return "source.environment"
	case !slices.Equal(a.Data.Categories, b.Data.Categories):
		return "data.categories"
	case a.Data.HasRecords && b.Data.HasRecords && a.Data.Records != b.Data.Records,
		a.Data.HasRecords != b.Data.HasRecords && (a.Data.Records != 1 || a.Action.MovesData() || a.Action == event.ActionQuery):
		return "data.records"
	case len(a.Data.Subjects) > 0 && (len(b.Data.Subjects) == 0 || a.Data.Subjects[0] != b.Data.Subjects[0]):
		return "data.subjects"
	case len(b.Data.Subjects) == len(a.Data.Subjects) && b.Data.SubjectsTruncated != a.Data.SubjectsTruncated,
		len(b.Data.Subjects) != len(a.Data.Subjects) && b.Data.HasRecords &&
			(int64(len(b.Data.Subjects)) > max(b.Data.Records, 1) || b.Data.SubjectsTruncated != (int64(len(b.Data.Subjects)) < b.Data.Records)):
		return "data.subjects against data.records"
	case a.Recipient.ID != b.Recipient.ID || a.Recipient.Domain != b.Recipient.Domain ||
		a.Recipient.Country != b.Recipient.Country || a.Recipient.Kind != b.Recipient.Kind:
		return "recipient"
	case a.Channel != b.Channel:
		return "channel"
	case a.Purpose != b.Purpose || a.Outcome != b.Outcome:
		return "purpose or outcome"
	}
	return ""
}

func TestTargetSizeValidate(t *testing.T) {
	for _, size := range []int{-1, 100, synth.MinTargetSize - 1, synth.MaxTargetSize + 1} {
		if err := (synth.Config{TargetSize: size}).Validate(); err == nil {
			t.Errorf("target size %d: no error", size)
		}
	}
	for _, size := range []int{0, synth.MinTargetSize, 2048, synth.MaxTargetSize} {
		if err := (synth.Config{TargetSize: size}).Validate(); err != nil {
			t.Errorf("target size %d: %v", size, err)
		}
	}
}

// BenchmarkNextSize is BenchmarkNext with a target size (the shaping
// writes an event several times to measure it).
func BenchmarkNextSize(b *testing.B) {
	for _, size := range []int{300, 600, 2048} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			benchNext(b, synth.Config{Events: max(b.N, 1_000_000), Incidents: true, TargetSize: size})
		})
	}
}
