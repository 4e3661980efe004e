package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// subjectStatusSQL reads the stored subject statuses, each once (the table
// is a ReplacingMergeTree: duplicates may remain until a merge), oldest
// first. The registry they feed keeps statuses in event-time order and
// ignores repeats, so the order and the duplicates only save it work.
const subjectStatusSQL = `SELECT subject, time, time_ms, status, uses, max(ingested_at) AS ingested
FROM %s.subject_status
WHERE ingested_at >= @since
GROUP BY subject, time, time_ms, status, uses
ORDER BY time, time_ms`

// SubjectStatuses streams the stored subject statuses ingested at or after
// since (the zero time: all of them), oldest event time first, to seed the
// consent registry at start-up; fn's error stops the stream and is
// returned. The *event.SubjectStatus passed to fn is fresh for every call
// and may be kept. It returns the newest ingestion time seen (truncated to
// the second, as stored), for a later call to read only what is new.
func (s *Store) SubjectStatuses(ctx context.Context, since time.Time, fn func(*event.SubjectStatus) error) (time.Time, error) {
	rows, err := s.conn.Query(ctx, fmt.Sprintf(subjectStatusSQL, s.db), named("since", since.UTC().Truncate(time.Second)))
	if err != nil {
		return since, fmt.Errorf("subject statuses since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	defer rows.Close()
	newest := since
	for rows.Next() {
		var (
			st     event.SubjectStatus
			t, ing time.Time
			tms    uint16
			status string
		)
		if err := rows.Scan(&st.Subject, &t, &tms, &status, &st.Uses, &ing); err != nil {
			return newest, fmt.Errorf("subject statuses: scan: %w", err)
		}
		st.Time = t.UTC().Add(time.Duration(tms) * time.Millisecond)
		st.Status = event.SubjectStatusKind(status)
		if len(st.Uses) == 0 {
			st.Uses = nil
		}
		if ing.After(newest) {
			newest = ing.UTC()
		}
		if err := fn(&st); err != nil {
			return newest, err
		}
	}
	if err := rows.Err(); err != nil {
		return newest, fmt.Errorf("subject statuses: %w", err)
	}
	return newest, nil
}

// StatusOffsets returns, for each partition of topic, the offset after the
// newest subject status stored from it: where a reader of the subjects
// topic picks up what storage holds.
func (s *Store) StatusOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	rows, err := s.conn.Query(ctx, fmt.Sprintf(`SELECT kafka_partition, max(kafka_offset) + 1
FROM %s.subject_status WHERE kafka_topic = @topic GROUP BY kafka_partition`, s.db), named("topic", topic))
	if err != nil {
		return nil, fmt.Errorf("subject status offsets of %s: %w", topic, err)
	}
	defer rows.Close()
	out := map[int32]int64{}
	for rows.Next() {
		var (
			p   int32
			off int64
		)
		if err := rows.Scan(&p, &off); err != nil {
			return nil, fmt.Errorf("subject status offsets: scan: %w", err)
		}
		out[p] = off
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("subject status offsets: %w", err)
	}
	return out, nil
}
