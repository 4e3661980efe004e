package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/pseudonym"
)

// Config is the whole configuration of the custos binary. Every leaf field
// can be set, from lowest to highest precedence, by its default, the YAML
// config file (-config), the environment variable CUSTOS_<PATH> (the YAML
// path upper-cased with "_" for "." and "-"), and the flag -<path>
// (e.g. kafka.brokers / CUSTOS_KAFKA_BROKERS / -kafka.brokers). Lists are
// comma-separated in the environment and on the command line.
type Config struct {
	Kafka      KafkaConfig      `yaml:"kafka"`
	ClickHouse ClickHouseConfig `yaml:"clickhouse"`
	Rules      RulesConfig      `yaml:"rules"`
	Sink       SinkConfig       `yaml:"sink"`
	// Limits bound what one event may carry; over a limit an event is
	// dead-lettered with reason "limit" (docs/contract.md). Zero: default.
	Limits event.Limits `yaml:"limits"`
	// PseudonymKey is the secret HMAC key (at least 16 bytes) under which
	// subject ids are pseudonymised. Required for run; keep it out of the
	// config file (CUSTOS_PSEUDONYM_KEY or pseudonym_key_file).
	PseudonymKey string `yaml:"pseudonym_key" usage:"secret HMAC key for subject pseudonyms (>= 16 bytes)"`
	// PseudonymKeyFile is a file holding the key, used when PseudonymKey
	// is empty.
	PseudonymKeyFile string `yaml:"pseudonym_key_file" usage:"file holding the pseudonym key"`
	// HTTP is the listen address of /metrics, /healthz and /readyz; empty
	// disables it. Default 127.0.0.1:9464.
	HTTP string `yaml:"http" usage:"listen address for /metrics, /healthz, /readyz (empty: off)"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level" usage:"log level: debug, info, warn, error"`
	// LogFormat is text or json. Default text.
	LogFormat string `yaml:"log_format" usage:"log format: text or json"`
}

// KafkaConfig locates the brokers and names the topics.
type KafkaConfig struct {
	Brokers       []string      `yaml:"brokers" usage:"Kafka bootstrap brokers"`
	Group         string        `yaml:"group" usage:"consumer group id"`
	EventsTopic   string        `yaml:"events_topic" usage:"topic of data-access and data-share events"`
	SubjectsTopic string        `yaml:"subjects_topic" usage:"topic of subject status changes (empty: off)"`
	DLQTopic      string        `yaml:"dlq_topic" usage:"dead-letter topic for invalid messages"`
	AlertsTopic   string        `yaml:"alerts_topic" usage:"topic alerts are published to"`
	Partitions    int           `yaml:"partitions" usage:"partitions of the events topic when Custos creates it"`
	BatchSize     int           `yaml:"batch_size" usage:"most messages of one partition per batch"`
	BatchTimeout  time.Duration `yaml:"batch_timeout" usage:"longest a batch waits to fill"`
	// CommitInterval is how often stored offsets are committed; offsets are
	// also committed on rebalance and shutdown.
	CommitInterval time.Duration `yaml:"commit_interval" usage:"how often offsets of stored events are committed"`
	// MaxBufferedBytes bounds the message bytes fetched but not yet stored,
	// across all partitions (backpressure beyond it).
	MaxBufferedBytes int `yaml:"max_buffered_bytes" usage:"most message bytes fetched but not yet stored, all partitions together (0: 40 MiB)"`
	// RepartitionTopic carries the contributions of events to the rules
	// not grouped by actor, keyed by rule and group key, so that each
	// group's state lives in one place whatever the number of processes
	// (docs/operations.md). Empty (the default): the events topic's name
	// followed by ".by-group"; "off": no repartitioning, those rules keep
	// per-process state (exact with one process only).
	RepartitionTopic string `yaml:"repartition_topic" usage:"topic of the contributions to rules not grouped by actor (empty: <events_topic>.by-group; off: per-process state, one process only)"`
}

// ClickHouseConfig locates the ClickHouse server.
type ClickHouseConfig struct {
	Addr     []string `yaml:"addr" usage:"ClickHouse native-protocol addresses"`
	Database string   `yaml:"database" usage:"ClickHouse database"`
	Username string   `yaml:"username" usage:"ClickHouse user"`
	Password string   `yaml:"password" usage:"ClickHouse password"`
}

// RulesConfig names the user's rule folder, the partner registry and the
// privacy statement.
type RulesConfig struct {
	// Dir is a folder of rule files (*.yml) loaded after the shipped
	// rules of rules/builtin; a rule, list or macro with a shipped name
	// replaces the shipped one. Empty: the shipped rules only.
	Dir      string `yaml:"dir" usage:"folder of the user's rule files, loaded after the shipped rules (empty: shipped rules only)"`
	Partners string `yaml:"partners" usage:"partner registry file"`
	// Policy is the privacy statement as code (docs/policy.md) whose
	// promises the policy_violation rule checks; it reloads with the rules.
	// Default deploy/demo/policy.yml; empty: no promises.
	Policy string `yaml:"policy" usage:"privacy statement (policy) file, reloaded with the rules (empty: no promises)"`
	// Reload is how often the rule files, the partner registry and the
	// policy are checked for changes (SIGHUP reloads at once). Default 10s;
	// 0: never.
	Reload time.Duration `yaml:"reload" usage:"how often rule files, partner registry and policy are checked for changes (0: only on SIGHUP)"`
}

// SinkConfig tunes the writes to ClickHouse.
type SinkConfig struct {
	FlushRows     int           `yaml:"flush_rows" usage:"events per ClickHouse insert, at most"`
	FlushInterval time.Duration `yaml:"flush_interval" usage:"longest rows wait before an insert"`
}

// defaultConfig returns the configuration before file, environment and
// flags.
func defaultConfig() Config {
	return Config{
		Kafka: KafkaConfig{
			Brokers: []string{"127.0.0.1:9092"}, Group: "custos",
			EventsTopic: "custos.events", SubjectsTopic: "custos.subjects",
			DLQTopic: "custos.dlq", AlertsTopic: "custos.alerts",
			Partitions: 6, BatchSize: 5000, BatchTimeout: 100 * time.Millisecond, CommitInterval: 500 * time.Millisecond,
		},
		ClickHouse: ClickHouseConfig{Addr: []string{"127.0.0.1:9000"}, Database: "custos", Username: "default"},
		Rules:      RulesConfig{Partners: "deploy/demo/partners.yml", Policy: "deploy/demo/policy.yml", Reload: 10 * time.Second},
		Sink:       SinkConfig{FlushRows: 100000, FlushInterval: 500 * time.Millisecond},
		HTTP:       "127.0.0.1:9464",
		LogLevel:   "info",
		LogFormat:  "text",
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case len(c.Kafka.Brokers) == 0:
		return errors.New("kafka.brokers: empty")
	case len(c.ClickHouse.Addr) == 0:
		return errors.New("clickhouse.addr: empty")
	case c.Kafka.Partitions < 1:
		return fmt.Errorf("kafka.partitions: %d, must be at least 1", c.Kafka.Partitions)
	case c.Sink.FlushRows < 1:
		return fmt.Errorf("sink.flush_rows: %d, must be at least 1", c.Sink.FlushRows)
	case c.Sink.FlushInterval <= 0:
		return fmt.Errorf("sink.flush_interval: %s, must be positive", c.Sink.FlushInterval)
	}
	if t := c.Kafka.Repartition(); t != "" {
		for _, other := range []string{c.Kafka.EventsTopic, c.Kafka.SubjectsTopic, c.Kafka.DLQTopic, c.Kafka.AlertsTopic} {
			if t == other {
				return fmt.Errorf("kafka.repartition_topic: %q is already the topic of something else", t)
			}
		}
	}
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	return nil
}

// keyed returns the pseudonymiser of the configured key.
func (c *Config) keyed() (*pseudonym.Keyed, error) {
	key, err := c.key()
	if err != nil {
		return nil, err
	}
	keyed, err := pseudonym.New(key)
	if err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	return keyed, nil
}

// key returns the pseudonym key from the config or its file.
func (c *Config) key() ([]byte, error) {
	if c.PseudonymKey != "" {
		return []byte(c.PseudonymKey), nil
	}
	if c.PseudonymKeyFile != "" {
		b, err := os.ReadFile(c.PseudonymKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read pseudonym key: %w", err)
		}
		return []byte(strings.TrimSpace(string(b))), nil
	}
	return nil, errors.New("no pseudonym key: set CUSTOS_PSEUDONYM_KEY or pseudonym_key_file")
}

// loadConfig builds the configuration of a subcommand: defaults, then the
// YAML file named by -config (or CUSTOS_CONFIG), then CUSTOS_* variables,
// then the flags in args. extra registers the subcommand's own flags.
func loadConfig(name string, args []string, env func(string) string, extra func(*flag.FlagSet)) (*Config, *flag.FlagSet, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("custos "+name, flag.ContinueOnError)
	configPath := fs.String("config", env("CUSTOS_CONFIG"), "YAML configuration file (env CUSTOS_CONFIG)")
	leaves := configLeaves(reflect.ValueOf(&cfg).Elem(), "")
	flagVals := map[string]*string{}
	for _, l := range leaves {
		flagVals[l.path] = fs.String(l.path, "", fmt.Sprintf("%s (env %s, default %s)", l.usage, l.env(), l.show()))
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if *configPath != "" {
		data, err := os.ReadFile(*configPath)
		if err != nil {
			return nil, nil, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("config %s: %w", *configPath, err)
		}
	}
	for _, l := range leaves {
		if s := env(l.env()); s != "" {
			if err := l.set(s); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", l.env(), err)
			}
		}
	}
	var flagErr error
	fs.Visit(func(f *flag.Flag) {
		for _, l := range leaves {
			if l.path == f.Name && flagErr == nil {
				if err := l.set(*flagVals[f.Name]); err != nil {
					flagErr = fmt.Errorf("-%s: %w", f.Name, err)
				}
			}
		}
	})
	if flagErr != nil {
		return nil, nil, flagErr
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	return &cfg, fs, nil
}

// leaf is one settable configuration field.
type leaf struct {
	path  string
	usage string
	v     reflect.Value
}

func (l leaf) env() string {
	return "CUSTOS_" + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(l.path))
}

func (l leaf) show() string {
	switch x := l.v.Interface().(type) {
	case []string:
		return strings.Join(x, ",")
	case string:
		if x == "" {
			return `""`
		}
		if strings.Contains(l.path, "password") || strings.Contains(l.path, "key") {
			return "(secret)"
		}
		return x
	default:
		return fmt.Sprint(x)
	}
}

func (l leaf) set(s string) error {
	switch l.v.Interface().(type) {
	case string:
		l.v.SetString(s)
	case []string:
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		l.v.Set(reflect.ValueOf(out))
	case int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("not a whole number: %q", s)
		}
		l.v.SetInt(int64(n))
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration (like 500ms, 2s): %q", s)
		}
		l.v.SetInt(int64(d))
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not true or false: %q", s)
		}
		l.v.SetBool(b)
	default:
		return fmt.Errorf("unsupported setting type %s", l.v.Type())
	}
	return nil
}

// configLeaves lists the settable fields of a config struct, by YAML path.
func configLeaves(v reflect.Value, prefix string) []leaf {
	var out []leaf
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			out = append(out, configLeaves(v.Field(i), path+".")...)
			continue
		}
		usage := f.Tag.Get("usage")
		if usage == "" && strings.HasPrefix(path, "limits.") {
			usage = "event limit (docs/contract.md); 0 means the default"
		}
		out = append(out, leaf{path: path, usage: usage, v: v.Field(i)})
	}
	return out
}
