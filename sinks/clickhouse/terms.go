package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules"
)

// SeenTerms streams what seeds a shared first_seen rule's terms: for the
// stored events of topic (every partition) whose event time is within
// seed.Window of the newest stored event of the topic, one row per
// distinct combination of seed.Fields, as an event carrying those fields,
// with the first and last event time the combination was seen at. It
// reads only the grouped columns and the time.
func (s *Store) SeenTerms(ctx context.Context, topic string, seed rules.TermSeed,
	fn func(ev *event.Event, first, last time.Time) error) error {
	return s.terms(ctx, seed, fmt.Sprintf("seen terms of %s on %s", seed.Rule, topic), "kafka_topic = @topic", fn, named("topic", topic))
}

// terms runs the term query of SeenTerms and PartitionTerms over the stored
// events matching scope (a condition on kafka_topic and kafka_partition,
// with its parameters in args), within seed.Window of the newest of them.
// what prefixes errors.
func (s *Store) terms(ctx context.Context, seed rules.TermSeed, what, scope string,
	fn func(ev *event.Event, first, last time.Time) error, args ...any) error {
	var sc scanned
	cols := baselineColumns(&sc)
	names := make([]string, 0, len(seed.Fields))
	for _, f := range seed.Fields {
		c, ok := cols[f]
		if !ok {
			return fmt.Errorf("%s: field %s has no column", what, f)
		}
		names = append(names, c.col)
	}
	window := int64(seed.Window / time.Second)
	if len(names) == 0 || window <= 0 {
		return fmt.Errorf("%s: no fields or a window under a second", what)
	}
	q := fmt.Sprintf("SELECT %s, min(time) AS first, max(time) AS last FROM %[2]s.events"+
		" WHERE %[4]s AND time >= (SELECT max(time) FROM %[2]s.event_offsets WHERE %[4]s) - toIntervalSecond(%[3]d)"+
		" GROUP BY %[1]s", strings.Join(names, ", "), s.db, window, scope)
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e           event.Event
			first, last time.Time
		)
		dest := make([]any, 0, len(seed.Fields)+2)
		for _, f := range seed.Fields {
			dest = append(dest, cols[f].dest(&e))
		}
		dest = append(dest, &first, &last)
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("%s: scan: %w", what, err)
		}
		for _, f := range seed.Fields {
			if set := cols[f].set; set != nil {
				set(&e)
			}
		}
		e.Time = last.UTC()
		if err := fn(&e, first.UTC(), last.UTC()); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
