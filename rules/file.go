package rules

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"gopkg.in/yaml.v3"

	"github.com/custos-privacy/custos/rules/internal/strictyaml"
)

// builtinFS holds the shipped rule files.
//
//go:embed builtin/*.yml
var builtinFS embed.FS

// Kind is how a rule decides to raise an alert.
type Kind string

// Rule kinds.
const (
	// KindMatch: one event satisfies the condition.
	KindMatch Kind = "match"
	// KindThreshold: an aggregate of the matching events of a group over a
	// sliding event-time window reaches a threshold.
	KindThreshold Kind = "threshold"
	// KindFirstSeen: a group shows a value (tuple of terms) never seen for
	// it before, after a learning period.
	KindFirstSeen Kind = "first_seen"
	// KindSequence: the steps of the rule happen in order, by the same
	// group, within a window.
	KindSequence Kind = "sequence"
	// KindBaseline: a group's total over an event-time period (a day) is
	// far above its own history or its peer group's (see Baseline).
	KindBaseline Kind = "baseline"
)

// Defaults of rule settings a file leaves out.
const (
	DefaultWindow          = time.Hour
	DefaultAllowedLateness = 10 * time.Minute
	DefaultEvidenceSamples = 10
	DefaultMatchSuppress   = 24 * time.Hour
	DefaultLearning        = 7 * 24 * time.Hour
	DefaultTermRetention   = 90 * 24 * time.Hour
	maxEvidenceSamples     = 100
)

// Source is one rule file's name and content.
type Source struct {
	// Name is the file name used in messages.
	Name string
	// Data is the file content.
	Data []byte
	// Builtin marks a shipped file; a user file may replace its rules,
	// lists and macros by reusing their names.
	Builtin bool
}

// Builtin returns the shipped rule files (rules/builtin/*.yml).
func Builtin() []Source {
	var out []Source
	ents, _ := fs.ReadDir(builtinFS, "builtin")
	for _, e := range ents {
		data, err := builtinFS.ReadFile("builtin/" + e.Name())
		if err != nil {
			panic(err)
		}
		out = append(out, Source{Name: "rules/builtin/" + e.Name(), Data: data, Builtin: true})
	}
	return out
}

// ReadDir reads the rule files (*.yml, *.yaml) of dir, sorted by name.
func ReadDir(dir string) ([]Source, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read rules folder %s: %w", dir, err)
	}
	var out []Source
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !(strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".yaml")) {
			continue
		}
		p := filepath.Join(dir, n)
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read rule file %s: %w", p, err)
		}
		out = append(out, Source{Name: p, Data: data})
	}
	return out, nil
}

// File is one parsed rule file.
type File struct {
	// Name is the file name.
	Name string
	// Builtin marks a shipped file.
	Builtin bool
	// Lists are named lists of values, usable in conditions by name.
	Lists []*List
	// Macros are named CEL snippets, usable in conditions by name.
	Macros []*Macro
	// Rules are the file's rules, in file order.
	Rules []*Rule
	// Tests are the file's test cases.
	Tests []*TestCase
}

// List is a named list of strings, a CEL constant list(string).
type List struct {
	Name  string
	Items []string
	File  string
	Line  int
}

// Macro is a named CEL expression; conditions refer to it by name and it
// is evaluated at most once per event.
type Macro struct {
	Name string
	Expr string
	File string
	Line int
	expr pos
}

// pos is where a CEL expression starts in its file, to turn CEL's
// positions into file lines.
type pos struct {
	line, col int
	block     bool
}

// Escalation raises an alert's severity once its value reaches At.
type Escalation struct {
	At       int64
	Severity Severity
}

// Step is one step of a sequence rule.
type Step struct {
	Name      string
	Condition string
	cond      pos
	line      int
}

// Exception is an allow-list entry of a rule: alerts whose triggering
// event satisfies When are not raised, for a stated reason, owned by
// someone, until the end of the expiry day (UTC). An expired exception
// stops applying and is reported.
type Exception struct {
	// When is a CEL condition over the triggering event.
	When string
	// Reason says why the activity is legitimate.
	Reason string
	// Owner is who answers for the exception.
	Owner string
	// Expires is the last day (UTC, inclusive) the exception applies.
	Expires time.Time
	// Line is the line of the entry in its file.
	Line int
	when pos
}

// AppliesAt reports whether the exception still applies at event time t.
func (x Exception) AppliesAt(t time.Time) bool { return t.Before(x.Expires.AddDate(0, 0, 1)) }

// Rule is one detection rule as written in its file.
type Rule struct {
	ID          string
	Title       string
	Description string
	Severity    Severity
	Tags        []string
	Owner       string
	Runbook     string
	Kind        Kind
	// Enabled is true unless the file says enabled: false.
	Enabled bool
	// Condition is the CEL condition an event must satisfy to count
	// (sequence rules have Steps instead).
	Condition string
	// GroupBy are the event fields whose values form the group key
	// (default actor.id).
	GroupBy []string
	// Window is the sliding window of threshold rules and the maximum
	// span of sequence rules (default 1h).
	Window time.Duration
	// AllowedLateness is how far behind its group's newest event an event
	// still counts (threshold; default 10m, at most Window/4).
	AllowedLateness time.Duration
	// Suppress is the dedup period: at most one alert per group key per
	// aligned period (default: Window; 24h for match rules).
	Suppress time.Duration
	// Aggregate is count, sum(records), sum(bytes) or distinct(<field>).
	Aggregate string
	// Threshold is the aggregate value that raises an alert.
	Threshold int64
	// Escalate raises the severity with the value, in increasing order.
	Escalate []Escalation
	// Terms are the fields of a first_seen rule's new value.
	Terms []string
	// Learning is how long a first_seen rule only learns (default 7d).
	Learning time.Duration
	// Steps are a sequence rule's steps, in order.
	Steps []Step
	// Baseline are a baseline rule's settings.
	Baseline *Baseline
	// Exceptions are the rule's allow-list entries.
	Exceptions []Exception
	// Summary is a Go text/template of the alert text.
	Summary string
	// Evidence is how many sample event ids alerts carry (default 10).
	Evidence int
	// File and Line locate the rule.
	File string
	Line int

	cond pos
}

// TestCase is a rule test: timed events and the alerts each must raise.
type TestCase struct {
	Name  string
	Start time.Time
	// Base is merged under every event (nested keys are merged).
	Base  map[string]any
	Steps []TestStep
	File  string
	Line  int
}

// TestStep is one event of a test case and the alerts it must raise.
type TestStep struct {
	// At is the event time as an offset from the case's start.
	At time.Duration
	// Event is the event (v1 JSON as YAML), merged over the case's base.
	Event map[string]any
	// Expect are the alerts this event must raise; none when empty.
	Expect []Expect
	// Status, when set, makes the step a subject status message of the
	// subjects topic (v1 JSON as YAML; time defaults to the step's time)
	// instead of an event: it feeds the case's consent registry.
	Status map[string]any
	Line   int
}

// Expect is an alert a test step expects. Zero fields are not checked.
type Expect struct {
	Rule     string
	Severity Severity
	Key      string
	Value    int64
	Events   int64
}

var idPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

var aggPattern = regexp.MustCompile(`^(count|sum\((records|bytes)\)|distinct\(([a-z_.]+)\))$`)

// ParseFile parses one rule file. Errors read file:line:column: cause.
func ParseFile(src Source) (*File, error) {
	r, root, err := strictyaml.Parse(src.Name, src.Data)
	if err != nil {
		return nil, err
	}
	f := &File{Name: src.Name, Builtin: src.Builtin}
	r.Mapping(root, "rule file", map[string]strictyaml.Field{
		"lists": {Read: func(v *yaml.Node) {
			forEachKey(r, v, "lists", func(k, v *yaml.Node) {
				l := &List{Name: k.Value, File: src.Name, Line: k.Line}
				checkName(r, k, "list")
				l.Items = r.Strings(v, "list "+k.Value)
				f.Lists = append(f.Lists, l)
			})
		}},
		"macros": {Read: func(v *yaml.Node) {
			forEachKey(r, v, "macros", func(k, v *yaml.Node) {
				m := &Macro{Name: k.Value, File: src.Name, Line: k.Line, expr: posOf(v)}
				checkName(r, k, "macro")
				if m.Expr = r.String(v, "macro "+k.Value); strings.TrimSpace(m.Expr) == "" && !r.Failed() {
					r.Errorf(v, "macro %s is empty", k.Value)
				}
				f.Macros = append(f.Macros, m)
			})
		}},
		"rules": {Read: func(v *yaml.Node) {
			r.Seq(v, "rules", func(_ int, n *yaml.Node) {
				if ru := readRule(r, n, src.Name); ru != nil {
					f.Rules = append(f.Rules, ru)
				}
			})
		}},
		"tests": {Read: func(v *yaml.Node) {
			r.Seq(v, "tests", func(_ int, n *yaml.Node) {
				f.Tests = append(f.Tests, readTest(r, n, src.Name))
			})
		}},
	})
	if err := r.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

func forEachKey(r *strictyaml.Reader, n *yaml.Node, what string, fn func(k, v *yaml.Node)) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		r.Errorf(n, "%s must be a mapping of names to values", what)
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if l, dup := seen[k.Value]; dup {
			r.Errorf(k, "%s: %q defined twice (first at line %d)", what, k.Value, l)
			continue
		}
		seen[k.Value] = k.Line
		fn(k, n.Content[i+1])
	}
}

func checkName(r *strictyaml.Reader, k *yaml.Node, what string) {
	if !idPattern.MatchString(k.Value) {
		r.Errorf(k, "%s name %q: use lower case letters, digits and _, starting with a letter", what, k.Value)
	}
	if k.Value == "event" || reservedName(k.Value) {
		r.Errorf(k, "%s name %q is reserved", what, k.Value)
	}
}

func reservedName(s string) bool {
	switch s {
	case "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
		"import", "let", "loop", "package", "namespace", "return", "var", "void", "while",
		"partner", "covers", "has", "all", "exists", "exists_one", "map", "filter", "size", "int", "string",
		"bool", "double", "uint", "bytes", "list", "type", "duration", "timestamp", "matches", "dyn":
		return true
	}
	return false
}

func posOf(v *yaml.Node) pos {
	return pos{line: v.Line, col: v.Column, block: v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0}
}

func readRule(r *strictyaml.Reader, n *yaml.Node, file string) *Rule {
	ru := &Rule{Enabled: true, File: file, Line: n.Line, Evidence: -1}
	var kindNode, windowNode, latenessNode, aggNode, threshNode, termsNode, stepsNode, condNode, baselineNode *yaml.Node
	str := func(dst *string, what string) strictyaml.Field {
		return strictyaml.Field{Read: func(v *yaml.Node) { *dst = r.String(v, what) }}
	}
	req := func(dst *string, what string) strictyaml.Field {
		return strictyaml.Field{Required: true, Read: func(v *yaml.Node) {
			if *dst = r.String(v, what); strings.TrimSpace(*dst) == "" {
				r.Errorf(v, "rule %s is empty", what)
			}
		}}
	}
	dur := func(dst *time.Duration, what string, node **yaml.Node) strictyaml.Field {
		return strictyaml.Field{Read: func(v *yaml.Node) {
			if node != nil {
				*node = v
			}
			if *dst = r.Duration(v, what); *dst < 0 {
				r.Errorf(v, "%s must not be negative", what)
			}
		}}
	}
	r.Mapping(n, "rule", map[string]strictyaml.Field{
		"id": {Required: true, Read: func(v *yaml.Node) {
			ru.ID = r.String(v, "id")
			if !idPattern.MatchString(ru.ID) {
				r.Errorf(v, "rule id %q: use lower case letters, digits and _, starting with a letter", ru.ID)
			}
		}},
		"title":       req(&ru.Title, "title"),
		"description": req(&ru.Description, "description"),
		"severity":    {Required: true, Read: func(v *yaml.Node) { ru.Severity = readSeverity(r, v) }},
		"tags":        {Read: func(v *yaml.Node) { ru.Tags = r.Strings(v, "tags") }},
		"owner":       req(&ru.Owner, "owner"),
		"runbook":     str(&ru.Runbook, "runbook"),
		"kind": {Required: true, Read: func(v *yaml.Node) {
			kindNode = v
			ru.Kind = Kind(r.String(v, "kind"))
			switch ru.Kind {
			case KindMatch, KindThreshold, KindFirstSeen, KindSequence, KindBaseline:
			default:
				r.Errorf(v, "invalid kind %q: want match, threshold, first_seen, sequence or baseline", ru.Kind)
			}
		}},
		"enabled": {Read: func(v *yaml.Node) { ru.Enabled = r.Bool(v, "enabled") }},
		"condition": {Read: func(v *yaml.Node) {
			condNode = v
			ru.Condition, ru.cond = r.String(v, "condition"), posOf(v)
		}},
		"group_by": {Read: func(v *yaml.Node) {
			r.Seq(v, "group_by", func(_ int, fn *yaml.Node) {
				s := r.String(fn, "group_by entry")
				if _, ok := fieldByPath(s); !ok || isListField(s) {
					r.Errorf(fn, "group_by: %q is not a string field of the event (e.g. actor.id, recipient.domain)", s)
				}
				ru.GroupBy = append(ru.GroupBy, strings.TrimPrefix(s, "event."))
			})
		}},
		"window":           dur(&ru.Window, "window", &windowNode),
		"allowed_lateness": dur(&ru.AllowedLateness, "allowed_lateness", &latenessNode),
		"suppress":         dur(&ru.Suppress, "suppress", nil),
		"learning":         dur(&ru.Learning, "learning", nil),
		"aggregate": {Read: func(v *yaml.Node) {
			aggNode = v
			ru.Aggregate = r.String(v, "aggregate")
			m := aggPattern.FindStringSubmatch(ru.Aggregate)
			if m == nil {
				r.Errorf(v, "invalid aggregate %q: want count, sum(records), sum(bytes) or distinct(<field>)", ru.Aggregate)
			} else if m[3] != "" {
				if _, ok := fieldByPath(m[3]); !ok {
					r.Errorf(v, "aggregate %s: %q is not a field of the event", ru.Aggregate, m[3])
				}
			}
		}},
		"threshold": {Read: func(v *yaml.Node) {
			threshNode = v
			if ru.Threshold = r.Int(v, "threshold"); ru.Threshold <= 0 && !r.Failed() {
				r.Errorf(v, "threshold must be positive, not %d", ru.Threshold)
			}
		}},
		"escalate": {Read: func(v *yaml.Node) {
			r.Seq(v, "escalate", func(_ int, en *yaml.Node) {
				var e Escalation
				r.Mapping(en, "escalation", map[string]strictyaml.Field{
					"at":       {Required: true, Read: func(v *yaml.Node) { e.At = r.Int(v, "at") }},
					"severity": {Required: true, Read: func(v *yaml.Node) { e.Severity = readSeverity(r, v) }},
				})
				if k := len(ru.Escalate); k > 0 && e.At <= ru.Escalate[k-1].At {
					r.Errorf(en, "escalate: at %d must be above the previous step's %d", e.At, ru.Escalate[k-1].At)
				}
				ru.Escalate = append(ru.Escalate, e)
			})
		}},
		"terms": {Read: func(v *yaml.Node) {
			termsNode = v
			r.Seq(v, "terms", func(_ int, tn *yaml.Node) {
				s := r.String(tn, "terms entry")
				if _, ok := fieldByPath(s); !ok {
					r.Errorf(tn, "terms: %q is not a field of the event", s)
				}
				ru.Terms = append(ru.Terms, strings.TrimPrefix(s, "event."))
			})
		}},
		"steps": {Read: func(v *yaml.Node) {
			stepsNode = v
			r.Seq(v, "steps", func(_ int, sn *yaml.Node) {
				st := Step{line: sn.Line}
				r.Mapping(sn, "step", map[string]strictyaml.Field{
					"name": {Required: true, Read: func(v *yaml.Node) { st.Name = r.String(v, "name") }},
					"condition": {Required: true, Read: func(v *yaml.Node) {
						st.Condition, st.cond = r.String(v, "condition"), posOf(v)
					}},
				})
				ru.Steps = append(ru.Steps, st)
			})
		}},
		"baseline": {Read: func(v *yaml.Node) {
			baselineNode = v
			ru.Baseline = readBaseline(r, v)
		}},
		"exceptions": {Read: func(v *yaml.Node) {
			r.Seq(v, "exceptions", func(_ int, xn *yaml.Node) {
				ru.Exceptions = append(ru.Exceptions, readException(r, xn))
			})
		}},
		"summary": {Required: true, Read: func(v *yaml.Node) { ru.Summary = r.String(v, "summary") }},
		"evidence": {Read: func(v *yaml.Node) {
			k := r.Int(v, "evidence")
			if k < 0 || k > maxEvidenceSamples {
				r.Errorf(v, "evidence must be between 0 and %d, not %d", maxEvidenceSamples, k)
			}
			ru.Evidence = int(k)
		}},
	})
	if r.Failed() {
		return ru
	}
	// Per-kind requirements and defaults.
	if len(ru.GroupBy) == 0 {
		ru.GroupBy = []string{"actor.id"}
	}
	if ru.Kind != KindSequence && strings.TrimSpace(ru.Condition) == "" {
		r.Errorf(n, "rule %s: a %s rule needs a condition", ru.ID, ru.Kind)
	}
	if ru.Kind == KindSequence && condNode != nil {
		r.Errorf(condNode, "rule %s: a sequence rule has steps, not a condition", ru.ID)
	}
	only := func(node *yaml.Node, key string, kinds ...Kind) {
		if node != nil && !slices.Contains(kinds, ru.Kind) {
			r.Errorf(node, "rule %s: %s does not apply to %s rules", ru.ID, key, ru.Kind)
		}
	}
	only(aggNode, "aggregate", KindThreshold, KindBaseline)
	only(threshNode, "threshold", KindThreshold)
	only(latenessNode, "allowed_lateness", KindThreshold, KindBaseline)
	only(baselineNode, "baseline", KindBaseline)
	only(termsNode, "terms", KindFirstSeen)
	only(stepsNode, "steps", KindSequence)
	only(windowNode, "window", KindThreshold, KindSequence)
	switch ru.Kind {
	case KindThreshold:
		if ru.Aggregate == "" {
			ru.Aggregate = "count"
		}
		if ru.Threshold == 0 {
			r.Errorf(kindNode, "rule %s: a threshold rule needs a threshold", ru.ID)
		}
		if ru.Window == 0 {
			ru.Window = DefaultWindow
		}
		if latenessNode == nil {
			ru.AllowedLateness = min(DefaultAllowedLateness, ru.Window/4)
		}
		if ru.Window < time.Minute || ru.Window%time.Minute != 0 {
			r.Errorf(windowNode, "window must be a whole number of minutes, at least 1m, not %s", ru.Window)
		}
		if ru.AllowedLateness > ru.Window/4 {
			at := latenessNode
			if at == nil {
				at = windowNode
			}
			r.Errorf(at, "allowed_lateness %s is more than a quarter of the window %s", ru.AllowedLateness, ru.Window)
		}
		if ru.Suppress == 0 {
			ru.Suppress = ru.Window
		}
	case KindSequence:
		if len(ru.Steps) < 2 {
			r.Errorf(n, "rule %s: a sequence rule needs at least two steps", ru.ID)
		}
		if ru.Window == 0 {
			ru.Window = DefaultWindow
		}
		if ru.Suppress == 0 {
			ru.Suppress = ru.Window
		}
	case KindFirstSeen:
		if len(ru.Terms) == 0 {
			r.Errorf(n, "rule %s: a first_seen rule needs terms", ru.ID)
		}
		if ru.Learning == 0 {
			ru.Learning = DefaultLearning
		}
		if ru.Suppress == 0 {
			ru.Suppress = DefaultMatchSuppress
		}
	case KindBaseline:
		finishBaseline(r, n, ru, latenessNode != nil)
	case KindMatch:
		if ru.Suppress == 0 {
			ru.Suppress = DefaultMatchSuppress
		}
	}
	if len(ru.Escalate) > 0 && ru.Kind == KindSequence {
		r.Errorf(n, "rule %s: escalate does not apply to sequence rules", ru.ID)
	}
	return ru
}

func isListField(p string) bool {
	f, _ := fieldByPath(p)
	return eventFields[f].typ != cel.StringType
}

func readSeverity(r *strictyaml.Reader, v *yaml.Node) Severity {
	s := Severity(r.String(v, "severity"))
	if !s.Valid() {
		r.Errorf(v, "invalid severity %q: want info, low, medium, high or critical", s)
	}
	return s
}

func readException(r *strictyaml.Reader, n *yaml.Node) Exception {
	x := Exception{Line: n.Line}
	nonEmpty := func(v *yaml.Node, key string, dst *string) {
		if *dst = r.String(v, key); strings.TrimSpace(*dst) == "" {
			r.Errorf(v, "exception %s is empty", key)
		}
	}
	r.Mapping(n, "exception", map[string]strictyaml.Field{
		"when": {Required: true, Read: func(v *yaml.Node) {
			nonEmpty(v, "when", &x.When)
			x.when = posOf(v)
		}},
		"reason":  {Required: true, Read: func(v *yaml.Node) { nonEmpty(v, "reason", &x.Reason) }},
		"owner":   {Required: true, Read: func(v *yaml.Node) { nonEmpty(v, "owner", &x.Owner) }},
		"expires": {Required: true, Read: func(v *yaml.Node) { x.Expires = r.Date(v, "expires") }},
	})
	return x
}

func readTest(r *strictyaml.Reader, n *yaml.Node, file string) *TestCase {
	tc := &TestCase{File: file, Line: n.Line, Start: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	r.Mapping(n, "test", map[string]strictyaml.Field{
		"name": {Required: true, Read: func(v *yaml.Node) { tc.Name = r.String(v, "name") }},
		"start": {Read: func(v *yaml.Node) {
			t, err := time.Parse(time.RFC3339, v.Value)
			if err != nil {
				r.Errorf(v, "start must be an RFC 3339 time such as 2026-03-02T09:00:00Z, not %q", v.Value)
			}
			tc.Start = t.UTC()
		}},
		"base": {Read: func(v *yaml.Node) { tc.Base = readAnyMap(r, v, "base") }},
		"steps": {Required: true, Read: func(v *yaml.Node) {
			r.Seq(v, "steps", func(_ int, sn *yaml.Node) {
				st := TestStep{Line: sn.Line}
				r.Mapping(sn, "test step", map[string]strictyaml.Field{
					"at":     {Read: func(v *yaml.Node) { st.At = r.Duration(v, "at") }},
					"event":  {Read: func(v *yaml.Node) { st.Event = readAnyMap(r, v, "event") }},
					"status": {Read: func(v *yaml.Node) { st.Status = readAnyMap(r, v, "status") }},
					"expect": {Read: func(v *yaml.Node) {
						r.Seq(v, "expect", func(_ int, en *yaml.Node) {
							var e Expect
							r.Mapping(en, "expected alert", map[string]strictyaml.Field{
								"rule":     {Required: true, Read: func(v *yaml.Node) { e.Rule = r.String(v, "rule") }},
								"severity": {Read: func(v *yaml.Node) { e.Severity = readSeverity(r, v) }},
								"key":      {Read: func(v *yaml.Node) { e.Key = r.String(v, "key") }},
								"value":    {Read: func(v *yaml.Node) { e.Value = r.Int(v, "value") }},
								"events":   {Read: func(v *yaml.Node) { e.Events = r.Int(v, "events") }},
							})
							st.Expect = append(st.Expect, e)
						})
					}},
				})
				tc.Steps = append(tc.Steps, st)
			})
		}},
	})
	return tc
}

func readAnyMap(r *strictyaml.Reader, v *yaml.Node, what string) map[string]any {
	if v.Kind != yaml.MappingNode {
		r.Errorf(v, "%s must be a mapping (an event as YAML or JSON)", what)
		return nil
	}
	var m map[string]any
	if err := v.Decode(&m); err != nil {
		r.Errorf(v, "%s: %v", what, err)
	}
	return m
}

// lineOf maps a CEL position (1-based line, 0-based column) within an
// expression that starts at p to a file line.
func (p pos) lineOf(celLine int) int {
	if p.block {
		return p.line + celLine
	}
	return p.line + celLine - 1
}

// errAt formats file:line: msg.
func errAt(file string, line int, format string, args ...any) *strictyaml.Error {
	return &strictyaml.Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// Valid reports whether s is one of the known severities.
func (s Severity) Valid() bool {
	switch s {
	case SeverityInfo, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical:
		return true
	}
	return false
}
