package rules

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	b := cfg.BulkExport
	if !b.Enabled || b.ThresholdRecords != 10000 || b.Window != time.Hour || b.Severity != SeverityHigh ||
		fmt.Sprint(b.Actions) != "[export download transfer]" {
		t.Fatalf("bulk_export = %+v", b)
	}
	if !cfg.UnknownRecipient.Enabled || cfg.UnknownRecipient.Severity != SeverityHigh {
		t.Fatalf("unknown_recipient = %+v", cfg.UnknownRecipient)
	}
	if cfg.EvidenceSamples != 10 || cfg.AllowedLateness != 10*time.Minute {
		t.Fatalf("config = %+v", cfg)
	}
	var actors []string
	for _, x := range b.Exceptions {
		actors = append(actors, x.Actor)
		if x.Owner != "privacy-office" || x.Reason == "" || !x.Expires.Equal(time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("exception = %+v", x)
		}
	}
	if strings.Join(actors, ",") != "svc-nightly-backup,svc-dwh-etl" {
		t.Fatalf("exceptions for %v", actors)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// Absent keys take the same defaults as the shipped file, except for
	// its exceptions.
	empty, err := ParseConfig("empty.yml", []byte("{}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.BulkExport.Exceptions = nil
	if fmt.Sprint(empty) != fmt.Sprint(cfg) {
		t.Fatalf("empty file = %+v\nwant %+v", empty, cfg)
	}
}

func TestLoadConfigGood(t *testing.T) {
	cfg, err := LoadConfig("testdata/conf.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.BulkExport
	if cfg.EvidenceSamples != 3 || cfg.AllowedLateness != 5*time.Minute || b.ThresholdRecords != 5000 ||
		b.Window != 30*time.Minute || b.Severity != SeverityCritical || len(b.Actions) != 2 || b.Actions[1] != event.ActionDownload ||
		cfg.UnknownRecipient.Enabled || len(b.Exceptions) != 1 || b.Exceptions[0].Line != 9 {
		t.Fatalf("config = %+v", cfg)
	}
}

func TestLoadConfigBad(t *testing.T) {
	tests := []struct {
		file  string
		line  int
		cause string
	}{
		{"conf.bad.unknown_key.yml", 3, `bulk_export: unknown key "treshold"`},
		{"conf.bad.window.yml", 2, `window must be a whole number of minutes, at least 1m, not 90s`},
		{"conf.bad.duration.yml", 1, `allowed_lateness must be a duration such as 10m or 1h, not "ten minutes"`},
		{"conf.bad.lateness.yml", 1, `allowed_lateness 20m0s is more than a quarter of the bulk_export window 1h0m0s`},
		{"conf.bad.severity.yml", 2, `invalid severity "urgent"`},
		{"conf.bad.exception.yml", 3, `exception: missing required key "owner"`},
		{"conf.bad.expires.yml", 6, `expires must be a date YYYY-MM-DD, not "31/12/2027"`},
		{"conf.bad.action.yml", 2, `invalid action "print"`},
		{"conf.bad.threshold.yml", 2, `threshold_records must be positive, not 0`},
		{"conf.bad.enabled.yml", 2, `enabled must be true or false, not "yes please"`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			_, err := LoadConfig(path)
			if err == nil {
				t.Fatal("LoadConfig succeeded, want an error")
			}
			prefix := fmt.Sprintf("%s:%d:", path, tt.line)
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.cause) {
				t.Fatalf("error = %q\nwant prefix %q and cause %q", err, prefix, tt.cause)
			}
		})
	}
}

func TestExpiredExceptions(t *testing.T) {
	cfg := DefaultConfig()
	if got := cfg.ExpiredExceptions(time.Date(2027, 12, 31, 23, 59, 0, 0, time.UTC)); len(got) != 0 {
		t.Fatalf("on the expiry day: %v", got)
	}
	got := cfg.ExpiredExceptions(time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC))
	if len(got) != 2 || got[0].Rule != RuleBulkExport || got[0].Actor != "svc-nightly-backup" {
		t.Fatalf("ExpiredExceptions = %+v", got)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(foundationYAML)
	f.Add([]byte("bulk_export: {window: 2h, exceptions: [{actor: a, reason: b, owner: c, expires: 2020-01-01}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("fuzz.yml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yml:") {
				t.Fatalf("error without file name: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil && cfg.BulkExport.Enabled {
			t.Fatalf("ParseConfig accepted what Validate refuses: %v", err)
		}
	})
}
