package rules

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/consent"
)

// TestResult is the outcome of one rule test case.
type TestResult struct {
	// File and Line locate the case; Name is its name.
	File string
	Line int
	Name string
	// Failures are what went wrong, each "file:line: cause"; empty when
	// the case passed.
	Failures []string
}

// Passed reports whether the case passed.
func (r TestResult) Passed() bool { return len(r.Failures) == 0 }

// RunTests runs the test cases of every file the engine was built from.
// Each case starts from an empty State; the alerts of the rules defined in
// the case's file are compared, event by event, with those the step
// expects (none when it expects none). Alerts of other files' rules are
// ignored.
func (e *Engine) RunTests() []TestResult {
	var out []TestResult
	for _, f := range e.files {
		own := map[string]bool{}
		for _, r := range f.Rules {
			own[r.ID] = true
		}
		for _, tc := range f.Tests {
			out = append(out, e.runTest(tc, own))
		}
	}
	return out
}

func (e *Engine) runTest(tc *TestCase, own map[string]bool) TestResult {
	res := TestResult{File: tc.File, Line: tc.Line, Name: tc.Name}
	fail := func(line int, format string, args ...any) {
		res.Failures = append(res.Failures, fmt.Sprintf("%s:%d: %s", tc.File, line, fmt.Sprintf(format, args...)))
	}
	st := e.NewState(0)
	subjects := consent.New() // each case starts with no subject status
	st.act.consent = subjects
	dec := event.NewDecoder(event.Limits{})
	for i, step := range tc.Steps {
		if step.Status != nil {
			if err := testStatus(dec, subjects, tc, step); err != nil {
				fail(step.Line, "status %d: %v", i+1, err)
				return res
			}
			if len(step.Expect) > 0 {
				fail(step.Line, "step %d: a subject status raises no alert; expect alerts on a later event", i+1)
			}
			continue
		}
		ev, err := testEvent(dec, tc, i, step)
		if err != nil {
			fail(step.Line, "event %d: %v", i+1, err)
			return res
		}
		var got []*Alert
		st.Evaluate(ev, func(a *Alert) {
			if own[a.Rule] {
				got = append(got, a)
			}
		})
		if len(got) != len(step.Expect) {
			fail(step.Line, "event %d: want %d alert(s), got %d%s", i+1, len(step.Expect), len(got), describeAlerts(got))
			continue
		}
		for j, want := range step.Expect {
			if msg := want.mismatch(got[j]); msg != "" {
				fail(step.Line, "event %d, alert %d: %s", i+1, j+1, msg)
			}
		}
	}
	return res
}

// testEvent builds step i's event: base merged with the step's event, id
// and time filled in when absent, decoded and validated as from Kafka.
func testEvent(dec *event.Decoder, tc *TestCase, i int, step TestStep) (*event.Event, error) {
	m := merge2(tc.Base, step.Event)
	if _, ok := m["event_id"]; !ok {
		m["event_id"] = fmt.Sprintf("t%d-e%d", tc.Line, i+1)
	}
	if _, ok := m["time"]; !ok {
		m["time"] = tc.Start.Add(step.At).Format(time.RFC3339Nano)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	ev := new(event.Event)
	if err := dec.Decode(data, nil, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// testStatus decodes a step's subject status, as from the subjects topic,
// its time defaulting to the step's, and applies it to reg.
func testStatus(dec *event.Decoder, reg *consent.Registry, tc *TestCase, step TestStep) error {
	m := maps.Clone(step.Status)
	if _, ok := m["time"]; !ok {
		m["time"] = tc.Start.Add(step.At).Format(time.RFC3339Nano)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var s event.SubjectStatus
	if err := dec.DecodeSubjectStatus(data, nil, &s); err != nil {
		return err
	}
	reg.Apply(&s)
	return nil
}

// merge2 deep-merges over into base (a nil value in over deletes the key).
func merge2(base, over map[string]any) map[string]any {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range over {
		if v == nil {
			delete(out, k)
			continue
		}
		bm, ok1 := out[k].(map[string]any)
		om, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = merge2(bm, om)
			continue
		}
		out[k] = v
	}
	return out
}

func (want Expect) mismatch(a *Alert) string {
	var diffs []string
	if want.Rule != a.Rule {
		diffs = append(diffs, fmt.Sprintf("rule %s, want %s", a.Rule, want.Rule))
	}
	if want.Severity != "" && want.Severity != a.Severity {
		diffs = append(diffs, fmt.Sprintf("severity %s, want %s", a.Severity, want.Severity))
	}
	if want.Key != "" && want.Key != a.GroupKey {
		diffs = append(diffs, fmt.Sprintf("key %q, want %q", a.GroupKey, want.Key))
	}
	if want.Value != 0 && want.Value != a.Value {
		diffs = append(diffs, fmt.Sprintf("value %d, want %d", a.Value, want.Value))
	}
	if want.Events != 0 && want.Events != a.Events {
		diffs = append(diffs, fmt.Sprintf("events %d, want %d", a.Events, want.Events))
	}
	return strings.Join(diffs, "; ")
}

func describeAlerts(as []*Alert) string {
	if len(as) == 0 {
		return ""
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = fmt.Sprintf("%s %s key=%q value=%d", a.Rule, a.Severity, a.GroupKey, a.Value)
	}
	return " (" + strings.Join(parts, "; ") + ")"
}
