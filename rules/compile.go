package rules

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/custos-privacy/custos/rules/consent"
	"github.com/custos-privacy/custos/rules/internal/strictyaml"
	"github.com/custos-privacy/custos/rules/partner"
	"github.com/custos-privacy/custos/rules/policy"
)

// Options are what an engine needs besides its rule files.
type Options struct {
	// Registry is the partner registry the partner.* functions and
	// event.transfer.gaps look up (nil: no partner is known).
	Registry *partner.Registry
	// Policy is the privacy statement event.policy.* and policy.text check
	// (nil: no promises).
	Policy *policy.Policy
	// Consent is the subjects' consent and account status event.consent.*
	// reads (nil: no subject has a status). It is shared and keeps
	// changing: reloading the rules passes the same registry on.
	Consent *consent.Registry
}

// Load builds an engine from the shipped rules and the rule files of dir
// (none when dir is empty).
func Load(dir string, opts Options) (*Engine, error) {
	srcs := Builtin()
	if dir != "" {
		user, err := ReadDir(dir)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, user...)
	}
	return Compile(srcs, opts)
}

// Compile parses, type-checks and compiles the rule files. A user file
// (Source.Builtin false) may replace a shipped rule, list or macro by
// defining one with the same name; any other duplicate is an error. Every
// problem is reported as file:line: cause.
func Compile(srcs []Source, opts Options) (*Engine, error) {
	var errs strictyaml.Errors
	add := func(err error) {
		var es strictyaml.Errors
		var e *strictyaml.Error
		switch {
		case errors.As(err, &es):
			errs = append(errs, es...)
		case errors.As(err, &e):
			errs = append(errs, e)
		default:
			errs = append(errs, &strictyaml.Error{Msg: err.Error()})
		}
	}
	var files []*File
	for _, s := range srcs {
		f, err := ParseFile(s)
		if err != nil {
			add(err)
			continue
		}
		files = append(files, f)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	lists, macros, specs, err := merge(files)
	if err != nil {
		return nil, err
	}
	e := &Engine{reg: opts.Registry, pol: opts.Policy, consent: opts.Consent, files: files, byID: map[string]*rule{}, macroIdx: map[string]int{}}
	envOpts := []cel.EnvOption{cel.CrossTypeNumericComparisons(true)}
	for i := range eventFields {
		f := &eventFields[i]
		envOpts = append(envOpts, cel.VariableWithDoc("event."+f.path, f.typ, f.doc))
	}
	envOpts = append(envOpts, celFunctions(opts.Registry)...)
	envOpts = append(envOpts, policyFunctions(opts.Policy)...)
	for _, l := range lists {
		envOpts = append(envOpts, cel.Constant(l.Name, stringList, types.NewStringList(types.DefaultTypeAdapter, l.Items)))
	}
	env, err := cel.NewEnv(envOpts...)
	if err != nil {
		return nil, fmt.Errorf("rules: CEL environment: %w", err)
	}
	for _, m := range macros {
		ast, iss := env.Compile(m.Expr)
		if iss.Err() != nil {
			errs = append(errs, celErrors(m.File, m.expr, "macro "+m.Name, m.Expr, iss)...)
			continue
		}
		prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			errs = append(errs, errAt(m.File, m.Line, "macro %s: %v", m.Name, err))
			continue
		}
		e.macroIdx[m.Name] = len(e.macros)
		e.macros = append(e.macros, &compiledMacro{Macro: m, prg: prg})
		if env, err = env.Extend(cel.Variable(m.Name, ast.OutputType())); err != nil {
			return nil, fmt.Errorf("rules: declare macro %s: %w", m.Name, err)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	e.env = env
	for _, spec := range specs {
		ru, es := e.compileRule(spec)
		if len(es) > 0 {
			errs = append(errs, es...)
			continue
		}
		if !spec.Enabled {
			continue
		}
		ru.idx = len(e.rules)
		e.rules = append(e.rules, ru)
		e.byID[ru.ID] = ru
	}
	if len(errs) > 0 {
		return nil, errs
	}
	e.addGuards()
	e.finish()
	return e, nil
}

// merge combines the files' lists, macros and rules, user definitions
// replacing shipped ones of the same name.
func merge(files []*File) ([]*List, []*Macro, []*Rule, error) {
	var errs strictyaml.Errors
	type where struct {
		file    string
		line    int
		builtin bool
		idx     int
	}
	var lists []*List
	var macros []*Macro
	var specs []*Rule
	names := map[string]where{} // lists and macros share a namespace
	ids := map[string]where{}
	for _, f := range files {
		define := func(kind, name, file string, line int, idx int, set func(i int)) {
			if prev, ok := names[name]; ok {
				if prev.builtin && !f.Builtin {
					set(prev.idx)
					return
				}
				errs = append(errs, errAt(file, line, "%s %q is already defined at %s:%d", kind, name, prev.file, prev.line))
				return
			}
			names[name] = where{file, line, f.Builtin, idx}
			set(-1)
		}
		for _, l := range f.Lists {
			define("list", l.Name, l.File, l.Line, len(lists), func(i int) {
				if i >= 0 && i < len(lists) {
					lists[i] = l
				} else {
					lists = append(lists, l)
				}
			})
		}
		for _, m := range f.Macros {
			define("macro", m.Name, m.File, m.Line, len(macros), func(i int) {
				if i >= 0 && i < len(macros) {
					macros[i] = m
				} else {
					macros = append(macros, m)
				}
			})
		}
		for _, r := range f.Rules {
			if prev, ok := ids[r.ID]; ok {
				if prev.builtin && !f.Builtin {
					specs[prev.idx] = r
					continue
				}
				errs = append(errs, errAt(r.File, r.Line, "rule id %q is already used at %s:%d", r.ID, prev.file, prev.line))
				continue
			}
			ids[r.ID] = where{r.File, r.Line, f.Builtin, len(specs)}
			specs = append(specs, r)
		}
	}
	if len(errs) > 0 {
		return nil, nil, nil, errs
	}
	return lists, macros, specs, nil
}

// celErrors converts CEL issues to file:line errors.
func celErrors(file string, p pos, what, expr string, iss *cel.Issues) strictyaml.Errors {
	var out strictyaml.Errors
	lines := strings.Split(expr, "\n")
	for _, e := range iss.Errors() {
		line, msg := p.line, e.Message
		if l := e.Location.Line(); l > 0 {
			line = p.lineOf(l)
			if c := e.Location.Column(); l <= len(lines) && c >= 0 && c < len(lines[l-1]) {
				if ref := dottedAt(lines[l-1][c:]); strings.HasPrefix(ref, "event.") && strings.Contains(msg, "undeclared reference") {
					msg = fmt.Sprintf("the event has no field %q (fields: %s)", ref, fieldNames())
				}
			}
		}
		out = append(out, errAt(file, line, "%s: %s", what, msg))
	}
	if len(out) == 0 {
		out = append(out, errAt(file, p.line, "%s: %v", what, iss.Err()))
	}
	return out
}

func dottedAt(s string) string {
	i := 0
	for i < len(s) && (s[i] == '.' || s[i] == '_' || 'a' <= s[i] && s[i] <= 'z' || 'A' <= s[i] && s[i] <= 'Z' || '0' <= s[i] && s[i] <= '9') {
		i++
	}
	return s[:i]
}

func fieldNames() string {
	names := make([]string, len(eventFields))
	for i := range eventFields {
		names[i] = "event." + eventFields[i].path
	}
	return strings.Join(names, ", ")
}

// compileBool compiles a CEL condition that must be a bool.
func (e *Engine) compileBool(file string, p pos, what, expr string) (cel.Program, *cel.Ast, strictyaml.Errors) {
	ast, iss := e.env.Compile(expr)
	if iss.Err() != nil {
		return nil, nil, celErrors(file, p, what, expr, iss)
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, nil, strictyaml.Errors{errAt(file, p.line, "%s must be true or false, not %s", what, ast.OutputType())}
	}
	prg, err := e.env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, nil, strictyaml.Errors{errAt(file, p.line, "%s: %v", what, err)}
	}
	return prg, ast, nil
}

func (e *Engine) compileRule(spec *Rule) (*rule, strictyaml.Errors) {
	var errs strictyaml.Errors
	ru := &rule{Rule: spec, eng: e, window: int64(spec.Window), lateness: int64(spec.AllowedLateness),
		suppress: int64(spec.Suppress), learning: int64(spec.Learning), retention: int64(DefaultTermRetention),
		threshold: spec.Threshold, evidence: spec.Evidence}
	if ru.evidence < 0 {
		ru.evidence = DefaultEvidenceSamples
	}
	what := "rule " + spec.ID
	if spec.Kind != KindSequence {
		prg, _, es := e.compileBool(spec.File, spec.cond, what+" condition", spec.Condition)
		errs = append(errs, es...)
		ru.cond = prg
	}
	for _, st := range spec.Steps {
		prg, _, es := e.compileBool(spec.File, st.cond, what+" step "+st.Name, st.Condition)
		errs = append(errs, es...)
		ru.steps = append(ru.steps, prg)
	}
	for i := range spec.Exceptions {
		x := &spec.Exceptions[i]
		prg, ast, es := e.compileBool(spec.File, x.when, what+" exception", x.When)
		errs = append(errs, es...)
		cx := &exception{Exception: x, prg: prg}
		if ast != nil {
			cx.constFalse = isConstFalse(ast)
		}
		ru.exceptions = append(ru.exceptions, cx)
	}
	for _, g := range spec.GroupBy {
		f, _ := fieldByPath(g)
		ru.groupBy = append(ru.groupBy, f)
	}
	for _, t := range spec.Terms {
		f, _ := fieldByPath(t)
		ru.terms = append(ru.terms, f)
	}
	if spec.Kind == KindThreshold || spec.Kind == KindBaseline {
		m := aggPattern.FindStringSubmatch(spec.Aggregate)
		switch {
		case m[1] == "count":
			ru.agg = aggCount
		case m[2] == "records":
			ru.agg = aggRecords
		case m[2] == "bytes":
			ru.agg = aggBytes
		default:
			ru.agg = aggDistinct
			ru.distinct, _ = fieldByPath(m[3])
		}
		if spec.Kind == KindThreshold {
			ru.width = ru.window / Buckets
		}
	}
	if spec.Kind == KindBaseline {
		e.compileBaseline(ru)
	}
	tmpl, err := template.New(spec.ID).Funcs(summaryFuncs).Option("missingkey=error").Parse(spec.Summary)
	if err != nil {
		errs = append(errs, errAt(spec.File, spec.Line, "%s summary: %v", what, err))
	} else if err := tmpl.Execute(&strings.Builder{}, sampleSummary()); err != nil {
		errs = append(errs, errAt(spec.File, spec.Line, "%s summary: %v", what, err))
	}
	ru.summary = tmpl
	return ru, errs
}

// isConstFalse reports whether a checked expression is the literal false
// (after constant folding).
func isConstFalse(ast *cel.Ast) bool {
	s, err := cel.AstToString(ast)
	return err == nil && strings.TrimSpace(s) == "false"
}

// finish computes the engine-wide durations.
func (e *Engine) finish() {
	var longest int64
	for _, r := range e.rules {
		switch r.Kind {
		case KindThreshold:
			longest = max(longest, r.window+r.lateness)
		case KindSequence:
			longest = max(longest, r.window)
		}
		longest = max(longest, r.suppress)
		if r.width > 0 && (e.sweepEvery == 0 || r.width < e.sweepEvery) {
			e.sweepEvery = r.width
		}
	}
	if e.sweepEvery == 0 {
		e.sweepEvery = int64(5 * time.Minute)
	}
	e.lookback = time.Duration(0)
	for _, r := range e.rules {
		switch r.Kind {
		case KindThreshold:
			e.lookback = max(e.lookback, time.Duration(r.window+r.lateness))
		case KindSequence:
			e.lookback = max(e.lookback, time.Duration(r.window))
		}
	}
	e.retain = max(2*longest, int64(48*time.Hour))
}

// ExpiredException is an exception that no longer applies, with its rule.
type ExpiredException struct {
	// Rule is the rule id the exception belongs to.
	Rule string
	Exception
}

// ExpiredExceptions lists the exceptions of the rules in force that no
// longer apply at t, sorted by expiry, for the privacy office to renew or
// remove.
func (e *Engine) ExpiredExceptions(at time.Time) []ExpiredException {
	var out []ExpiredException
	for _, r := range e.rules {
		for _, x := range r.exceptions {
			if !x.AppliesAt(at) {
				out = append(out, ExpiredException{Rule: r.ID, Exception: *x.Exception})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Expires.Before(out[j].Expires) })
	return out
}
