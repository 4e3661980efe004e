package synth_test

import (
	"bytes"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/synth"
)

func compileSchema(t *testing.T, id string, doc []byte) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource(id, v); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEventsMatchContract: a large sample of the generator's events, with
// the incidents and batch jobs, validates against the published JSON
// Schema and decodes with the contract's decoder; so do the subject
// statuses.
func TestEventsMatchContract(t *testing.T) {
	n := 50_000
	if testing.Short() {
		n = 5_000
	}
	schema := compileSchema(t, event.EventSchemaID, event.SchemaJSON())
	dec := event.NewDecoder(event.DefaultLimits())
	for _, c := range []synth.Config{
		{Events: n, Incidents: true},
		{Scenario: synth.ScenarioFull, Events: 2 * n, Incidents: true},
	} {
		t.Run(c.Scenario.String(), func(t *testing.T) { checkContract(t, schema, dec, c) })
	}
}

func checkContract(t *testing.T, schema *jsonschema.Schema, dec *event.Decoder, c synth.Config) {
	g, err := synth.New(c)
	if err != nil {
		t.Fatal(err)
	}
	var (
		buf    []byte
		ev     event.Event
		kinds  = map[event.Type]int{}
		extras int
	)
	for i := 0; ; i++ {
		k, v, ok := g.Next(buf)
		if !ok {
			break
		}
		buf = v
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(v))
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if err := schema.Validate(doc); err != nil {
			t.Fatalf("event %d does not match the schema: %v\n%s", i, err, v)
		}
		if err := dec.Decode(v, nil, &ev); err != nil {
			t.Fatalf("event %d does not decode: %v\n%s", i, err, v)
		}
		if ev.Actor.ID != string(k) || ev.ID == "" || ev.Schema != event.SchemaV1 {
			t.Fatalf("event %d decoded as %+v", i, ev)
		}
		if ev.Action.MovesData() && !ev.Data.HasRecords {
			t.Fatalf("event %d moves data without records", i)
		}
		kinds[ev.Type]++
		if ev.Extra != nil {
			extras++
		}
	}
	if kinds[event.TypeAccess] == 0 || kinds[event.TypeShare] == 0 || extras == 0 {
		t.Fatalf("sample lacks variety: %v, %d with unknown fields", kinds, extras)
	}

	sschema := compileSchema(t, event.SubjectStatusSchemaID, event.SubjectStatusSchemaJSON())
	var st event.SubjectStatus
	for i, s := range g.SubjectStatuses() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(s.Value))
		if err != nil {
			t.Fatal(err)
		}
		if err := sschema.Validate(doc); err != nil {
			t.Fatalf("subject status %d does not match the schema: %v\n%s", i, err, s.Value)
		}
		if err := dec.DecodeSubjectStatus(s.Value, nil, &st); err != nil {
			t.Fatalf("subject status %d does not decode: %v\n%s", i, err, s.Value)
		}
	}
}
