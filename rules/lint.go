package rules

import (
	"fmt"
	"regexp"
	"sort"
	"time"
)

// Lint reports the problems of the rules in force that do not stop them
// from loading, each as "file:line: message": exceptions that have expired
// at now or can never apply (a condition that is always false, or the
// same condition as an earlier exception of the rule), lists and macros
// no condition uses, and rules without a test case. Errors that stop the
// rules from loading (schema, CEL type check, unknown list or macro) are
// Compile's.
func (e *Engine) Lint(now time.Time) []string {
	var out []string
	add := func(file string, line int, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s:%d: %s", file, line, fmt.Sprintf(format, args...)))
	}
	used := map[string]bool{}
	ident := regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
	note := func(expr string) {
		for _, w := range ident.FindAllString(expr, -1) {
			used[w] = true
		}
	}
	for _, m := range e.macros {
		note(m.Expr)
	}
	tested := map[string]bool{}
	for _, f := range e.files {
		if len(f.Tests) > 0 {
			for _, r := range f.Rules {
				tested[r.ID] = true
			}
		}
	}
	for _, r := range e.rules {
		note(r.Condition)
		for _, st := range r.Steps {
			note(st.Condition)
		}
		seen := map[string]int{}
		for _, x := range r.exceptions {
			note(x.When)
			switch {
			case x.constFalse:
				add(r.File, x.Line, "rule %s: unreachable exception: its condition is always false", r.ID)
			case seen[x.When] > 0:
				add(r.File, x.Line, "rule %s: unreachable exception: the exception at line %d has the same condition", r.ID, seen[x.When])
			}
			if seen[x.When] == 0 {
				seen[x.When] = x.Line
			}
			if !x.AppliesAt(now) {
				add(r.File, x.Line, "rule %s: exception expired on %s (owner %s): it no longer applies; renew or remove it", r.ID, x.Expires.Format("2006-01-02"), x.Owner)
			}
		}
		if r.Kind == KindBaseline && r.seed == nil {
			add(r.File, r.Line, "rule %s: its baseline history cannot be seeded from storage (%s): after a restart it is learnt again from live events", r.ID, r.unseedable)
		}
		if !tested[r.ID] {
			add(r.File, r.Line, "rule %s has no test case in its file", r.ID)
		}
	}
	for _, f := range e.files {
		for _, l := range f.Lists {
			if !used[l.Name] {
				add(l.File, l.Line, "list %s is not used by any condition", l.Name)
			}
		}
		for _, m := range f.Macros {
			if !used[m.Name] {
				add(m.File, m.Line, "macro %s is not used by any condition", m.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}
