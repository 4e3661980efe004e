package rules

import (
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// SummaryData is what a rule's summary template is filled from: the
// alert's fields, pre-formatted for a privacy officer.
type SummaryData struct {
	// Rule and Title identify the rule.
	Rule, Title string
	// Severity is the alert's severity.
	Severity string
	// Actor describes the actor: "jdoe (analyst, finance)" or "service
	// account svc-etl (data_platform)"; ActorID is the bare id.
	Actor, ActorID string
	// Key is the group key.
	Key string
	// Value is the aggregate (threshold), else the event's records;
	// Threshold what it was compared against; Events how many events
	// contributed; Records the records total when known.
	Value, Threshold, Events, Records int64
	// Aggregate is the threshold rule's aggregate, e.g. "sum(records)".
	Aggregate string
	// Window is the rule's window, e.g. "1h".
	Window string
	// From and To are the first and last event times, HH:MM UTC (with the
	// date when they are on different days); Span is "up to 25 min".
	From, To, Span string
	// Action, Source ("crm/customers"), Recipient (domain or id, with
	// name), Categories (comma-separated), Channel ("sftp (encrypted)"),
	// Country and Purpose describe the triggering event.
	Action, Source, Recipient, Categories, Channel, Country, Purpose string
	// Term is the new value of a first_seen rule.
	Term string
	// Baseline rules: Period names the period ("day"); Trigger says what
	// the total was found anomalous against ("history", "peers" or
	// "history and peers"); Baseline is the median of the group's own
	// HistoryPeriods active periods; PeerGroup, PeerMedian and PeerPeriods
	// the peer group, its median period total and how many member periods
	// it is the median of; Ratio the total over the median that triggered,
	// e.g. "4.2×". Threshold is the bound the total exceeded.
	Period, Trigger, PeerGroup, Ratio string
	Baseline, HistoryPeriods          int64
	PeerMedian, PeerPeriods           int64
	// Event is the triggering event itself.
	Event *event.Event
	// Transfer is the partner registry's verdict on the triggering share:
	// finding, reason, partner and agreement (zero for other events).
	Transfer TransferSummary
	// Policy is the first promise of the privacy statement the event
	// breaks, quoted, and why (zero when it breaks none).
	Policy PolicySummary
	// Consent counts the event's subjects who had opted out of its
	// purpose, or closed their account, at its time.
	Consent ConsentSummary
	// Cleartext says how personal data went in clear text ("" when not).
	Cleartext string
}

// summaryFuncs are the functions summary templates may call.
var summaryFuncs = template.FuncMap{
	"thousands": thousands,
	"plural": func(n int64, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
	"join": strings.Join,
}

func sampleSummary() *SummaryData {
	return &SummaryData{Event: &event.Event{}}
}

// newAlert fills the fields every kind shares.
func (s *State) newAlert(r *rule, ev *event.Event, id, key string, slot int64, sev Severity) *Alert {
	al := &Alert{
		ID: id, Rule: r.ID, Title: r.Title, Severity: sev, Actor: ev.Actor.ID, GroupKey: strings.Clone(key),
		Slot: time.Unix(0, slot).UTC(), Partition: s.partition, EventTime: ev.Time, Tags: r.Tags, Runbook: r.Runbook,
	}
	if ev.Type == event.TypeShare {
		al.Recipient = ev.Recipient.Domain
		if al.Recipient == "" {
			al.Recipient = ev.Recipient.ID
		}
	}
	return al
}

// finishAlert writes the alert text from the rule's summary template, and
// notes an expired exception that would have covered it.
func (s *State) finishAlert(r *rule, ev *event.Event, al *Alert, expired *Exception, term string) {
	al.Term = term
	d := &SummaryData{
		Rule: r.ID, Title: r.Title, Severity: string(al.Severity), Actor: describeActor(&ev.Actor), ActorID: ev.Actor.ID,
		Key: al.GroupKey, Value: al.Value, Threshold: al.Threshold, Events: al.Events, Records: al.Records,
		Aggregate: r.Aggregate, Window: shortDuration(r.Window), Action: string(ev.Action), Source: source(&ev.Source),
		Categories: strings.Join(ev.Data.Categories, ", "), Country: ev.Recipient.Country, Purpose: ev.Purpose,
		Term: term, Event: ev,
	}
	if s.base != nil {
		s.base.fill(r, d)
	}
	d.From, d.To = clock(al.FirstSeen, al.LastSeen), al.LastSeen.Format("15:04")
	d.Span = "up to " + minutes(al.LastSeen.Sub(al.FirstSeen))
	switch {
	case ev.Recipient.Domain != "" && ev.Recipient.Name != "":
		d.Recipient = ev.Recipient.Domain + " (" + ev.Recipient.Name + ")"
	case ev.Recipient.Domain != "":
		d.Recipient = ev.Recipient.Domain
	case ev.Recipient.ID != "":
		d.Recipient = "recipient id " + strconv.Quote(ev.Recipient.ID)
	}
	if ev.Channel.Kind != "" {
		d.Channel = string(ev.Channel.Kind)
		if ev.Channel.EncryptedSet {
			if ev.Channel.Encrypted {
				d.Channel += " (encrypted)"
			} else {
				d.Channel += " (not encrypted)"
			}
		}
	}
	s.act.summarize(ev, d)
	var b strings.Builder
	if err := r.summary.Execute(&b, d); err != nil {
		b.Reset()
		b.WriteString(r.Title + ": " + d.Actor + " (summary template failed: " + err.Error() + ")")
	}
	al.Summary = strings.Join(strings.Fields(b.String()), " ")
	if expired != nil {
		al.Summary += " " + expiredNote(expired)
	}
}

// describeActor names an actor for alert texts: "jdoe (analyst, finance)"
// or "service account svc-etl (data_platform)".
func describeActor(a *event.Actor) string {
	var b strings.Builder
	if a.Kind == event.ActorService {
		b.WriteString("service account ")
	}
	b.WriteString(a.ID)
	var parts []string
	if a.Role != "" {
		parts = append(parts, a.Role)
	}
	if a.Department != "" {
		parts = append(parts, a.Department)
	}
	if len(parts) > 0 {
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	return b.String()
}

// source names the system and dataset: "crm/customers".
func source(s *event.Source) string {
	if s.Dataset == "" {
		return s.System
	}
	return s.System + "/" + s.Dataset
}

func expiredNote(x *Exception) string {
	return "Note: an exception covering this (" + strings.TrimSuffix(x.Reason, ".") + "; owner " + x.Owner +
		") expired on " + x.Expires.Format("2006-01-02") + "."
}

// clock formats from as HH:MM, with its date when it is on another day than
// to.
func clock(from, to time.Time) string {
	if from.YearDay() != to.YearDay() || from.Year() != to.Year() {
		return from.Format("2006-01-02 15:04")
	}
	return from.Format("15:04")
}

func minutes(d time.Duration) string {
	m := int64((d + time.Minute - 1) / time.Minute)
	if m < 1 {
		m = 1
	}
	return strconv.FormatInt(m, 10) + " min"
}

// shortDuration prints 1h rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	switch {
	case d != 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d > time.Hour && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h" + strconv.FormatInt(int64(d%time.Hour/time.Minute), 10) + "m"
	case d != 0 && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

// thousands formats n with comma separators: 60412 -> "60,412".
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 && !(neg && b.Len() == 1) {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}
