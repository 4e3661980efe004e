package rules

import (
	_ "embed"
	"fmt"
	"os"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/internal/strictyaml"
)

// foundationYAML is the shipped configuration; DefaultConfig parses it.
//
//go:embed foundation.yml
var foundationYAML []byte

// FoundationFile is the name DefaultConfig reports in errors.
const FoundationFile = "rules/foundation.yml"

// Built-in defaults for keys a configuration file leaves out.
const (
	DefaultThresholdRecords = 10000
	DefaultWindow           = time.Hour
	DefaultEvidenceSamples  = 10
	DefaultAllowedLateness  = 10 * time.Minute
	DefaultSeverity         = SeverityHigh
)

// DefaultActions are the actions whose records count towards bulk export
// by default.
var DefaultActions = []event.Action{event.ActionExport, event.ActionDownload, event.ActionTransfer}

// Buckets is the number of buckets a bulk-export window is cut into: the
// window slides in steps of Window/Buckets.
const Buckets = 12

// maxEvidenceSamples bounds Config.EvidenceSamples.
const maxEvidenceSamples = 100

// Config is the configuration of the rule engine.
type Config struct {
	// BulkExport configures rule bulk_export.
	BulkExport BulkExportConfig
	// UnknownRecipient configures rule unknown_recipient.
	UnknownRecipient UnknownRecipientConfig
	// EvidenceSamples is how many sample event ids an alert carries
	// (default 10, at most 100).
	EvidenceSamples int
	// AllowedLateness is how far behind the newest event of the same actor
	// an event may be and still count in its window (default 10m, at most
	// BulkExport.Window/4). Later events are counted by State.Late.
	AllowedLateness time.Duration
}

// BulkExportConfig configures rule bulk_export: an actor's records moved
// out by the given actions, summed over a sliding event-time window, reach
// a threshold.
type BulkExportConfig struct {
	// Enabled turns the rule on (default true).
	Enabled bool
	// ThresholdRecords is the records total that raises an alert (default
	// 10,000).
	ThresholdRecords int64
	// Window is the sliding window, a whole number of minutes (default 1h).
	// It slides in steps of Window/12.
	Window time.Duration
	// Actions are the actions whose records count (default export,
	// download, transfer).
	Actions []event.Action
	// Severity of the alerts (default high).
	Severity Severity
	// Exceptions are actors whose bulk exports are expected, until they
	// expire.
	Exceptions []Exception
}

// UnknownRecipientConfig configures rule unknown_recipient.
type UnknownRecipientConfig struct {
	// Enabled turns the rule on (default true).
	Enabled bool
	// Severity of the alerts (default high).
	Severity Severity
}

// Exception is an allow-list entry: an actor whose alerts a rule does not
// raise, for a stated reason, owned by someone, until an expiry date.
type Exception struct {
	// Actor is the actor id the exception covers.
	Actor string
	// Reason says why the activity is legitimate.
	Reason string
	// Owner is who answers for the exception.
	Owner string
	// Expires is the last day (UTC, inclusive) the exception applies.
	Expires time.Time
	// Line is the line of the entry in its file (0 if unknown).
	Line int
}

// AppliesAt reports whether the exception still applies at event time t.
func (x Exception) AppliesAt(t time.Time) bool { return t.Before(x.Expires.AddDate(0, 0, 1)) }

// DefaultConfig returns the shipped configuration, rules/foundation.yml.
func DefaultConfig() Config {
	cfg, err := ParseConfig(FoundationFile, foundationYAML)
	if err != nil {
		panic(fmt.Sprintf("rules: shipped %s is invalid: %v", FoundationFile, err))
	}
	return cfg
}

// baseConfig holds the built-in defaults that absent keys take.
func baseConfig() Config {
	return Config{
		BulkExport: BulkExportConfig{
			Enabled:          true,
			ThresholdRecords: DefaultThresholdRecords,
			Window:           DefaultWindow,
			Actions:          append([]event.Action(nil), DefaultActions...),
			Severity:         DefaultSeverity,
		},
		UnknownRecipient: UnknownRecipientConfig{Enabled: true, Severity: DefaultSeverity},
		EvidenceSamples:  DefaultEvidenceSamples,
		AllowedLateness:  DefaultAllowedLateness,
	}
}

// LoadConfig reads and validates the configuration file at path.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("load rules config %s: %w", path, err)
	}
	return ParseConfig(path, data)
}

// ParseConfig reads and validates a configuration from data; name is the
// file name used in errors, which read file:line:column: cause. Absent keys
// take the built-in defaults (those of DefaultConfig, without its
// exceptions).
func ParseConfig(name string, data []byte) (Config, error) {
	r, root, err := strictyaml.Parse(name, data)
	if err != nil {
		return Config{}, err
	}
	cfg := baseConfig()
	var windowNode, latenessNode *yaml.Node
	r.Mapping(root, "config", map[string]strictyaml.Field{
		"evidence_samples": {Read: func(v *yaml.Node) {
			n := r.Int(v, "evidence_samples")
			if n < 0 || n > maxEvidenceSamples {
				r.Errorf(v, "evidence_samples must be between 0 and %d, not %d", maxEvidenceSamples, n)
			}
			cfg.EvidenceSamples = int(n)
		}},
		"allowed_lateness": {Read: func(v *yaml.Node) {
			latenessNode = v
			cfg.AllowedLateness = r.Duration(v, "allowed_lateness")
			if cfg.AllowedLateness < 0 {
				r.Errorf(v, "allowed_lateness must not be negative")
			}
		}},
		"bulk_export": {Read: func(v *yaml.Node) {
			b := &cfg.BulkExport
			r.Mapping(v, "bulk_export", map[string]strictyaml.Field{
				"enabled": {Read: func(v *yaml.Node) { b.Enabled = r.Bool(v, "enabled") }},
				"threshold_records": {Read: func(v *yaml.Node) {
					if b.ThresholdRecords = r.Int(v, "threshold_records"); b.ThresholdRecords <= 0 && !r.Failed() {
						r.Errorf(v, "threshold_records must be positive, not %d", b.ThresholdRecords)
					}
				}},
				"window": {Read: func(v *yaml.Node) {
					windowNode = v
					b.Window = r.Duration(v, "window")
					if b.Window < time.Minute || b.Window%time.Minute != 0 {
						r.Errorf(v, "window must be a whole number of minutes, at least 1m, not %s", v.Value)
					}
				}},
				"actions": {Read: func(v *yaml.Node) {
					b.Actions = nil
					seen := map[event.Action]bool{}
					r.Seq(v, "actions", func(_ int, an *yaml.Node) {
						a := event.Action(r.String(an, "action"))
						if actionBit(a) == 0 {
							r.Errorf(an, "invalid action %q: want read, query, export, download, update, delete or transfer", a)
							return
						}
						if seen[a] {
							r.Errorf(an, "action %q listed twice", a)
							return
						}
						seen[a] = true
						b.Actions = append(b.Actions, a)
					})
					if len(b.Actions) == 0 && !r.Failed() {
						r.Errorf(v, "actions must list at least one action")
					}
				}},
				"severity": {Read: func(v *yaml.Node) { b.Severity = readSeverity(r, v) }},
				"exceptions": {Read: func(v *yaml.Node) {
					r.Seq(v, "exceptions", func(_ int, xn *yaml.Node) {
						b.Exceptions = append(b.Exceptions, readException(r, xn))
					})
				}},
			})
		}},
		"unknown_recipient": {Read: func(v *yaml.Node) {
			u := &cfg.UnknownRecipient
			r.Mapping(v, "unknown_recipient", map[string]strictyaml.Field{
				"enabled":  {Read: func(v *yaml.Node) { u.Enabled = r.Bool(v, "enabled") }},
				"severity": {Read: func(v *yaml.Node) { u.Severity = readSeverity(r, v) }},
			})
		}},
	})
	if !r.Failed() && cfg.AllowedLateness > cfg.BulkExport.Window/4 {
		at := latenessNode
		if at == nil {
			at = windowNode
		}
		r.Errorf(at, "allowed_lateness %s is more than a quarter of the bulk_export window %s", cfg.AllowedLateness, cfg.BulkExport.Window)
	}
	if err := r.Err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
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
		if *dst = r.String(v, key); *dst == "" {
			r.Errorf(v, "exception %s is empty", key)
		}
	}
	r.Mapping(n, "exception", map[string]strictyaml.Field{
		"actor":   {Required: true, Read: func(v *yaml.Node) { nonEmpty(v, "actor", &x.Actor) }},
		"reason":  {Required: true, Read: func(v *yaml.Node) { nonEmpty(v, "reason", &x.Reason) }},
		"owner":   {Required: true, Read: func(v *yaml.Node) { nonEmpty(v, "owner", &x.Owner) }},
		"expires": {Required: true, Read: func(v *yaml.Node) { x.Expires = r.Date(v, "expires") }},
	})
	return x
}

// Valid reports whether s is one of the known severities.
func (s Severity) Valid() bool {
	switch s {
	case SeverityInfo, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical:
		return true
	}
	return false
}

// Validate checks a Config built in code (ParseConfig already does).
func (c Config) Validate() error {
	b := c.BulkExport
	switch {
	case c.EvidenceSamples < 0 || c.EvidenceSamples > maxEvidenceSamples:
		return fmt.Errorf("evidence_samples must be between 0 and %d, not %d", maxEvidenceSamples, c.EvidenceSamples)
	case c.AllowedLateness < 0:
		return fmt.Errorf("allowed_lateness must not be negative")
	}
	if b.Enabled {
		switch {
		case b.ThresholdRecords <= 0:
			return fmt.Errorf("bulk_export.threshold_records must be positive, not %d", b.ThresholdRecords)
		case b.Window < time.Minute || b.Window%time.Minute != 0:
			return fmt.Errorf("bulk_export.window must be a whole number of minutes, at least 1m, not %s", b.Window)
		case c.AllowedLateness > b.Window/4:
			return fmt.Errorf("allowed_lateness %s is more than a quarter of the bulk_export window %s", c.AllowedLateness, b.Window)
		case len(b.Actions) == 0:
			return fmt.Errorf("bulk_export.actions must list at least one action")
		case !b.Severity.Valid():
			return fmt.Errorf("bulk_export.severity %q is invalid", b.Severity)
		}
		for _, a := range b.Actions {
			if actionBit(a) == 0 {
				return fmt.Errorf("bulk_export.actions: invalid action %q", a)
			}
		}
		for _, x := range b.Exceptions {
			if x.Actor == "" || x.Reason == "" || x.Owner == "" || x.Expires.IsZero() {
				return fmt.Errorf("bulk_export.exceptions: entry for %q needs actor, reason, owner and expires", x.Actor)
			}
		}
	}
	if c.UnknownRecipient.Enabled && !c.UnknownRecipient.Severity.Valid() {
		return fmt.Errorf("unknown_recipient.severity %q is invalid", c.UnknownRecipient.Severity)
	}
	return nil
}

// ExpiredException is an exception that no longer applies, with the rule
// it belongs to.
type ExpiredException struct {
	// Rule is the rule id the exception belongs to.
	Rule string
	Exception
}

// ExpiredExceptions lists the exceptions that no longer apply at t, sorted
// by expiry: the privacy office should renew or remove them.
func (c Config) ExpiredExceptions(at time.Time) []ExpiredException {
	var out []ExpiredException
	for _, x := range c.BulkExport.Exceptions {
		if !x.AppliesAt(at) {
			out = append(out, ExpiredException{Rule: RuleBulkExport, Exception: x})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Expires.Before(out[j].Expires) })
	return out
}

// Lookback is how much event time before a partition's newest stored event
// the rules need to see again to rebuild their state after a restart or a
// rebalance: the longest window plus the allowed lateness.
func (c Config) Lookback() time.Duration {
	return c.BulkExport.Window + c.AllowedLateness
}
