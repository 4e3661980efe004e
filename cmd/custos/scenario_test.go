package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/synth"
	"github.com/custos-privacy/custos/rules"
	"github.com/custos-privacy/custos/rules/consent"
)

// TestFullScenarioAgainstGroundTruth runs the shipped rules over the
// generator's full scenario (seven days to learn from, then a day with an
// incident for every built-in detection) and checks the alerts against the
// generator's ground truth: every incident is caught by the rule named
// after it, and every alert is explained by an incident (its own rule, or
// one the incident lists as also rightly firing). It reports alerts per
// million normal events.
func TestFullScenarioAgainstGroundTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("replays 400,000 events; run without -short")
	}
	gen, engine := fullScenarioEngine(t)
	dec := event.NewDecoder(event.Limits{})
	st := engine.NewState(0)
	var alerts []rules.Alert
	incidentEvents := map[string]bool{}
	for _, inc := range gen.Incidents() {
		for _, id := range inc.EventIDs {
			incidentEvents[id] = true
		}
	}
	normal := 0
	var buf []byte
	for {
		_, v, ok := gen.Next(buf)
		if !ok {
			break
		}
		buf = v
		var ev event.Event
		if err := dec.Decode(v, nil, &ev); err != nil {
			t.Fatalf("generator event does not decode: %v", err)
		}
		if !incidentEvents[ev.ID] {
			normal++
		}
		st.Evaluate(&ev, func(a *rules.Alert) { alerts = append(alerts, *a) })
	}

	explained := make([]bool, len(alerts))
	var missed []string
	for _, inc := range gen.Incidents() {
		caught := false
		for i, a := range alerts {
			if !involves(a, inc) {
				continue
			}
			if a.Rule == string(inc.Kind) {
				caught = true
				explained[i] = true
			} else if slices.Contains(inc.Also, synth.IncidentKind(a.Rule)) {
				explained[i] = true
			}
		}
		if !caught {
			missed = append(missed, fmt.Sprintf("%s by %s: %s", inc.Kind, inc.Actor, inc.Description))
		}
	}
	var noise []string
	for i, a := range alerts {
		if !explained[i] {
			noise = append(noise, fmt.Sprintf("%s on %s: %s", a.Rule, a.GroupKey, a.Summary))
		}
	}
	sort.Strings(noise)
	t.Logf("%d events (%d normal), %d incidents, %d alerts; %d alerts on normal traffic = %.1f per million normal events",
		gen.Total(), normal, len(gen.Incidents()), len(alerts), len(noise), float64(len(noise))*1e6/float64(normal))
	if len(missed) > 0 {
		t.Errorf("%d incidents not caught:\n  %s", len(missed), strings.Join(missed, "\n  "))
	}
	if len(noise) > 0 {
		t.Errorf("%d alerts on normal traffic:\n  %s", len(noise), strings.Join(noise, "\n  "))
	}
}

// involves reports whether an alert concerns an incident: the incident's
// actor, or, for alerts grouped by partner, the incident's partner.
func involves(a rules.Alert, inc synth.Incident) bool {
	if a.Actor == inc.Actor || strings.Contains(a.GroupKey, inc.Actor) {
		return true
	}
	return inc.Partner != "" && strings.Contains(a.GroupKey, inc.Partner)
}

// fullScenarioEngine returns the generator of the full scenario (400,000
// normal events, every incident) and the shipped rules loaded with the
// demo's partners and policy, its subject statuses applied.
func fullScenarioEngine(t *testing.T) (*synth.Generator, *rules.Engine) {
	t.Helper()
	gen, err := synth.New(synth.Config{Scenario: synth.ScenarioFull, Events: 400000, Incidents: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig()
	cfg.Rules.Partners = "../../deploy/demo/partners.yml"
	cfg.Rules.Policy = "../../deploy/demo/policy.yml"
	dec := event.NewDecoder(event.Limits{})
	reg := consent.New()
	for _, m := range gen.SubjectStatuses() {
		var s event.SubjectStatus
		if err := dec.DecodeSubjectStatus(m.Value, nil, &s); err != nil {
			t.Fatalf("subject status: %v", err)
		}
		reg.Apply(&s)
	}
	engine, err := loadRules(&cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	return gen, engine
}
