package rules

import (
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/consent"
	"github.com/custos-privacy/custos/rules/partner"
	"github.com/custos-privacy/custos/rules/policy"
)

// Derived fields are the event fields that need more than the event: the
// partner registry's verdict on a share (event.transfer.*), the promises
// of the privacy statement it breaks (event.policy.*) and how many of its
// subjects had opted out or closed their account (event.consent.*). Each
// is computed at most once per event, and only when a condition, a group
// key or an alert text reads it: a rule set that never mentions
// event.policy never pays for the policy check.

// lazy caches the derived values of the current event; a value is valid
// when its generation equals the activation's.
type lazy struct {
	verdict    partner.Verdict
	finding    ref.Val // verdict.Finding as a CEL value, read by every third-party rule
	violations []policy.Violation
	optedOut   int
	closed     int
	vGen       uint32
	pGen       uint32
	cGen       uint32
}

var emptyList = types.NewStringList(types.DefaultTypeAdapter, nil)

// findingVals are the CEL values of the findings, made once: converting a
// string to a CEL value allocates.
var findingVals = func() map[partner.Finding]ref.Val {
	m := map[partner.Finding]ref.Val{"": types.String("")}
	for _, f := range partner.Findings {
		m[f] = types.String(f)
	}
	return m
}()

// verdict is the partner registry's verdict on the current event.
func (a *activation) verdict() *partner.Verdict {
	if a.lazy.vGen != a.gen {
		a.lazy.verdict, a.lazy.vGen = a.eng.reg.Judge(a.ev), a.gen
		a.lazy.finding = findingVals[a.lazy.verdict.Finding]
		if a.lazy.finding == nil {
			a.lazy.finding = types.String(a.lazy.verdict.Finding)
		}
	}
	return &a.lazy.verdict
}

// violations are the promises the current event breaks.
func (a *activation) violations() []policy.Violation {
	if a.lazy.pGen != a.gen {
		a.lazy.violations, a.lazy.pGen = a.eng.pol.Check(a.ev, a.eng.reg), a.gen
	}
	return a.lazy.violations
}

// consentCounts are how many of the current event's subjects had opted out
// of its purpose, and had closed their account, at its time.
func (a *activation) consentCounts() (optedOut, closed int) {
	if a.lazy.cGen != a.gen {
		a.lazy.optedOut, a.lazy.closed = 0, 0
		if reg := a.consentRegistry(); reg != nil && len(a.ev.Data.Subjects) > 0 {
			a.lazy.optedOut, a.lazy.closed = reg.Check(a.ev.Data.Subjects, a.ev.Purpose, a.ev.Time)
		}
		a.lazy.cGen = a.gen
	}
	return a.lazy.optedOut, a.lazy.closed
}

func (a *activation) consentRegistry() *consent.Registry {
	if a.consent != nil {
		return a.consent
	}
	return a.eng.consent
}

// derived returns the value of a derived field of the current event.
func (a *activation) derived(f fieldID) ref.Val {
	switch f {
	case fTransferFinding:
		a.verdict()
		return a.lazy.finding
	case fTransferUncovered:
		if v := a.verdict(); len(v.Uncovered) > 0 {
			return types.NewStringList(types.DefaultTypeAdapter, v.Uncovered)
		}
		return emptyList
	case fChannelCleartext:
		return types.Bool(partner.ClearText(a.ev))
	case fPolicyViolations:
		vs := a.violations()
		if len(vs) == 0 {
			return emptyList
		}
		ids := make([]string, len(vs))
		for i := range vs {
			ids[i] = vs[i].PromiseID
		}
		return types.NewStringList(types.DefaultTypeAdapter, ids)
	case fConsentOptedOut:
		n, _ := a.consentCounts()
		return types.Int(n)
	case fConsentClosed:
		_, n := a.consentCounts()
		return types.Int(n)
	}
	return types.String(a.derivedString(f))
}

// derivedString returns the value of a derived string field of the
// current event ("" for other fields).
func (a *activation) derivedString(f fieldID) string {
	switch f {
	case fTransferFinding:
		return string(a.verdict().Finding)
	case fTransferReason:
		return a.verdict().Reason()
	case fTransferPartner:
		if p := a.verdict().Partner; p != nil {
			return p.ID
		}
	case fTransferPartnerName:
		if p := a.verdict().Partner; p != nil {
			return p.Name
		}
	case fTransferAgreement:
		if ag := a.verdict().Agreement; ag != nil {
			return ag.Ref
		}
	case fPolicyPromise:
		if vs := a.violations(); len(vs) > 0 {
			return vs[0].PromiseID
		}
	case fPolicyReason:
		if vs := a.violations(); len(vs) > 0 {
			return vs[0].Reason
		}
	}
	return ""
}

// stringField returns the value of a string field of ev for a group key,
// derived fields included. Group keys are built outside the partition's
// activation, so a derived value is computed again (once per alerting
// event, not once per event).
func (r *rule) stringField(ev *event.Event, f fieldID) string {
	if f < firstDerived {
		return stringField(ev, f)
	}
	a := activation{ev: ev, eng: r.eng, gen: 1}
	return a.derivedString(f)
}

// policyFunctions are the CEL functions over the privacy statement pol
// (nil: a statement without promises).
func policyFunctions(pol *policy.Policy) []cel.EnvOption {
	texts := map[string]string{}
	if pol != nil {
		for _, p := range pol.Promises() {
			texts[p.ID] = p.Text
		}
	}
	return []cel.EnvOption{
		cel.Function("policy.text",
			cel.Overload("policy_text_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					s, _ := v.(types.String)
					return types.String(texts[string(s)])
				})),
			cel.FunctionDocs(`policy.text(id) is the text of the promise id of the privacy statement (rules.policy), quoted verbatim; "" when there is no such promise.`)),
	}
}

// TransferSummary is the partner registry's verdict on the triggering
// event, for alert texts.
type TransferSummary struct {
	// Finding is the verdict's finding id ("" when the share is covered or
	// is not a third-party share).
	Finding string
	// Reason is the finding in words, naming the partner, the agreement and
	// what it does not cover.
	Reason string
	// Partner names the partner: "Acme Analytics Ltd (acme-analytics)";
	// PartnerID is its bare id. Empty when the recipient is unknown.
	Partner, PartnerID string
	// Status is the partner's status (approved, under_review, ...) and
	// RiskNotes the registry's notes on it.
	Status, RiskNotes string
	// Agreement is the reference of the agreement involved ("" when none).
	Agreement string
	// Uncovered are the values behind the finding, comma-separated.
	Uncovered string
}

// PolicySummary is the first promise of the privacy statement the
// triggering event breaks, for alert texts.
type PolicySummary struct {
	// Promise is the promise id and Text its text, quoted verbatim.
	Promise, Text string
	// Reason says what in the event broke it.
	Reason string
	// Others are the ids of the other promises the event breaks.
	Others []string
	// Statement is the statement's title and URL its address.
	Statement, URL string
}

// ConsentSummary counts the triggering event's subjects by status, for
// alert texts.
type ConsentSummary struct {
	// OptedOut had opted out of the event's purpose, Closed had closed
	// their account, at the event's time.
	OptedOut, Closed int64
	// Subjects is how many subjects the event lists; Truncated is true
	// when that list is a sample of a larger share.
	Subjects  int64
	Truncated bool
}

// summarize fills the derived parts of an alert text for ev.
func (a *activation) summarize(ev *event.Event, d *SummaryData) {
	if a.ev != ev {
		tmp := activation{ev: ev, eng: a.eng, consent: a.consent, gen: 1}
		tmp.summarize(ev, d)
		return
	}
	if v := a.verdict(); !v.Skipped {
		t := &d.Transfer
		t.Finding, t.Reason, t.Uncovered = string(v.Finding), v.Reason(), strings.Join(v.Uncovered, ", ")
		if p := v.Partner; p != nil {
			t.Partner, t.PartnerID, t.Status, t.RiskNotes = p.Name+" ("+p.ID+")", p.ID, string(p.Status), p.RiskNotes
		}
		if v.Agreement != nil {
			t.Agreement = v.Agreement.Ref
		}
	}
	if vs := a.violations(); len(vs) > 0 {
		d.Policy = PolicySummary{Promise: vs[0].PromiseID, Text: vs[0].Text, Reason: vs[0].Reason,
			Statement: a.eng.pol.Title(), URL: a.eng.pol.URL()}
		for _, v := range vs[1:] {
			d.Policy.Others = append(d.Policy.Others, v.PromiseID)
		}
	}
	out, closed := a.consentCounts()
	d.Consent = ConsentSummary{OptedOut: int64(out), Closed: int64(closed),
		Subjects: int64(len(ev.Data.Subjects)), Truncated: ev.Data.SubjectsTruncated}
	d.Cleartext = partner.ClearTextReason(ev)
}

// guardedProgram is a rule condition or macro some of whose top-level
// conjuncts (c1 && c2 && ...) are cheap to decide in Go: a macro, computed
// once per event and shared by every rule that uses it, or a string field
// compared with literals (event.transfer.finding == "agreement_use",
// event.action in ["export", "download"] or in a list, event.transfer.partner
// != ""). When one of them is false the condition is false without being
// evaluated. Most events are not third-party shares, and a share has at
// most one finding, so each third-party rule costs a lookup or a string
// comparison on most events instead of a CEL evaluation.
type guardedProgram struct {
	cel.Program
	macros []int
	fields []fieldGuard
	// complete is set when every conjunct is a guard: the condition is
	// then true when every guard holds and every macro guard is true, and
	// CEL is not run at all.
	complete bool
}

// fieldGuard is a conjunct over a string field: event.<field> == value,
// != value, or in a set of literals.
type fieldGuard struct {
	f     fieldID
	op    guardOp
	value string
	set   []string
}

// guardOp is the comparison of a fieldGuard.
type guardOp uint8

const (
	guardEq guardOp = iota
	guardNe
	guardIn
)

// holds reports whether the guard's conjunct is true for v.
func (fg *fieldGuard) holds(v string) bool {
	switch fg.op {
	case guardNe:
		return v != fg.value
	case guardIn:
		return slices.Contains(fg.set, v)
	}
	return v == fg.value
}

// Eval implements cel.Program.
func (g *guardedProgram) Eval(in any) (ref.Val, *cel.EvalDetails, error) {
	if a, ok := in.(*activation); ok {
		allTrue := true
		for _, m := range g.macros {
			switch a.macro(m) {
			case types.False:
				return types.False, nil, nil
			case types.True:
			default:
				allTrue = false
			}
		}
		for i := range g.fields {
			fg := &g.fields[i]
			var v string
			if fg.f < firstDerived {
				v = stringField(a.ev, fg.f)
			} else {
				v = a.derivedString(fg.f)
			}
			if !fg.holds(v) {
				return types.False, nil, nil
			}
		}
		if g.complete && allTrue {
			return types.True, nil, nil
		}
	}
	return g.Program.Eval(in)
}

// addGuards wraps the conditions of the rules in force, and the macros,
// that have guard conjuncts in a guardedProgram.
func (e *Engine) addGuards() {
	for _, m := range e.macros {
		if g := e.guards(m.Expr, m.prg, m.Name); g != nil {
			m.prg = g
		}
	}
	for _, r := range e.rules {
		if r.cond == nil || strings.TrimSpace(r.Condition) == "" {
			continue
		}
		if g := e.guards(r.Condition, r.cond, ""); g != nil {
			r.cond = g
		}
	}
}

// guards returns prg wrapped with the guard conjuncts of expr, or nil when
// it has none. self is the name of the macro being guarded (a macro never
// guards itself).
func (e *Engine) guards(expr string, prg cel.Program, self string) *guardedProgram {
	ast, iss := e.env.Compile(expr)
	if iss.Err() != nil {
		return nil
	}
	native := ast.NativeRep()
	refs := native.ReferenceMap()
	name := func(x celast.Expr) string {
		if rf, ok := refs[x.ID()]; ok && rf.Name != "" {
			return rf.Name
		}
		if x.Kind() == celast.IdentKind {
			return x.AsIdent()
		}
		return ""
	}
	// stringField is the field of a string-typed event variable.
	stringVar := func(x celast.Expr) (fieldID, bool) {
		f, known := fieldByVar[name(x)]
		return f, known && eventFields[f].typ == cel.StringType && f != fTransferReason
	}
	literal := func(x celast.Expr) (string, bool) {
		if x.Kind() != celast.LiteralKind {
			return "", false
		}
		lit, ok := x.AsLiteral().(types.String)
		return string(lit), ok
	}
	// literals is the strings of a list literal or of a named list.
	literals := func(x celast.Expr) ([]string, bool) {
		switch x.Kind() {
		case celast.ListKind:
			var out []string
			for _, el := range x.AsList().Elements() {
				s, ok := literal(el)
				if !ok {
					return nil, false
				}
				out = append(out, s)
			}
			return out, true
		case celast.IdentKind, celast.SelectKind:
			rf, ok := refs[x.ID()]
			if !ok || rf.Value == nil {
				return nil, false
			}
			l, ok := rf.Value.Value().([]string)
			return l, ok
		}
		return nil, false
	}
	g := &guardedProgram{Program: prg}
	conjuncts := 0 // top-level conjuncts that are not guards
	var walk func(x celast.Expr)
	walk = func(x celast.Expr) {
		guards := len(g.macros) + len(g.fields)
		defer func() {
			if x.Kind() == celast.CallKind && x.AsCall().FunctionName() == operators.LogicalAnd {
				return
			}
			if len(g.macros)+len(g.fields) == guards {
				conjuncts++
			}
		}()
		switch x.Kind() {
		case celast.CallKind:
			c := x.AsCall()
			args := c.Args()
			switch fn := c.FunctionName(); {
			case fn == operators.LogicalAnd:
				for _, arg := range args {
					walk(arg)
				}
			case (fn == operators.Equals || fn == operators.NotEquals) && len(args) == 2:
				l, v := args[0], args[1]
				if l.Kind() == celast.LiteralKind {
					l, v = v, l
				}
				lit, ok := literal(v)
				f, isField := stringVar(l)
				if ok && isField {
					op := guardEq
					if fn == operators.NotEquals {
						op = guardNe
					}
					g.fields = append(g.fields, fieldGuard{f: f, op: op, value: lit})
				}
			case (fn == operators.In || fn == operators.OldIn) && len(args) == 2:
				f, isField := stringVar(args[0])
				set, ok := literals(args[1])
				if isField && ok {
					g.fields = append(g.fields, fieldGuard{f: f, op: guardIn, set: set})
				}
			}
		case celast.IdentKind:
			if n := name(x); n != self {
				if i, ok := e.macroIdx[n]; ok {
					g.macros = append(g.macros, i)
				}
			}
		}
	}
	walk(native.Expr())
	if len(g.macros)+len(g.fields) == 0 {
		return nil
	}
	g.complete = conjuncts == 0
	return g
}
