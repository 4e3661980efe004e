package clickhouse

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/custos-privacy/custos/ingest/event"
)

// modernOnly matches syntax ClickHouse 18.16 does not have.
var modernOnly = regexp.MustCompile(`(?i)DateTime64|\bTTL\b|\bMap\(|CODEC|\bINDEX\b|PROJECTION|insert_deduplication_token|ADD COLUMN IF NOT EXISTS|JSONExtract|LowCardinality|Nullable|\bWITH\s+\w+\s+AS\s*\(`)

func TestStatementsPerVersion(t *testing.T) {
	tests := []struct {
		name           string
		v              Version
		wantLowCard    bool
		wantSkipIndex  bool
		wantStatements int
	}{
		{"18.16", Version18, false, false, 2 + 7 + 5},
		{"19.17", Version{19, 17}, false, false, 2 + 7 + 5},
		{"20.3", Version{20, 3}, true, false, 2 + 7 + 5},
		{"24.8", Version{24, 8}, true, true, 2 + 7 + 3 + 5},
		{"26.9", VersionModern, true, true, 2 + 7 + 3 + 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stmts := Statements("custos_x", tt.v)
			if len(stmts) != tt.wantStatements {
				t.Fatalf("got %d statements, want %d", len(stmts), tt.wantStatements)
			}
			all := strings.Join(stmts, "\n")
			if got := strings.Contains(all, "LowCardinality"); got != tt.wantLowCard {
				t.Errorf("LowCardinality present = %v, want %v", got, tt.wantLowCard)
			}
			if got := strings.Contains(all, "ADD INDEX"); got != tt.wantSkipIndex {
				t.Errorf("skip indexes present = %v, want %v", got, tt.wantSkipIndex)
			}
			if !tt.v.AtLeast(19, 0) {
				if m := modernOnly.FindString(all); m != "" {
					t.Errorf("18.16 statements use %q", m)
				}
			}
			for i, s := range stmts {
				// Idempotent: CREATE and ALTER ... IF NOT EXISTS, DROP ...
				// IF EXISTS, and INSERT only as the refill of the
				// ReplacingMergeTree subject_index (duplicates collapse).
				switch {
				case strings.HasPrefix(s, "DROP "):
					if !strings.Contains(s, "IF EXISTS") {
						t.Errorf("statement %d is not idempotent: %s", i, s)
					}
				case strings.HasPrefix(s, "INSERT "):
					if !strings.HasPrefix(s, "INSERT INTO custos_x.subject_index (") {
						t.Errorf("statement %d inserts elsewhere than the subject_index refill: %s", i, s)
					}
				case !strings.Contains(s, "IF NOT EXISTS"):
					t.Errorf("statement %d is not idempotent: %s", i, s)
				}
				if strings.Contains(s, "CREATE") && !strings.Contains(s, "custos_x.") && !strings.HasPrefix(s, "CREATE DATABASE") {
					t.Errorf("statement %d does not qualify its table: %s", i, s)
				}
			}
		})
	}
}

func TestQueriesAre1816Safe(t *testing.T) {
	for _, q := range Queries {
		t.Run(q.Name, func(t *testing.T) {
			if m := modernOnly.FindString(q.SQL); m != "" {
				t.Errorf("query uses %q", m)
			}
			if strings.Contains(strings.ToUpper(q.SQL), " FINAL") {
				t.Errorf("query uses FINAL")
			}
			for _, p := range q.Params {
				if !strings.Contains(q.SQL, "@"+p) {
					t.Errorf("param %s not in SQL", p)
				}
			}
			used := regexp.MustCompile(`@(\w+)`).FindAllStringSubmatch(q.SQL, -1)
			for _, u := range used {
				found := false
				for _, p := range q.Params {
					found = found || p == u[1]
				}
				if !found {
					t.Errorf("SQL uses @%s, not listed in Params", u[1])
				}
			}
		})
	}
}

func TestInsertSQLHasColumnList(t *testing.T) {
	for _, f := range []features{featuresOf(Version18), featuresOf(VersionModern)} {
		got := insertSQL("db.events", eventColumns(f))
		if !strings.HasPrefix(got, "INSERT INTO db.events (event_id, time, time_ms, type,") || !strings.HasSuffix(got, "kafka_offset)") {
			t.Errorf("insert SQL = %s", got)
		}
	}
}

// The column buffers must append exactly one column per insert column, in
// order, with one value per row.
func TestEventBufMatchesColumns(t *testing.T) {
	var b eventBuf
	evs := []*event.Event{sampleEvent(1), sampleEvent(2)}
	evs[1].Attributes = nil
	b.fill(evs)
	cols := []any{}
	rec := recorder{cols: &cols}
	if err := b.appendTo(rec); err != nil {
		t.Fatal(err)
	}
	if want := len(eventColumns(features{})); len(cols) != want {
		t.Fatalf("appended %d columns, want %d", len(cols), want)
	}
	for i, c := range cols {
		if n := lenOf(c); n != 2 {
			t.Errorf("column %d (%s) has %d rows", i, eventColumns(features{})[i].name, n)
		}
	}
	if got := cols[35].([][]string); len(got[0]) != 2 || got[0][1] != "team" || got[1] != nil {
		t.Errorf("attribute keys = %q", got)
	}
	if got := cols[1].([]time.Time)[0]; got.Location() != time.UTC {
		t.Errorf("time not UTC: %v", got)
	}
	if got := cols[2].([]uint16)[0]; got != 123 {
		t.Errorf("time_ms = %d, want 123", got)
	}
	b.reset()
	if len(b.eventID) != 0 || len(b.categories) != 0 || len(b.flatKeys) != 0 {
		t.Error("reset left rows")
	}

	var a alertBuf
	a.fill(nil, time.Now())
	var ac []any
	_ = a.appendTo(recorder{cols: &ac})
	if len(ac) != len(alertColumns(features{})) {
		t.Errorf("alert columns %d, want %d", len(ac), len(alertColumns(features{})))
	}
	var s statusBuf
	var sc []any
	_ = s.appendTo(recorder{cols: &sc})
	if len(sc) != len(subjectStatusColumns(features{})) {
		t.Errorf("status columns %d, want %d", len(sc), len(subjectStatusColumns(features{})))
	}
}

func lenOf(c any) int {
	switch v := c.(type) {
	case []string:
		return len(v)
	case [][]string:
		return len(v)
	case []time.Time:
		return len(v)
	case []uint16:
		return len(v)
	case []uint8:
		return len(v)
	case []int64:
		return len(v)
	case []int32:
		return len(v)
	}
	panic(fmt.Sprintf("type %T", c))
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero is valid", Config{}, ""},
		{"bad addr", Config{Addr: []string{"localhost"}}, "not host:port"},
		{"bad database", Config{Database: "custos-prod"}, "letters, digits"},
		{"sql in database", Config{Database: "x; DROP TABLE y"}, "letters, digits"},
		{"negative timeout", Config{DialTimeout: -time.Second}, "dial timeout"},
		{"backoff order", Config{RetryBackoff: time.Minute, MaxRetryBackoff: time.Second}, "max retry backoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v, want one containing %q wrapping ErrInvalidConfig", err, tt.wantErr)
			}
		})
	}
	d := Config{MaxRetries: -1}.withDefaults()
	if d.MaxRetries != 0 || d.Addr[0] != DefaultAddr || d.Database != DefaultDatabase {
		t.Errorf("defaults: %+v", d)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		class     string
		transient bool
	}{
		{"nil", nil, ClassNone, false},
		{"eof", fmt.Errorf("send batch: %w", io.EOF), ClassConnection, true},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, ClassConnection, true},
		{"too many parts", &ch.Exception{Code: 252}, ClassTransient, true},
		{"unknown table", fmt.Errorf("x: %w", &ch.Exception{Code: 60}), ClassServer, false},
		{"canceled", fmt.Errorf("x: %w", errCanceled()), ClassCanceled, false},
		{"other", errors.New("boom"), ClassOther, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.class {
				t.Errorf("Classify = %s, want %s", got, tt.class)
			}
			if got := IsTransient(tt.err); got != tt.transient {
				t.Errorf("IsTransient = %v, want %v", got, tt.transient)
			}
		})
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		d := jitter(time.Second)
		if d < 800*time.Millisecond || d > 1200*time.Millisecond {
			t.Fatalf("jitter %s out of ±20%%", d)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
		err  bool
	}{
		{"18.16", Version18, false},
		{"24.8.4.13", Version{24, 8}, false},
		{"26.9", VersionModern, false},
		{"24", Version{}, true},
		{"x.1", Version{}, true},
		{"24.-1", Version{}, true},
		{"", Version{}, true},
	} {
		got, err := ParseVersion(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}
