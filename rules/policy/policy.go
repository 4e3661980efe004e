// Package policy is the privacy statement as code: a YAML file lists the
// promises of the published privacy statement, each quoted verbatim with
// the checks that translate it into conditions on events, and Check tells
// which promises an event breaks.
//
// The vocabulary is deliberately small and declarative (types, actions,
// data categories and purposes matched hierarchically, subject kinds,
// channels, encryption, and the recipient's kind, country, partner kind,
// partner tags and agreement) so that a privacy officer can read and own
// the file; richer conditions belong in the CEL rules of package rules.
// The file format is documented in docs/policy.md.
//
// Policies are immutable once parsed and safe for concurrent use. The
// package reads no Kafka or ClickHouse, and does not decide severities or
// alert identities: callers turn Violations into alerts.
package policy

import (
	"fmt"
	"os"
	"strings"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/partner"
)

// Policy is a parsed, validated privacy statement.
type Policy struct {
	source   string
	title    string
	url      string
	version  string
	promises []*Promise
}

// Promise is one promise of the privacy statement.
type Promise struct {
	// ID is the promise's stable id, e.g. "no-sale".
	ID string
	// Text is the promise quoted verbatim from the published statement.
	Text string
	// Line is the line of the promise in its file.
	Line int

	checks []check
}

// Violation is one promise an event breaks.
type Violation struct {
	// PromiseID is the id of the promise broken.
	PromiseID string
	// Text is the promise, quoted verbatim.
	Text string
	// Reason says what in the event broke it, for a privacy officer, e.g.
	// "category user.location.precise.gps shared with Adnexa Advertising
	// GmbH (adnexa, tagged advertiser)".
	Reason string
}

// Load reads and validates the policy file at path.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policy %s: %w", path, err)
	}
	return Parse(path, data)
}

// Source is the file name the policy was parsed from.
func (p *Policy) Source() string { return p.source }

// Title is the statement's title ("" if not given).
func (p *Policy) Title() string { return p.title }

// URL is where the statement is published ("" if not given).
func (p *Policy) URL() string { return p.url }

// Version is the statement's version or date ("" if not given).
func (p *Policy) Version() string { return p.version }

// Promises returns the promises in file order. The caller must not modify
// them.
func (p *Policy) Promises() []*Promise { return p.promises }

// Check returns the promises ev breaks, in file order, each once (the
// first of its checks that fails gives the reason); nil when it breaks
// none. Only successful events are checked: a denied or failed action
// moved no data and breaks no promise. reg resolves the recipient to a
// partner for the recipient's partner kind, tags and agreement; with a nil
// registry every recipient is unknown. Check does not allocate unless a
// promise is broken.
func (p *Policy) Check(ev *event.Event, reg *partner.Registry) []Violation {
	if p == nil || ev.Outcome != event.OutcomeSuccess && ev.Outcome != "" {
		return nil
	}
	x := evalCtx{ev: ev, reg: reg}
	var out []Violation
	for _, pr := range p.promises {
		for i := range pr.checks {
			c := &pr.checks[i]
			if !c.when.match(&x) {
				continue
			}
			if c.forbid {
				out = append(out, Violation{PromiseID: pr.ID, Text: pr.Text, Reason: c.when.describe(&x)})
				break
			}
			if f := c.require.failing(&x); f != 0 {
				out = append(out, Violation{PromiseID: pr.ID, Text: pr.Text, Reason: c.require.explainFailure(&x, f, c.when.describe(&x))})
				break
			}
		}
	}
	return out
}

// check is one compiled check: events matching when break the promise if
// forbid is set, or if they fail require.
type check struct {
	when    cond
	forbid  bool
	require cond
}

// evalCtx is one event under evaluation, with the partner resolved lazily.
type evalCtx struct {
	ev       *event.Event
	reg      *partner.Registry
	p        *partner.Partner
	resolved bool
}

func (x *evalCtx) partner() *partner.Partner {
	if !x.resolved {
		x.resolved = true
		if x.reg != nil && x.ev.Type == event.TypeShare {
			x.p, _ = x.reg.Resolve(&x.ev.Recipient)
		}
	}
	return x.p
}

// recipient names the recipient for reasons.
func (x *evalCtx) recipient() string {
	rc := &x.ev.Recipient
	if p := x.partner(); p != nil {
		s := p.Name + " (" + p.ID
		if len(p.Tags) > 0 {
			tags := make([]string, len(p.Tags))
			for i, t := range p.Tags {
				tags[i] = string(t)
			}
			s += ", tagged " + strings.Join(tags, ", ")
		}
		return s + ")"
	}
	name := rc.Domain
	if name == "" {
		name = rc.ID
	}
	if name == "" {
		name = rc.Name
	}
	if name == "" {
		name = "an unnamed recipient"
	}
	if rc.Kind != "" {
		name += " (" + string(rc.Kind) + ")"
	}
	return name
}
