package rules

import (
	"strings"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"testing"

	"github.com/custos-privacy/custos/rules/partner"
	"github.com/custos-privacy/custos/rules/policy"
)

func testRegistry(t testing.TB) *partner.Registry {
	t.Helper()
	reg, err := partner.Load("testdata/partners.yml")
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// testPolicy is the demo privacy statement (deploy/demo/policy.yml).
func testPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	pol, err := policy.Load("testdata/policy.yml")
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func builtinEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := Compile(Builtin(), Options{Registry: testRegistry(t), Policy: testPolicy(t)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestShippedRules runs the test cases of every shipped rule file, and
// checks that every shipped rule has a positive and a negative test.
func TestShippedRules(t *testing.T) {
	e := builtinEngine(t)
	for _, r := range e.RunTests() {
		t.Run(r.Name, func(t *testing.T) {
			for _, f := range r.Failures {
				t.Error(f)
			}
		})
	}
	for _, f := range e.Files() {
		pos, neg := map[string]bool{}, map[string]bool{}
		for _, tc := range f.Tests {
			fired := false
			for _, st := range tc.Steps {
				for _, x := range st.Expect {
					pos[x.Rule], fired = true, true
				}
			}
			if !fired {
				for _, r := range f.Rules {
					neg[r.ID] = true
				}
			}
		}
		for _, r := range f.Rules {
			if !pos[r.ID] || !neg[r.ID] {
				t.Errorf("%s:%d: rule %s needs a positive and a negative test (positive %v, negative %v)", r.File, r.Line, r.ID, pos[r.ID], neg[r.ID])
			}
		}
	}
}

// TestExampleRules runs the example rules of every kind and their tests.
func TestExampleRules(t *testing.T) {
	srcs, err := ReadDir("testdata/examples")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Compile(append(Builtin(), srcs...), Options{Registry: testRegistry(t), Policy: testPolicy(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range e.RunTests() {
		t.Run(r.Name, func(t *testing.T) {
			for _, f := range r.Failures {
				t.Error(f)
			}
		})
	}
	lint := e.Lint(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	if len(lint) != 1 || !strings.Contains(lint[0], "exception expired on 2025-12-31") {
		t.Errorf("lint: %q", lint)
	}
}

// TestBrokenFiles: a broken file is refused with file, line and cause.
func TestBrokenFiles(t *testing.T) {
	rule := func(extra string) string {
		return "rules:\n  - id: r\n    title: T\n    description: D\n    severity: high\n    owner: o\n    summary: s\n" + extra
	}
	tests := []struct{ name, file, want string }{
		{"yaml", "rules: [", "x.yml:1: invalid YAML"},
		{"unknown key", rule("    kind: match\n    condition: 'true'\n    colour: red\n"), `x.yml:10:5: rule: unknown key "colour"`},
		{"unknown field", rule("    kind: match\n    condition: event.actor.name == 'x'\n"), `x.yml:9: rule r condition: the event has no field "event.actor.name"`},
		{"unknown list", rule("    kind: match\n    condition: event.actor.id in admins\n"), `x.yml:9: rule r condition: undeclared reference to 'admins'`},
		{"not bool", rule("    kind: match\n    condition: event.data.records\n"), "x.yml:9: rule r condition must be true or false, not int"},
		{"type error", rule("    kind: match\n    condition: event.data.records == 'x'\n"), "x.yml:9: rule r condition: found no matching overload"},
		{"threshold", rule("    kind: threshold\n    condition: 'true'\n"), "a threshold rule needs a threshold"},
		{"lateness", rule("    kind: threshold\n    condition: 'true'\n    threshold: 5\n    window: 20m\n    allowed_lateness: 10m\n"), "x.yml:12:23: allowed_lateness 10m0s is more than a quarter"},
		{"template", rule("    kind: match\n    condition: 'true'\n") + "    escalate: [{at: 1, severity: low}]\n", ""},
		{"bad template", "rules:\n  - id: r\n    title: T\n    description: D\n    severity: high\n    owner: o\n    kind: match\n    condition: 'true'\n    summary: '{{.Nope}}'\n", "x.yml:2: rule r summary"},
		{"exception", rule("    kind: match\n    condition: 'true'\n    exceptions: [{when: 'event.actor.id == 1', reason: r, owner: o, expires: 2027-01-01}]\n"), "x.yml:10: rule r exception: found no matching overload"},
		{"duplicate id", "rules:\n  - id: bulk_export\n    title: T\n    description: D\n    severity: high\n    owner: o\n    kind: match\n    condition: 'true'\n    summary: s\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(append(Builtin(), Source{Name: "x.yml", Data: []byte(tc.file)}), Options{})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestRebindKeepsWindows: a reload keeps the window state of unchanged
// rules, so an export before and after the reload add up.
func TestRebindKeepsWindows(t *testing.T) {
	e1 := builtinEngine(t)
	e2 := builtinEngine(t)
	s := e1.NewState(0)
	mk := func(at time.Duration, n int64) *event.Event {
		return &event.Event{ID: "e", Time: benchT0.Add(at), Type: event.TypeAccess, Action: event.ActionExport,
			Outcome: event.OutcomeSuccess, Actor: event.Actor{ID: "jdoe"}, Source: event.Source{System: "crm"},
			Data: event.Data{Records: n, HasRecords: true}}
	}
	var got []*Alert
	emit := func(a *Alert) { got = append(got, a) }
	s.Evaluate(mk(0, 6000), emit)
	s.Rebind(e2)
	s.Evaluate(mk(time.Minute, 6000), emit)
	if len(got) != 1 || got[0].Value != 12000 {
		t.Fatalf("got %d alerts (%v)", len(got), got)
	}
}

// FuzzCompile: no rule file makes the loader panic.
func FuzzCompile(f *testing.F) {
	for _, s := range Builtin() {
		f.Add(s.Data)
	}
	f.Add([]byte("rules: [{id: x, kind: threshold, condition: 'event.data.records > 1'}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Compile([]Source{{Name: "f.yml", Data: data}}, Options{})
	})
}
