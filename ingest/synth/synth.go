// Package synth generates a deterministic, realistic synthetic stream of
// v1 data-access and data-share events (as JSON), for the demo, the
// integration tests and the benchmarks.
//
// The simulated world is a consumer company with a subscription product and
// a telehealth line: a few hundred employees (support agents, analysts,
// engineers, marketing, HR, finance, sales, clinical staff, ...) with
// working hours in their own time zones, about forty service accounts that
// emit much of the stream (keys are skewed: one service emits about a third
// of all events), dozens of systems and datasets labelled with Fides-style
// data categories, data uses and subject kinds, a partner registry of
// approved partners and processors with agreements, a daily rhythm, nightly
// legitimate batch exports (svc-nightly-backup between 02:00 and 03:00 UTC
// and svc-dwh-etl between 01:00 and 02:00 UTC), and, when asked, a few
// injected incidents whose ground truth Incidents returns.
//
// Normal traffic is built to stay quiet under the demo's rules: no actor
// other than svc-nightly-backup and svc-dwh-etl moves more than 4,000
// records (users: 2,000) in any clock hour, so never 10,000 in any sliding
// hour, and every share goes to a domain of an approved partner within one
// of its valid agreements (categories, uses, channels, countries) or to the
// data subject.
//
// Config.Scenario selects the stream: the foundation's single day (the
// default, unchanged byte for byte), or ScenarioFull: eight days whose
// first seven are a learning period of normal traffic only (a working
// week with a campaign day and a month-end close at 2.5 times the
// departments' volume, then a weekend), in which every actor performs each
// of its habitual data moves at least once on its first working hour, and
// whose last day (Monday 2026-03-02 by default) carries an incident for
// every built-in detection (FullIncidentPlan) amid normal traffic.
//
// Config.TargetSize shapes every event toward a size in bytes (a leaner or
// a more verbose producer of the same record, see size.go) for measuring
// how cost grows with the event size; off, the stream is unchanged.
//
// The same Config always yields the same bytes. The package deliberately
// does not know the rules or the decoder: tests check it against them.
// A Generator is not safe for concurrent use.
package synth

import (
	"fmt"
	"slices"
	"time"
)

// Config describes the stream to generate. The zero value of each field
// means its default.
type Config struct {
	// Seed makes the stream reproducible: same Config, same bytes.
	// Default 1.
	Seed int64
	// Start is the event time of the beginning of the stream. Default
	// DefaultStart (Monday 2026-03-02T00:00:00Z).
	Start time.Time
	// Duration is the simulated event-time span. Default 24h.
	Duration time.Duration
	// Events is the number of normal (background) events; nightly batch
	// jobs and incidents add a few hundred more per day. Default 1,000,000.
	Events int
	// Employees is the number of employees. Default 400; at least 20.
	Employees int
	// Services is the number of service accounts. Default 40; at least 12
	// (the named core services).
	Services int
	// Customers is the size of the customer population subject ids are
	// drawn from ("cust-0000000" ...). Default 2,000,000.
	Customers int
	// Incidents turns on the injected incidents of IncidentPlan.
	// Default false.
	Incidents bool
	// IncidentPlan lists the incidents to inject (when Incidents is true),
	// each at an offset from Start that must lie within Duration. Default:
	// the scenario's plan (DefaultIncidentPlan() for the foundation,
	// FullIncidentPlan(days) for the full scenario) filtered to the specs
	// that fall within Duration.
	IncidentPlan []IncidentSpec
	// Scenario selects the kind of stream: ScenarioFoundation (default),
	// one day with four incidents, or ScenarioFull, several days with a
	// learning period, seasonal peaks and an incident for every built-in
	// detection on the last day. See Scenario.
	Scenario Scenario
	// TargetSize, when not 0, shapes every event toward this many bytes
	// of JSON (between MinTargetSize and MaxTargetSize) with the fields
	// producers of different verbosity fill or leave out: see the doc
	// comment of size.go. Default 0: events as they are, about 600 B on
	// average (450 to 860 B for 98% of them).
	TargetSize int
}

// DefaultStart is the default start of the simulated period: a Monday.
var DefaultStart = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// Defaults.
const (
	DefaultDuration  = 24 * time.Hour
	DefaultEvents    = 1_000_000
	DefaultEmployees = 400
	DefaultServices  = 40
	DefaultCustomers = 2_000_000
	DefaultSeed      = 1
)

// Limits on the configuration.
const (
	MinEmployees = 20
	MinServices  = 12
	MaxDuration  = 366 * 24 * time.Hour
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Scenario == "" {
		c.Scenario = ScenarioFoundation
	}
	full := c.Scenario == ScenarioFull
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
		if full {
			c.Start = DefaultFullStart
		}
	}
	c.Start = c.Start.UTC()
	if c.Duration == 0 {
		c.Duration = DefaultDuration
		if full {
			c.Duration = DefaultFullDays * 24 * time.Hour
		}
	}
	if c.Events == 0 {
		c.Events = DefaultEvents
		if full {
			c.Events = DefaultEvents * max(1, int(c.Duration/(24*time.Hour)))
		}
	}
	if c.Employees == 0 {
		c.Employees = DefaultEmployees
	}
	if c.Services == 0 {
		c.Services = DefaultServices
	}
	if c.Customers == 0 {
		c.Customers = DefaultCustomers
	}
	if c.Incidents && c.IncidentPlan == nil {
		plan := DefaultIncidentPlan()
		if full {
			plan = FullIncidentPlan(c.days())
		}
		for _, s := range plan {
			if s.At < c.Duration {
				c.IncidentPlan = append(c.IncidentPlan, s)
			}
		}
	}
	return c
}

// Validate reports the first problem with the configuration, after
// defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Duration < time.Minute || c.Duration > MaxDuration:
		return fmt.Errorf("duration %s: must be between 1m and %s", c.Duration, MaxDuration)
	case c.Events < 0:
		return fmt.Errorf("events %d: must not be negative", c.Events)
	case c.Employees < MinEmployees:
		return fmt.Errorf("employees %d: must be at least %d", c.Employees, MinEmployees)
	case c.Services < MinServices:
		return fmt.Errorf("services %d: must be at least %d", c.Services, MinServices)
	case c.Customers < 1000:
		return fmt.Errorf("customers %d: must be at least 1000", c.Customers)
	case c.Scenario != ScenarioFoundation && c.Scenario != ScenarioFull:
		return fmt.Errorf("scenario %q: must be %q or %q", c.Scenario, ScenarioFoundation, ScenarioFull)
	case c.TargetSize != 0 && (c.TargetSize < MinTargetSize || c.TargetSize > MaxTargetSize):
		return fmt.Errorf("target size %d: must be 0 (off) or between %d and %d bytes", c.TargetSize, MinTargetSize, MaxTargetSize)
	case c.Scenario == ScenarioFull && c.Duration < 48*time.Hour:
		return fmt.Errorf("duration %s: the full scenario needs at least 48h (a learning day, then the incident day)", c.Duration)
	}
	if c.Incidents {
		for i, s := range c.IncidentPlan {
			if _, ok := scenarios[s.Kind]; !ok {
				return fmt.Errorf("incident %d: unknown kind %q", i, s.Kind)
			}
			if s.At < 0 || s.At >= c.Duration {
				return fmt.Errorf("incident %d (%s): at %s lies outside the duration %s", i, s.Kind, s.At, c.Duration)
			}
			if check := scenarioChecks[s.Kind]; check != nil {
				if err := check(c.Start.Add(s.At)); err != nil {
					return fmt.Errorf("incident %d (%s): %w", i, s.Kind, err)
				}
			}
		}
	}
	return nil
}

// days is the number of whole simulated days (at least 1).
func (c Config) days() int { return max(1, int(c.Duration/(24*time.Hour))) }

// Generator produces the stream. Build it with New; it is not safe for
// concurrent use.
type Generator struct {
	cfg       Config
	w         *world
	bg        background
	specials  []*ev // sorted by time: batch jobs and incidents
	nextSpec  int
	incidents []Incident
	subjects  []SubjectMessage
	partners  *PartnerFile
	scratch   ev
	emitted   int
	sizer     *sizer // nil unless Config.TargetSize is set
}

// New builds the world and the schedule for c. It fails when c is invalid.
func New(c Config) (*Generator, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("synth config: %w", err)
	}
	c = c.withDefaults()
	g := &Generator{cfg: c}
	if c.TargetSize != 0 {
		g.sizer = &sizer{target: c.TargetSize}
	}
	g.w = buildWorld(c)
	g.partners = g.w.partnerFile()
	g.bg.init(g.w, c)
	g.specials = g.w.batchJobs(c)
	var statuses []SubjectMessage // the incidents' own subject statuses
	if c.Incidents {
		for i, s := range c.IncidentPlan {
			g.incidents = append(g.incidents, g.w.inject(c, &g.bg, i, s, &g.specials, &statuses))
		}
	}
	if c.Scenario == ScenarioFull {
		g.specials = append(g.specials, g.w.habits(c)...)
	}
	sortEvents(g.specials)
	slices.SortStableFunc(g.incidents, func(a, b Incident) int { return a.Start.Compare(b.Start) })
	g.subjects = g.w.subjectStatuses(c)
	if len(statuses) > 0 {
		g.subjects = append(g.subjects, statuses...)
		slices.SortStableFunc(g.subjects, func(a, b SubjectMessage) int { return a.Time.Compare(b.Time) })
	}
	return g, nil
}

// Config returns the configuration in force, defaults applied.
func (g *Generator) Config() Config { return g.cfg }

// Total returns how many events Next yields in all: the normal events plus
// batch jobs and incidents.
func (g *Generator) Total() int { return g.cfg.Events + len(g.specials) }

// Emitted returns how many events Next has yielded so far.
func (g *Generator) Emitted() int { return g.emitted }

// Next returns the next event in event-time order: key is the actor id
// (owned by the Generator: do not modify it), value is the event's JSON
// appended to buf[:0], so callers can reuse one buffer. ok is false when
// the stream is exhausted.
func (g *Generator) Next(buf []byte) (key, value []byte, ok bool) {
	var e *ev
	if g.nextSpec < len(g.specials) {
		s := g.specials[g.nextSpec]
		if !g.bg.more() || s.t < g.bg.peek() {
			e = s
			g.nextSpec++
		}
	}
	if e == nil {
		if !g.bg.more() {
			return nil, buf[:0], false
		}
		e = &g.scratch
		g.bg.next(e)
	}
	g.emitted++
	if g.sizer != nil {
		return e.actor.key, g.sizer.appendSized(buf[:0], e), true
	}
	return e.actor.key, appendEvent(buf[:0], e, nil), true
}

// Incidents returns the injected incidents (ground truth), in time order.
// Empty unless Config.Incidents is set.
func (g *Generator) Incidents() []Incident { return g.incidents }

// Partners returns the partner registry the generator's shares are
// consistent with.
func (g *Generator) Partners() *PartnerFile { return g.partners }

// SubjectStatuses returns a small stream of subject status changes for the
// subjects topic, in time order. The subjects named there never appear in
// normal shares, so a rule on opted-out subjects stays quiet on normal
// traffic; only the subject_opted_out and subject_closed incidents share
// data of subjects whose status changed earlier (Incident.Subjects).
func (g *Generator) SubjectStatuses() []SubjectMessage { return g.subjects }

// Peaks returns the seasonal peak days of the period (full scenario only):
// days on which some departments work at a multiple of their usual volume.
func (g *Generator) Peaks() []Peak { return g.bg.peakList() }

// SubjectMessage is one message of the subjects topic.
type SubjectMessage struct {
	// Time is when the status took effect.
	Time time.Time
	// Key is the subject id, the message key.
	Key []byte
	// Value is the JSON object {subject, time, status, uses}.
	Value []byte
}
