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
