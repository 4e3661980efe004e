package clickhouse

import (
	"fmt"
	"strconv"
	"strings"
)

// Table layout
//
// All times are DateTime('UTC') (whole seconds) with a separate UInt16
// millisecond column where sub-second precision matters: ClickHouse 18.16,
// which CI runs, has no DateTime64.
//
//	events          one row per stored event: every field of the v1
//	                contract plus its Kafka coordinates.
//	                ReplacingMergeTree, PARTITION BY toYYYYMM(time),
//	                ORDER BY (toDate(time), actor_id, time, event_id):
//	                the office asks "what did actor A do between T1 and
//	                T2", and a re-delivered copy of an event has the same
//	                sorting key, so merges collapse it.
//	event_offsets   (kafka_topic, kafka_partition, kafka_offset, event_id,
//	                time), filled by the materialized view
//	                event_offsets_mv from the same INSERT as events, after
//	                the events rows are written: an offset present here
//	                means its event is stored. The ingest path asks
//	                StoredOffsets and skips those offsets on re-delivery,
//	                so re-delivery adds no row at all.
//	                ReplacingMergeTree ORDER BY (topic, partition, offset).
//	subject_index   one row per (subject pseudonym, event): subject,
//	                time, actor_id, event_id, filled by the materialized
//	                view subject_index_mv with arrayJoin(subjects).
//	                ORDER BY (subject, time, event_id) finds "everything
//	                that touched subject X" in a few granules; the rows
//	                point into events by its sorting key (toDate(time),
//	                actor_id, time, event_id), so the forensic queries
//	                read the events' details with a key lookup
//	                ((...) IN (SELECT ... FROM subject_index ...)) instead
//	                of storing them twice. The first release stored 20
//	                columns here (migration 3 converts such a database):
//	                a subject row now costs ClickHouse a fraction of
//	                that on insert and in merges (the generator's events
//	                list 1.34 subjects each).
//	alerts          one row per alert version; ReplacingMergeTree(stored_at)
//	                ORDER BY alert_id (the stable id), so a re-raised
//	                alert replaces the older version on merge.
//	subject_status  subject status changes from the subjects topic;
//	                ReplacingMergeTree ORDER BY (subject, time, time_ms,
//	                status).
//	schema_migrations  the versions Migrate applied.
//
// On servers from 20.1 the enum-like string columns are LowCardinality; from
// 21.1 events has bloom-filter skip indexes on recipient_domain, categories
// and source_system (migration 2). Neither changes what a query returns.

// Version is a ClickHouse server version.
type Version struct {
	Major, Minor int
}

// Version18 is the oldest server Custos supports (Debian's 18.16).
var Version18 = Version{18, 16}

// VersionModern is a current server, used by tests to render the
// modern-only statements.
var VersionModern = Version{26, 9}

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// ParseVersion reads "major.minor", optionally followed by more
// components ("24.8.4.13"), as a server reports it.
func ParseVersion(s string) (Version, error) {
	var v Version
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return v, fmt.Errorf("version %q: want major.minor, e.g. 24.8", s)
	}
	var err error
	if v.Major, err = strconv.Atoi(parts[0]); err == nil {
		v.Minor, err = strconv.Atoi(parts[1])
	}
	if err != nil || v.Major < 0 || v.Minor < 0 {
		return Version{}, fmt.Errorf("version %q: want major.minor, e.g. 24.8", s)
	}
	return v, nil
}

// String formats v as major.minor.
func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// features is what a server version supports beyond 18.16.
type features struct {
	lowCardinality bool
	skipIndexes    bool
}

func featuresOf(v Version) features {
	return features{
		lowCardinality: v.AtLeast(20, 1),
		skipIndexes:    v.AtLeast(21, 1),
	}
}

// lc is the type of an enum-like string column.
func (f features) lc() string {
	if f.lowCardinality {
		return "LowCardinality(String)"
	}
	return "String"
}

type column struct{ name, typ string }

// eventColumns are the columns of events that InsertEvents writes, in
// insert order. ingested_at is filled by its DEFAULT.
func eventColumns(f features) []column {
	lc := f.lc()
	return []column{
		{"event_id", "String"},
		{"time", "DateTime('UTC')"},
		{"time_ms", "UInt16"},
		{"type", lc},
		{"action", lc},
		{"actor_id", "String"},
		{"actor_kind", lc},
		{"actor_role", lc},
		{"actor_department", lc},
		{"source_system", lc},
		{"source_dataset", lc},
		{"source_environment", lc},
		{"categories", "Array(String)"},
		{"records", "Int64"},
		{"has_records", "UInt8"},
		{"bytes", "Int64"},
		{"subjects", "Array(String)"},
		{"subjects_truncated", "UInt8"},
		{"subject_kinds", "Array(String)"},
		{"recipient_id", "String"},
		{"recipient_name", "String"},
		{"recipient_domain", "String"},
		{"recipient_country", lc},
		{"recipient_kind", lc},
		{"channel_kind", lc},
		{"channel_encrypted", "UInt8"},
		{"channel_encrypted_set", "UInt8"},
		{"purpose", lc},
		{"legal_basis", lc},
		{"outcome", lc},
		{"request_id", "String"},
		{"request_session", "String"},
		{"request_ticket", "String"},
		{"request_client_ip", "String"},
		{"request_user_agent", "String"},
		{"attribute_keys", "Array(String)"},
		{"attribute_values", "Array(String)"},
		{"extra", "String"},
		{"schema", lc},
		{"kafka_topic", lc},
		{"kafka_partition", "Int32"},
		{"kafka_offset", "Int64"},
	}
}

func alertColumns(f features) []column {
	lc := f.lc()
	return []column{
		{"alert_id", "String"},
		{"rule", lc},
		{"title", "String"},
		{"severity", lc},
		{"actor_id", "String"},
		{"group_key", "String"},
		{"window_start", "DateTime('UTC')"},
		{"window_start_ms", "UInt16"},
		{"window_end", "DateTime('UTC')"},
		{"window_end_ms", "UInt16"},
		{"events", "Int64"},
		{"records", "Int64"},
		{"threshold", "Int64"},
		{"summary", "String"},
		{"evidence", "Array(String)"},
		{"recipient", "String"},
		{"kafka_partition", "Int32"},
		{"event_time", "DateTime('UTC')"},
		{"event_time_ms", "UInt16"},
		{"stored_at", "DateTime('UTC')"},
	}
}

func subjectStatusColumns(f features) []column {
	lc := f.lc()
	return []column{
		{"subject", "String"},
		{"time", "DateTime('UTC')"},
		{"time_ms", "UInt16"},
		{"status", lc},
		{"uses", "Array(String)"},
		{"kafka_topic", lc},
		{"kafka_partition", "Int32"},
		{"kafka_offset", "Int64"},
	}
}

func columnDefs(cols []column) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "    %s %s", c.name, c.typ)
	}
	return b.String()
}

func columnNames(cols []column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// insertSQL is an INSERT with an explicit column list (18.16 needs it).
func insertSQL(table string, cols []column) string {
	return "INSERT INTO " + table + " (" + columnNames(cols) + ")"
}

// Schema DDL of migration 1, in order. db is the database name.
func createTables(db string, f features) []string {
	ev := eventColumns(f)
	return []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s.events (
%[2]s,
    ingested_at DateTime('UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (toDate(time), actor_id, time, event_id)
SETTINGS index_granularity = 8192`, db, columnDefs(ev)),

		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s.event_offsets (
    kafka_topic %[2]s,
    kafka_partition Int32,
    kafka_offset Int64,
    event_id String,
    time DateTime('UTC')
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (kafka_topic, kafka_partition, kafka_offset)
SETTINGS index_granularity = 8192`, db, f.lc()),

		fmt.Sprintf(`CREATE MATERIALIZED VIEW IF NOT EXISTS %[1]s.event_offsets_mv TO %[1]s.event_offsets AS
SELECT kafka_topic, kafka_partition, kafka_offset, event_id, time
FROM %[1]s.events`, db),

		createSubjectIndex(db),
		createSubjectIndexView(db),

		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s.alerts (
%[2]s
) ENGINE = ReplacingMergeTree(stored_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY alert_id
SETTINGS index_granularity = 8192`, db, columnDefs(alertColumns(f))),

		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s.subject_status (
%[2]s,
    ingested_at DateTime('UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (subject, time, time_ms, status)
SETTINGS index_granularity = 8192`, db, columnDefs(subjectStatusColumns(f))),
	}
}

// createSubjectIndex is the DDL of the narrow subject_index.
func createSubjectIndex(db string) string {
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s.subject_index (
%[2]s
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (subject, time, event_id)
SETTINGS index_granularity = 8192`, db, columnDefs(subjectRefColumns()))
}

// createSubjectIndexView is the DDL of the view that fills the narrow
// subject_index from every INSERT into events.
func createSubjectIndexView(db string) string {
	return fmt.Sprintf(`CREATE MATERIALIZED VIEW IF NOT EXISTS %[1]s.subject_index_mv TO %[1]s.subject_index AS
SELECT arrayJoin(subjects) AS subject, time, actor_id, event_id
FROM %[1]s.events`, db)
}

// subjectRefColumns are the columns of subject_index from migration 3.
func subjectRefColumns() []column {
	return []column{
		{"subject", "String"},
		{"time", "DateTime('UTC')"},
		{"actor_id", "String"},
		{"event_id", "String"},
	}
}

// Schema DDL of migration 3: a database whose migration 1 created the
// 20-column subject_index (the first release) gets the narrow one. The old
// view and table are dropped (they hold nothing that events does not), the
// narrow ones created, and the table refilled from events. Rows the new
// view writes while the refill runs are written twice; ReplacingMergeTree
// collapses them and every query counts events with LIMIT 1 BY event_id or
// uniqExact, so the step can also be run again after a crash. It runs only
// where subject_index is the wide one (wideSubjectIndexPresent); since
// migration 1 creates the narrow table itself, a new database skips it.
//
// The conversion is not safe to run from two processes at once (one could
// drop the view the other just created, and events inserted meanwhile
// would miss their subject rows): run `custos migrate` alone once before
// starting several processes on such a database.
func narrowSubjectIndex(db string, _ features) []string {
	return []string{
		fmt.Sprintf("DROP TABLE IF EXISTS %s.subject_index_mv", db),
		fmt.Sprintf("DROP TABLE IF EXISTS %s.subject_index", db),
		createSubjectIndex(db),
		createSubjectIndexView(db),
		fmt.Sprintf(`%s
SELECT arrayJoin(subjects) AS subject, time, actor_id, event_id
FROM %s.events`, insertSQL(db+".subject_index", subjectRefColumns()), db),
	}
}

// Schema DDL of migration 2: data-skipping indexes, on servers that have
// them (21.1 and later); nothing on older servers.
func addSkipIndexes(db string, f features) []string {
	if !f.skipIndexes {
		return nil
	}
	return []string{
		fmt.Sprintf(`ALTER TABLE %s.events ADD INDEX IF NOT EXISTS idx_recipient_domain recipient_domain TYPE bloom_filter(0.01) GRANULARITY 4`, db),
		fmt.Sprintf(`ALTER TABLE %s.events ADD INDEX IF NOT EXISTS idx_categories categories TYPE bloom_filter(0.01) GRANULARITY 4`, db),
		fmt.Sprintf(`ALTER TABLE %s.events ADD INDEX IF NOT EXISTS idx_source_system source_system TYPE set(256) GRANULARITY 4`, db),
	}
}
