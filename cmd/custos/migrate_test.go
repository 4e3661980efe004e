package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// custos migrate -print renders the DDL for the server version asked,
// without connecting to anything (no service runs in this unit test).
func TestMigratePrint(t *testing.T) {
	for _, tc := range []struct {
		version          string
		want, wantAbsent []string
	}{
		{"18.16", []string{"CREATE TABLE IF NOT EXISTS audit.events (", "event_id String", "CREATE MATERIALIZED VIEW IF NOT EXISTS audit.subject_index_mv"},
			[]string{"LowCardinality", "ADD INDEX"}},
		{"24.8.4.13", []string{"type LowCardinality(String)", "ADD INDEX IF NOT EXISTS idx_recipient_domain"}, nil},
		{"20.3", []string{"LowCardinality(String)"}, []string{"ADD INDEX"}},
	} {
		t.Run(tc.version, func(t *testing.T) {
			var out, errOut bytes.Buffer
			env := func(string) string { return "" }
			code := run(context.Background(), []string{"migrate", "-print", tc.version, "-clickhouse.database", "audit"}, env, &out, &errOut)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			got := out.String()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			for _, w := range tc.wantAbsent {
				if strings.Contains(got, w) {
					t.Errorf("output has %q", w)
				}
			}
			if n := strings.Count(got, ";\n\n"); n < 8 {
				t.Errorf("%d statements, want at least 8", n)
			}
		})
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "-print", "latest"}, func(string) string { return "" }, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "major.minor") {
		t.Errorf("-print latest: exit %d, stderr %q; want an error naming the format", code, errOut.String())
	}
}
