package clickhouse

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules"
)

// baselineColumn maps an event field a baseline seed groups by to its
// column in events and back into an event.
type baselineColumn struct {
	col  string
	dest func(*event.Event) any // scan destination
	set  func(*event.Event)     // after the scan (type conversions)
}

// scanned holds the scan targets that need converting.
type scanned struct {
	typ, action, akind, rkind, ckind, outcome string
	hasRecords, enc, encSet                   uint8
}

// baselineColumns are the fields rules.BaselineSeed may name.
func baselineColumns(sc *scanned) map[string]baselineColumn {
	str := func(col string, f func(*event.Event) *string) baselineColumn {
		return baselineColumn{col: col, dest: func(e *event.Event) any { return f(e) }}
	}
	conv := func(col string, dst any, set func(*event.Event)) baselineColumn {
		return baselineColumn{col: col, dest: func(*event.Event) any { return dst }, set: set}
	}
	return map[string]baselineColumn{
		"type":               conv("type", &sc.typ, func(e *event.Event) { e.Type = event.Type(sc.typ) }),
		"action":             conv("action", &sc.action, func(e *event.Event) { e.Action = event.Action(sc.action) }),
		"actor.id":           str("actor_id", func(e *event.Event) *string { return &e.Actor.ID }),
		"actor.kind":         conv("actor_kind", &sc.akind, func(e *event.Event) { e.Actor.Kind = event.ActorKind(sc.akind) }),
		"actor.role":         str("actor_role", func(e *event.Event) *string { return &e.Actor.Role }),
		"actor.department":   str("actor_department", func(e *event.Event) *string { return &e.Actor.Department }),
		"source.system":      str("source_system", func(e *event.Event) *string { return &e.Source.System }),
		"source.dataset":     str("source_dataset", func(e *event.Event) *string { return &e.Source.Dataset }),
		"source.environment": str("source_environment", func(e *event.Event) *string { return &e.Source.Environment }),
		"data.categories":    {col: "categories", dest: func(e *event.Event) any { return &e.Data.Categories }},
		"data.has_records":   conv("has_records", &sc.hasRecords, func(e *event.Event) { e.Data.HasRecords = sc.hasRecords != 0 }),
		"data.subject_kinds": {col: "subject_kinds", dest: func(e *event.Event) any { return &e.Data.SubjectKinds }},
		"recipient.id":       str("recipient_id", func(e *event.Event) *string { return &e.Recipient.ID }),
		"recipient.name":     str("recipient_name", func(e *event.Event) *string { return &e.Recipient.Name }),
		"recipient.domain":   str("recipient_domain", func(e *event.Event) *string { return &e.Recipient.Domain }),
		"recipient.country":  str("recipient_country", func(e *event.Event) *string { return &e.Recipient.Country }),
		"recipient.kind": conv("recipient_kind", &sc.rkind, func(e *event.Event) {
			e.Recipient.Kind = event.RecipientKind(sc.rkind)
		}),
		"channel.kind": conv("channel_kind", &sc.ckind, func(e *event.Event) { e.Channel.Kind = event.ChannelKind(sc.ckind) }),
		"channel.encrypted": conv("channel_encrypted", &sc.enc, func(e *event.Event) {
			e.Channel.Encrypted = sc.enc != 0
		}),
		"channel.encrypted_set": conv("channel_encrypted_set", &sc.encSet, func(e *event.Event) {
			e.Channel.EncryptedSet = sc.encSet != 0
		}),
		"purpose":     str("purpose", func(e *event.Event) *string { return &e.Purpose }),
		"legal_basis": str("legal_basis", func(e *event.Event) *string { return &e.LegalBasis }),
		"outcome":     conv("outcome", &sc.outcome, func(e *event.Event) { e.Outcome = event.Outcome(sc.outcome) }),
	}
}

// baselineAggregates are the SQL of the seedable aggregates, in the rules'
// units (bytes in KiB, each event rounded up, as the rules count them).
var baselineAggregates = map[string]string{
	"count":        "count()",
	"sum(records)": "sum(records)",
	"sum(bytes)":   "sum(intDiv(bytes + 1023, 1024))",
}

// zoneName matches the IANA time zone names a seed may carry (they go
// into the SQL text: ClickHouse wants a constant).
var zoneName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+/-]*$`)

// BaselineHistory streams the per-period totals that seed a baseline
// rule's history: for the stored events of topic/partition with event
// time in [from, to) (whole seconds), one row per period of the rule and
// per distinct combination of seed.Fields, as an event carrying those
// fields and a time within the period, with the aggregate total and the
// event count. Periods are those the rules use: seed.Period aligned on the
// Unix epoch (the row's time is the period start), or with seed.Timezone
// the calendar days of that zone, as ClickHouse's own time zone data
// dates them (toRelativeDayNum; the row's time is local noon). It reads
// only the grouped columns of the partition's time range. Events are not
// deduplicated by id: re-delivery never inserts an event twice (offset
// dedup), so only a producer's re-sent duplicates would count twice.
func (s *Store) BaselineHistory(ctx context.Context, topic string, partition int32, seed rules.BaselineSeed,
	from, to time.Time, fn func(ev *event.Event, total, events int64) error) error {
	agg, ok := baselineAggregates[seed.Aggregate]
	if !ok {
		return fmt.Errorf("baseline history of %s: aggregate %q cannot be seeded", seed.Rule, seed.Aggregate)
	}
	period := int64(seed.Period / time.Second)
	if period <= 0 || seed.Period%time.Second != 0 {
		return fmt.Errorf("baseline history of %s: period %s is not a whole number of seconds", seed.Rule, seed.Period)
	}
	periodOf := fmt.Sprintf("toUInt64(intDiv(toUInt32(time), %d) * %d)", period, period)
	timeOf := func(p uint64) time.Time { return time.Unix(int64(p), 0).UTC() }
	if seed.Timezone != "" {
		loc, err := time.LoadLocation(seed.Timezone)
		if err != nil {
			return fmt.Errorf("baseline history of %s: %w", seed.Rule, err)
		}
		if !zoneName.MatchString(seed.Timezone) || seed.Period != 24*time.Hour {
			return fmt.Errorf("baseline history of %s: periods of %s in time zone %q cannot be seeded", seed.Rule, seed.Period, seed.Timezone)
		}
		periodOf = fmt.Sprintf("toUInt64(toRelativeDayNum(time, '%s'))", seed.Timezone)
		timeOf = func(day uint64) time.Time { return time.Date(1970, 1, 1+int(day), 12, 0, 0, 0, loc) }
	}
	var sc scanned
	cols := baselineColumns(&sc)
	names := make([]string, 0, len(seed.Fields))
	for _, f := range seed.Fields {
		c, ok := cols[f]
		if !ok {
			return fmt.Errorf("baseline history of %s: field %s has no column", seed.Rule, f)
		}
		names = append(names, c.col)
	}
	groupBy := "p"
	if len(names) > 0 {
		groupBy += ", " + strings.Join(names, ", ")
	}
	q := fmt.Sprintf("SELECT %s AS p, %stoInt64(%s) AS total, toUInt64(count()) AS n FROM %s.events"+
		" WHERE kafka_topic = @topic AND kafka_partition = @partition AND time >= @from AND time < @to"+
		" GROUP BY %s", periodOf, joinComma(names), agg, s.db, groupBy)
	rows, err := s.conn.Query(ctx, q, named("topic", topic), named("partition", partition),
		named("from", from.UTC().Truncate(time.Second)), named("to", to.UTC().Truncate(time.Second)))
	if err != nil {
		return fmt.Errorf("baseline history of %s on %s/%d: %w", seed.Rule, topic, partition, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e        event.Event
			p        uint64
			total, n int64
		)
		dest := []any{&p}
		for _, f := range seed.Fields {
			dest = append(dest, cols[f].dest(&e))
		}
		dest = append(dest, &total)
		var un uint64
		dest = append(dest, &un)
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("baseline history of %s on %s/%d: scan: %w", seed.Rule, topic, partition, err)
		}
		n = int64(un)
		for _, f := range seed.Fields {
			if set := cols[f].set; set != nil {
				set(&e)
			}
		}
		e.Time = timeOf(p)
		if err := fn(&e, total, n); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("baseline history of %s on %s/%d: %w", seed.Rule, topic, partition, err)
	}
	return nil
}

func joinComma(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return strings.Join(names, ", ") + ", "
}

// PartitionTerms streams what seeds the terms a partition's own
// first_seen rules keep (rules.Engine.PartitionTermSeeds: those grouped by
// actor): as SeenTerms, one row per distinct combination of seed.Fields
// with the first and last event time it was seen at, but over the stored
// events of topic/partition only whose event time is within seed.Window
// of the partition's newest stored event. It reads only the grouped
// columns and the time of the partition's events.
func (s *Store) PartitionTerms(ctx context.Context, topic string, partition int32, seed rules.TermSeed,
	fn func(ev *event.Event, first, last time.Time) error) error {
	return s.terms(ctx, seed, fmt.Sprintf("terms of %s on %s/%d", seed.Rule, topic, partition),
		"kafka_topic = @topic AND kafka_partition = @partition", fn, named("topic", topic), named("partition", partition))
}
