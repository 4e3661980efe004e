package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigPrecedence(t *testing.T) {
	env := map[string]string{
		"CUSTOS_KAFKA_GROUP":           "from-env",
		"CUSTOS_CLICKHOUSE_DATABASE":   "from_env",
		"CUSTOS_KAFKA_EVENTS_TOPIC":    "env.events",
		"CUSTOS_SINK_FLUSH_ROWS":       "777",
		"CUSTOS_CLICKHOUSE_ADDR":       "ch1:9000, ch2:9000",
		"CUSTOS_PSEUDONYM_KEY":         "0123456789abcdef0123",
		"CUSTOS_KAFKA_COMMIT_INTERVAL": "3s",
		"CUSTOS_LIMITS_MAX_SUBJECTS":   "50",
	}
	getenv := func(k string) string { return env[k] }
	cfg, _, err := loadConfig("run", []string{"-config", "testdata/conf.good.yml", "-clickhouse.database", "from_flag"}, getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"default survives", cfg.Kafka.DLQTopic, "custos.dlq"},
		{"file over default", cfg.Kafka.BatchSize, 1000},
		{"file list", cfg.Kafka.Brokers, []string{"10.0.0.1:9092", "10.0.0.2:9092"}},
		{"file duration", cfg.Sink.FlushInterval, 2 * time.Second},
		{"env over file", cfg.Kafka.Group, "from-env"},
		{"env over default", cfg.Sink.FlushRows, 777},
		{"env list", cfg.ClickHouse.Addr, []string{"ch1:9000", "ch2:9000"}},
		{"env duration", cfg.Kafka.CommitInterval, 3 * time.Second},
		{"flag over env and file", cfg.ClickHouse.Database, "from_flag"},
		{"secret from env", cfg.PseudonymKey, "0123456789abcdef0123"},
		{"event limit from env", cfg.Limits.MaxSubjects, 50},
		{"unset limit stays default (zero)", cfg.Limits.MaxCategories, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, ok := tt.want.([]string); ok {
				if !slices.Equal(tt.got.([]string), s) {
					t.Fatalf("got %v, want %v", tt.got, tt.want)
				}
				return
			}
			if tt.got != tt.want {
				t.Fatalf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	none := func(string) string { return "" }
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown key in file", []string{"-config", "testdata/conf.bad.unknown.yml"}, nil, "brokerz"},
		{"invalid value in file", []string{"-config", "testdata/conf.bad.value.yml"}, nil, "sink.flush_rows"},
		{"missing file", []string{"-config", "testdata/nope.yml"}, nil, "nope.yml"},
		{"bad duration flag", []string{"-sink.flush_interval", "soon"}, nil, "not a duration"},
		{"bad number in env", nil, map[string]string{"CUSTOS_KAFKA_PARTITIONS": "six"}, "CUSTOS_KAFKA_PARTITIONS"},
		{"negative limit", []string{"-limits.max_subjects", "-1"}, nil, "max_subjects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := none
			if tt.env != nil {
				env = func(k string) string { return tt.env[k] }
			}
			_, _, err := loadConfig("run", tt.args, env, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
