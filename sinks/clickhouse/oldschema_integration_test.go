//go:build integration

package clickhouse

import (
	"fmt"
	"strings"
)

// The first release's subject_index, which migration 3 converts: built
// here to test the conversion.

// wideSubjectIndexColumns are the columns of subject_index as the first
// release's migration 1 created it (each but subject a column of events
// with the same name and type); migration 3 narrows such a table.
var wideSubjectIndexColumns = []string{
	"subject", "time", "time_ms", "event_id", "type", "action", "actor_id",
	"source_system", "source_dataset", "categories", "records", "outcome",
	"recipient_id", "recipient_name", "recipient_domain", "recipient_country",
	"recipient_kind", "channel_kind", "purpose", "legal_basis",
}

func typeOf(cols []column, name string) string {
	for _, c := range cols {
		if c.name == name {
			return c.typ
		}
	}
	panic("clickhouse: no column " + name)
}

// wideSubjectIndex is the DDL of the 20-column subject_index and its view
// that the first release's migration 1 created: what migration 3 converts.
func wideSubjectIndex(db string, f features) []string {
	ev := eventColumns(f)
	sub := make([]column, 0, len(wideSubjectIndexColumns))
	for _, n := range wideSubjectIndexColumns {
		if n == "subject" {
			sub = append(sub, column{n, "String"})
			continue
		}
		sub = append(sub, column{n, typeOf(ev, n)})
	}
	return []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s.subject_index (
%[2]s
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (subject, time, event_id)
SETTINGS index_granularity = 8192`, db, columnDefs(sub)),
		fmt.Sprintf(`CREATE MATERIALIZED VIEW IF NOT EXISTS %[1]s.subject_index_mv TO %[1]s.subject_index AS
SELECT arrayJoin(subjects) AS subject, %[2]s
FROM %[1]s.events`, db, strings.Join(wideSubjectIndexColumns[1:], ", ")),
	}
}
