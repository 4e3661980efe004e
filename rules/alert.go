// Package rules evaluates detection rules over v1 events and produces
// alerts. It is pure: it imports neither Kafka nor ClickHouse, keeps its
// state in memory per Kafka partition (the caller owns that mapping), and
// runs on event time, so it can be tested and benchmarked alone.
package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Severity ranks how urgent an alert is.
type Severity string

// Severities, from least to most urgent.
const (
	SeverityInfo     Severity = "info"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Alert is one detection. Its ID is derived from the rule, the group key and
// the window, so evaluating the same events twice yields the same ID and
// re-delivery can never create a second alert.
type Alert struct {
	// ID is StableID(Rule, GroupKey, Slot).
	ID string
	// Rule is the id of the rule that fired.
	Rule string
	// Title is the rule's short title.
	Title string
	// Severity is how urgent the alert is.
	Severity Severity
	// Actor is the actor id the alert is about (may be empty for rules not
	// grouped by actor).
	Actor string
	// GroupKey is the value of the rule's grouping fields, e.g. the actor id.
	GroupKey string
	// WindowStart and WindowEnd bound the event-time window the alert
	// covers.
	WindowStart time.Time
	WindowEnd   time.Time
	// Slot is the start of the aligned period the alert is deduplicated in
	// (the event time of the triggering event truncated to the rule's
	// window, or to the day): at most one alert per rule, group key and
	// slot. The ID is derived from it.
	Slot time.Time
	// FirstSeen and LastSeen bound the event times of the events that
	// contributed, as precisely as the rule's state knows them (bulk_export
	// keeps buckets of window/12, so FirstSeen is a bucket start).
	FirstSeen time.Time
	LastSeen  time.Time
	// Events is how many events contributed.
	Events int64
	// Records is the records total that contributed.
	Records int64
	// Value is the value the rule compared against the threshold (the
	// aggregate of a threshold rule; the event's records otherwise).
	Value int64
	// Threshold is the value the rule compared against (0 if none).
	Threshold int64
	// Term is the new value of a first_seen rule ("" otherwise).
	Term string
	// Tags are the rule's tags.
	Tags []string
	// Runbook is the rule's runbook link.
	Runbook string
	// Summary is the alert text a privacy officer reads.
	Summary string
	// Evidence holds up to a configured number of sample event ids.
	Evidence []string
	// Recipient is the recipient domain or partner involved, if any.
	Recipient string
	// Partition is the Kafka partition of the events that raised the alert;
	// the state that raised it lives with that partition.
	Partition int32
	// EventTime is the event time of the event that raised the alert.
	EventTime time.Time
}

// StableID derives an alert id from the rule id, the group key and the
// window start: the same inputs always give the same 32-character hex id.
func StableID(rule, groupKey string, windowStart time.Time) string {
	h := sha256.New()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(groupKey))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, windowStart.UTC().UnixNano(), 10))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
