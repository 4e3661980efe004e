package clickhouse

import (
	"context"
	"fmt"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// The privacy office's forensic queries. They name tables without a
// database (the connection's database is Custos's) and take named
// parameters (@name) that clickhouse-go binds on the client, which works on
// every server version. None needs FINAL: re-delivered events are never
// inserted twice (offset dedup), and the rows a producer re-sent under the
// same event_id, or a retried partial insert, are counted once with
// LIMIT 1 BY event_id or uniqExact(event_id). Alerts are read at their
// newest version with LIMIT 1 BY alert_id.

// QueryActorEvents lists the events of one actor in [@from, @to), oldest
// first, at most @limit. Uses the events sorting key (date, actor).
const QueryActorEvents = `SELECT event_id, time, time_ms, type, action,
    source_system, source_dataset, categories, records, bytes,
    recipient_domain, outcome, purpose
FROM events
WHERE actor_id = @actor AND time >= @from AND time < @to
ORDER BY time, time_ms, event_id
LIMIT 1 BY event_id
LIMIT @limit`

// subjectEvents selects the events that touched subject @subject: the
// subject_index rows of the subject (found by its sorting key) point into
// events by events' own sorting key, so both reads are key lookups.
const subjectEvents = `(toDate(time), actor_id, time, event_id) IN (
    SELECT toDate(time), actor_id, time, event_id
    FROM subject_index
    WHERE subject = @subject%s)`

// QuerySubjectEvents lists everything that touched one subject (by
// pseudonym) in [@from, @to), oldest first, at most @limit.
var QuerySubjectEvents = `SELECT event_id, time, time_ms, type, action, actor_id,
    source_system, source_dataset, categories, records, outcome,
    recipient_domain, purpose
FROM events
WHERE time >= @from AND time < @to
    AND ` + fmt.Sprintf(subjectEvents, " AND time >= @from AND time < @to") + `
ORDER BY time, time_ms, event_id
LIMIT 1 BY event_id
LIMIT @limit`

// QuerySubjectRecipients answers "who received this subject's data": one
// row per recipient of a successful share of the subject (by pseudonym),
// with how many shares, when, and for which purposes; most recent first.
var QuerySubjectRecipients = `SELECT recipient_id, recipient_domain,
    any(recipient_name) AS name, any(recipient_country) AS country,
    uniqExact(event_id) AS shares,
    min(time) AS first_shared, max(time) AS last_shared,
    groupUniqArray(purpose) AS purposes
FROM events
WHERE type = 'share' AND outcome = 'success'
    AND ` + fmt.Sprintf(subjectEvents, "") + `
GROUP BY recipient_id, recipient_domain
ORDER BY last_shared DESC, recipient_domain`

// QueryBreachScope lists the subjects (pseudonyms) whose data an actor
// touched successfully in [@from, @to), with how many events, when, and
// from which systems. Events with a truncated subject list (see
// QueryBreachScopeSummary) touched more subjects than listed.
const QueryBreachScope = `SELECT subject, uniqExact(event_id) AS events,
    min(time) AS first_seen, max(time) AS last_seen,
    groupUniqArray(source_system) AS systems
FROM (
    SELECT arrayJoin(subjects) AS subject, event_id, time, source_system
    FROM events
    WHERE actor_id = @actor AND time >= @from AND time < @to AND outcome = 'success'
)
GROUP BY subject
ORDER BY subject`

// QueryBreachScopeSummary sums up an actor's successful events in
// [@from, @to): events, records, distinct listed subjects, and how many
// events listed only a sample of their subjects.
const QueryBreachScopeSummary = `SELECT count() AS events,
    sum(records) AS records,
    uniqExactArray(subjects) AS listed_subjects,
    countIf(subjects_truncated = 1) AS truncated_events
FROM (
    SELECT event_id, records, subjects, subjects_truncated
    FROM events
    WHERE actor_id = @actor AND time >= @from AND time < @to AND outcome = 'success'
    ORDER BY event_id
    LIMIT 1 BY event_id
)`

// QueryAlerts lists alerts whose window starts in [@from, @to), newest
// first, at their latest stored version; @severity and @rule filter when
// not empty.
const QueryAlerts = `SELECT alert_id, rule, title, severity, actor_id, group_key,
    window_start, window_end, events, records, threshold, summary, evidence, recipient
FROM (
    SELECT alert_id, rule, title, severity, actor_id, group_key,
        window_start, window_end, events, records, threshold, summary, evidence,
        recipient, stored_at
    FROM alerts
    WHERE window_start >= @from AND window_start < @to
    ORDER BY alert_id, stored_at DESC
    LIMIT 1 BY alert_id
)
WHERE (@severity = '' OR severity = @severity) AND (@rule = '' OR rule = @rule)
ORDER BY window_start DESC, alert_id`

// Query names a forensic query and its parameters, for dashboards and
// tests that run them all.
type Query struct {
	// Name identifies the query.
	Name string
	// SQL is the query text, with @name parameters.
	SQL string
	// Params are the parameter names, without @.
	Params []string
}

// Queries lists every forensic query of this file.
var Queries = []Query{
	{"actor_events", QueryActorEvents, []string{"actor", "from", "to", "limit"}},
	{"subject_events", QuerySubjectEvents, []string{"subject", "from", "to", "limit"}},
	{"subject_recipients", QuerySubjectRecipients, []string{"subject"}},
	{"breach_scope", QueryBreachScope, []string{"actor", "from", "to"}},
	{"breach_scope_summary", QueryBreachScopeSummary, []string{"actor", "from", "to"}},
	{"alerts", QueryAlerts, []string{"from", "to", "severity", "rule"}},
}

func named(name string, v any) any {
	if t, ok := v.(time.Time); ok {
		v = t.UTC()
	}
	return ch.Named(name, v)
}

// EventRow is one row of QueryActorEvents or QuerySubjectEvents.
type EventRow struct {
	EventID         string    `ch:"event_id"`
	Time            time.Time `ch:"time"`
	TimeMs          uint16    `ch:"time_ms"`
	Type            string    `ch:"type"`
	Action          string    `ch:"action"`
	ActorID         string    `ch:"actor_id"`
	SourceSystem    string    `ch:"source_system"`
	SourceDataset   string    `ch:"source_dataset"`
	Categories      []string  `ch:"categories"`
	Records         int64     `ch:"records"`
	Bytes           int64     `ch:"bytes"`
	RecipientDomain string    `ch:"recipient_domain"`
	Outcome         string    `ch:"outcome"`
	Purpose         string    `ch:"purpose"`
}

// ActorEvents runs QueryActorEvents. ActorID is left empty in the rows.
func (s *Store) ActorEvents(ctx context.Context, actor string, from, to time.Time, limit int) ([]EventRow, error) {
	var out []EventRow
	err := s.conn.Select(ctx, &out, QueryActorEvents,
		named("actor", actor), named("from", from), named("to", to), named("limit", limit))
	if err != nil {
		return nil, fmt.Errorf("actor events: %w", err)
	}
	return out, nil
}

// SubjectEvents runs QuerySubjectEvents. Bytes is left 0 in the rows.
func (s *Store) SubjectEvents(ctx context.Context, subject string, from, to time.Time, limit int) ([]EventRow, error) {
	var out []EventRow
	err := s.conn.Select(ctx, &out, QuerySubjectEvents,
		named("subject", subject), named("from", from), named("to", to), named("limit", limit))
	if err != nil {
		return nil, fmt.Errorf("subject events: %w", err)
	}
	return out, nil
}

// RecipientRow is one row of QuerySubjectRecipients.
type RecipientRow struct {
	RecipientID     string    `ch:"recipient_id"`
	RecipientDomain string    `ch:"recipient_domain"`
	Name            string    `ch:"name"`
	Country         string    `ch:"country"`
	Shares          uint64    `ch:"shares"`
	FirstShared     time.Time `ch:"first_shared"`
	LastShared      time.Time `ch:"last_shared"`
	Purposes        []string  `ch:"purposes"`
}

// SubjectRecipients runs QuerySubjectRecipients.
func (s *Store) SubjectRecipients(ctx context.Context, subject string) ([]RecipientRow, error) {
	var out []RecipientRow
	if err := s.conn.Select(ctx, &out, QuerySubjectRecipients, named("subject", subject)); err != nil {
		return nil, fmt.Errorf("subject recipients: %w", err)
	}
	return out, nil
}

// ScopeRow is one row of QueryBreachScope.
type ScopeRow struct {
	Subject   string    `ch:"subject"`
	Events    uint64    `ch:"events"`
	FirstSeen time.Time `ch:"first_seen"`
	LastSeen  time.Time `ch:"last_seen"`
	Systems   []string  `ch:"systems"`
}

// BreachScope runs QueryBreachScope.
func (s *Store) BreachScope(ctx context.Context, actor string, from, to time.Time) ([]ScopeRow, error) {
	var out []ScopeRow
	err := s.conn.Select(ctx, &out, QueryBreachScope, named("actor", actor), named("from", from), named("to", to))
	if err != nil {
		return nil, fmt.Errorf("breach scope: %w", err)
	}
	return out, nil
}

// ScopeSummary is the row of QueryBreachScopeSummary.
type ScopeSummary struct {
	Events          uint64 `ch:"events"`
	Records         int64  `ch:"records"`
	ListedSubjects  uint64 `ch:"listed_subjects"`
	TruncatedEvents uint64 `ch:"truncated_events"`
}

// BreachScopeSummary runs QueryBreachScopeSummary.
func (s *Store) BreachScopeSummary(ctx context.Context, actor string, from, to time.Time) (ScopeSummary, error) {
	var out []ScopeSummary
	err := s.conn.Select(ctx, &out, QueryBreachScopeSummary, named("actor", actor), named("from", from), named("to", to))
	if err != nil {
		return ScopeSummary{}, fmt.Errorf("breach scope summary: %w", err)
	}
	if len(out) == 0 {
		return ScopeSummary{}, nil
	}
	return out[0], nil
}

// AlertRow is one row of QueryAlerts.
type AlertRow struct {
	ID          string    `ch:"alert_id"`
	Rule        string    `ch:"rule"`
	Title       string    `ch:"title"`
	Severity    string    `ch:"severity"`
	Actor       string    `ch:"actor_id"`
	GroupKey    string    `ch:"group_key"`
	WindowStart time.Time `ch:"window_start"`
	WindowEnd   time.Time `ch:"window_end"`
	Events      int64     `ch:"events"`
	Records     int64     `ch:"records"`
	Threshold   int64     `ch:"threshold"`
	Summary     string    `ch:"summary"`
	Evidence    []string  `ch:"evidence"`
	Recipient   string    `ch:"recipient"`
}

// Alerts runs QueryAlerts; empty severity or rule means any.
func (s *Store) Alerts(ctx context.Context, from, to time.Time, severity, rule string) ([]AlertRow, error) {
	var out []AlertRow
	err := s.conn.Select(ctx, &out, QueryAlerts, named("from", from), named("to", to),
		named("severity", severity), named("rule", rule))
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	return out, nil
}
