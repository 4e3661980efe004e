package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// StoredOffsets returns, ascending and without repeats, the offsets of
// topic/partition at or after from whose events are stored. The ingest
// path asks it when a partition is assigned and skips those offsets, so a
// re-delivered event is never inserted twice.
func (s *Store) StoredOffsets(ctx context.Context, topic string, partition int32, from int64) ([]int64, error) {
	return s.storedOffsets(ctx, topic, partition, from, -1)
}

// storedOffsets is StoredOffsets bounded above by to (inclusive) when
// to >= 0.
func (s *Store) storedOffsets(ctx context.Context, topic string, partition int32, from, to int64) ([]int64, error) {
	q := "SELECT DISTINCT kafka_offset FROM " + s.db + ".event_offsets" +
		" WHERE kafka_topic = @topic AND kafka_partition = @partition AND kafka_offset >= @from"
	args := []any{named("topic", topic), named("partition", partition), named("from", from)}
	if to >= 0 {
		q += " AND kafka_offset <= @to"
		args = append(args, named("to", to))
	}
	q += " ORDER BY kafka_offset"
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("stored offsets of %s/%d from %d: %w", topic, partition, from, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var o int64
		if err := rows.Scan(&o); err != nil {
			return nil, fmt.Errorf("stored offsets of %s/%d: %w", topic, partition, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stored offsets of %s/%d: %w", topic, partition, err)
	}
	return out, nil
}

// recentEventsSQL selects what the rules need to rebuild their state:
// identity, time, type, action, actor, source, volume, subjects, recipient,
// channel, outcome, purpose, legal basis, categories and origin. Not the
// request context, attributes or extra fields.
const recentEventsSQL = `SELECT event_id, time, time_ms, type, action,
    actor_id, actor_kind, actor_role, actor_department,
    source_system, source_dataset, source_environment,
    categories, records, has_records, bytes, subjects, subjects_truncated,
    recipient_id, recipient_name, recipient_domain, recipient_country, recipient_kind,
    channel_kind, channel_encrypted, channel_encrypted_set,
    outcome, purpose, legal_basis, schema,
    kafka_topic, kafka_partition, kafka_offset
FROM %s.events
WHERE kafka_topic = @topic AND kafka_partition = @partition AND time >= @since
ORDER BY kafka_offset
LIMIT 1 BY event_id`

// RecentEvents streams, in offset order and once per event id, the stored
// events of topic/partition whose event time is at or after since
// (truncated to the second), with the fields the rules read; fn's error
// stops the stream and is returned. The *event.Event passed to fn is
// fresh for every call and may be kept.
func (s *Store) RecentEvents(ctx context.Context, topic string, partition int32, since time.Time,
	fn func(*event.Event) error) error {
	rows, err := s.conn.Query(ctx, fmt.Sprintf(recentEventsSQL, s.db),
		named("topic", topic), named("partition", partition), named("since", since.UTC()))
	if err != nil {
		return fmt.Errorf("recent events of %s/%d: %w", topic, partition, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e                                  event.Event
			t                                  time.Time
			tms                                uint16
			typ, action, akind, rkind, ckind   string
			outcome                            string
			hasRecords, truncated, enc, encSet uint8
		)
		err := rows.Scan(&e.ID, &t, &tms, &typ, &action,
			&e.Actor.ID, &akind, &e.Actor.Role, &e.Actor.Department,
			&e.Source.System, &e.Source.Dataset, &e.Source.Environment,
			&e.Data.Categories, &e.Data.Records, &hasRecords, &e.Data.Bytes, &e.Data.Subjects, &truncated,
			&e.Recipient.ID, &e.Recipient.Name, &e.Recipient.Domain, &e.Recipient.Country, &rkind,
			&ckind, &enc, &encSet,
			&outcome, &e.Purpose, &e.LegalBasis, &e.Schema,
			&e.Origin.Topic, &e.Origin.Partition, &e.Origin.Offset)
		if err != nil {
			return fmt.Errorf("recent events of %s/%d: scan: %w", topic, partition, err)
		}
		e.Time = t.UTC().Add(time.Duration(tms) * time.Millisecond)
		e.Type, e.Action, e.Actor.Kind = event.Type(typ), event.Action(action), event.ActorKind(akind)
		e.Recipient.Kind, e.Channel.Kind, e.Outcome = event.RecipientKind(rkind), event.ChannelKind(ckind), event.Outcome(outcome)
		e.Data.HasRecords, e.Data.SubjectsTruncated = hasRecords != 0, truncated != 0
		e.Channel.Encrypted, e.Channel.EncryptedSet = enc != 0, encSet != 0
		if len(e.Data.Categories) == 0 {
			e.Data.Categories = nil
		}
		if len(e.Data.Subjects) == 0 {
			e.Data.Subjects = nil
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("recent events of %s/%d: %w", topic, partition, err)
	}
	return nil
}

// AlertIDs returns, ascending and without repeats, the ids of the stored
// alerts raised by the events of partition whose window ends at or after
// since, and each one's latest window end. The rules use it after a
// restart to know which alerts already exist (rules.State.MarkEmittedAt).
func (s *Store) AlertIDs(ctx context.Context, partition int32, since time.Time) ([]string, []time.Time, error) {
	rows, err := s.conn.Query(ctx, "SELECT alert_id, max(window_end) FROM "+s.db+".alerts"+
		" WHERE kafka_partition = @partition AND window_end >= @since GROUP BY alert_id ORDER BY alert_id",
		named("partition", partition), named("since", since.UTC().Truncate(time.Second)))
	if err != nil {
		return nil, nil, fmt.Errorf("alert ids of partition %d: %w", partition, err)
	}
	defer rows.Close()
	var (
		ids  []string
		ends []time.Time
	)
	for rows.Next() {
		var (
			id  string
			end time.Time
		)
		if err := rows.Scan(&id, &end); err != nil {
			return nil, nil, fmt.Errorf("alert ids of partition %d: %w", partition, err)
		}
		ids, ends = append(ids, id), append(ends, end)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("alert ids of partition %d: %w", partition, err)
	}
	return ids, ends, nil
}

// LatestEventTime returns the newest event time among the stored events of
// topic/partition at offsets from and after, and false when there are none.
// It reads the narrow event_offsets table by its primary key, so taking
// over a partition does not scan the events table.
func (s *Store) LatestEventTime(ctx context.Context, topic string, partition int32, from int64) (time.Time, bool, error) {
	q := "SELECT max(time), count() FROM " + s.db + ".event_offsets" +
		" WHERE kafka_topic = @topic AND kafka_partition = @partition AND kafka_offset >= @from"
	var (
		latest time.Time
		n      uint64
	)
	err := s.conn.QueryRow(ctx, q, named("topic", topic), named("partition", partition), named("from", from)).Scan(&latest, &n)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("latest event time of %s/%d: %w", topic, partition, err)
	}
	return latest.UTC(), n > 0, nil
}
