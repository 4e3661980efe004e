package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/ingest/synth"
	"github.com/custos-privacy/custos/sinks/clickhouse"
)

// cmdRun consumes, detects and stores until ctx ends (SIGTERM/SIGINT), then
// drains and commits.
func cmdRun(ctx context.Context, args []string, env func(string) string, _ io.Writer) error {
	cfg, _, err := loadConfig("run", args, env, nil)
	if err != nil {
		return err
	}
	log := newLogger(cfg)
	s, err := newService(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.serveHTTP(ctx, cfg.HTTP); err != nil {
		return err
	}
	log.Info("custos running", "version", version, "brokers", cfg.Kafka.Brokers, "topic", cfg.Kafka.EventsTopic,
		"clickhouse", cfg.ClickHouse.Addr, "database", cfg.ClickHouse.Database)
	err = s.run(ctx)
	log.Info("custos stopped")
	return err
}

// cmdMigrate creates or upgrades the ClickHouse schema and the Kafka topics.
func cmdMigrate(ctx context.Context, args []string, env func(string) string, stdout io.Writer) error {
	var noTopics bool
	var print string
	cfg, _, err := loadConfig("migrate", args, env, func(fs *flag.FlagSet) {
		fs.BoolVar(&noTopics, "no-topics", false, "do not create the Kafka topics")
		fs.StringVar(&print, "print", "", "print the DDL Custos runs on a new database of a ClickHouse server of this version (e.g. 18.16, 24.8) and exit, connecting to nothing")
	})
	if err != nil {
		return err
	}
	if print != "" {
		v, err := clickhouse.ParseVersion(print)
		if err != nil {
			return fmt.Errorf("-print: %w", err)
		}
		for _, stmt := range clickhouse.Statements(cfg.ClickHouse.Database, v) {
			fmt.Fprintf(stdout, "%s;\n\n", stmt)
		}
		return nil
	}
	log := newLogger(cfg)
	store, err := clickhouse.Open(ctx, clickhouse.Config{
		Addr: cfg.ClickHouse.Addr, Database: cfg.ClickHouse.Database,
		Username: cfg.ClickHouse.Username, Password: cfg.ClickHouse.Password, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("open clickhouse: %w", err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	applied, err := store.AppliedMigrations(ctx)
	if err != nil {
		return err
	}
	major, minor := store.ServerVersion()
	fmt.Fprintf(stdout, "clickhouse %d.%d: database %s at migration %v\n", major, minor, cfg.ClickHouse.Database, applied[len(applied)-1])
	if noTopics {
		return nil
	}
	if err := kafka.EnsureTopics(ctx, cfg.Kafka.Brokers, 30*time.Second, topicSpecs(cfg)...); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "kafka %v: topics %s, %s, %s, %s ready\n", cfg.Kafka.Brokers,
		cfg.Kafka.EventsTopic, cfg.Kafka.SubjectsTopic, cfg.Kafka.DLQTopic, cfg.Kafka.AlertsTopic)
	return nil
}

// genFlags are the generator's own flags.
type genFlags struct {
	events      int
	seed        int64
	start       string
	invalid     int
	partnersOut string
	noIncidents bool
	scenario    string
	out         string
	eventSize   int
}

func (g *genFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&g.events, "events", 500000, "normal events to generate (incidents come on top)")
	fs.Int64Var(&g.seed, "seed", synth.DefaultSeed, "random seed; the same seed gives the same stream")
	fs.StringVar(&g.start, "start", "", "start of the simulated day, RFC 3339 (default: yesterday 00:00 UTC)")
	fs.IntVar(&g.invalid, "invalid", 3, "invalid messages to mix in (they must reach the dead-letter topic)")
	fs.StringVar(&g.partnersOut, "partners-out", "", "also write the generator's partner registry to this file")
	fs.BoolVar(&g.noIncidents, "no-incidents", false, "generate normal traffic only")
	fs.StringVar(&g.out, "out", "", "write JSON lines to this file (- for stdout) instead of Kafka, for custos replay; subject statuses go to FILE.subjects")
	fs.StringVar(&g.scenario, "scenario", string(synth.ScenarioFoundation),
		"foundation: one day with four incidents; full: eight days (seven to learn from) with an incident for every built-in detection on the last")
	fs.IntVar(&g.eventSize, "event-size", 0, eventSizeUsage)
}

// eventSizeUsage documents the -event-size flag of gen and bench.
const eventSizeUsage = "shape events toward this many bytes of JSON (200-16384), with the optional fields producers fill or leave out (0: as generated, ~600 B)"

// generator builds the synthetic generator from the flags.
func (g *genFlags) generator() (*synth.Generator, error) {
	scenario, err := synth.ParseScenario(g.scenario)
	if err != nil {
		return nil, fmt.Errorf("-scenario: %w", err)
	}
	var start time.Time // the full scenario has its own default start, fitting its agreements
	if scenario == synth.ScenarioFoundation {
		start = time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	}
	if g.start != "" {
		t, err := time.Parse(time.RFC3339, g.start)
		if err != nil {
			return nil, fmt.Errorf("-start: %w", err)
		}
		start = t
	}
	gen, err := synth.New(synth.Config{Seed: g.seed, Start: start, Events: g.events, Incidents: !g.noIncidents, Scenario: scenario, TargetSize: g.eventSize})
	if err != nil {
		return nil, err
	}
	if g.partnersOut != "" {
		f, err := os.Create(g.partnersOut)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := gen.WritePartners(f); err != nil {
			return nil, fmt.Errorf("write partners: %w", err)
		}
	}
	return gen, nil
}

// poison returns n invalid messages of different kinds, to show that bad
// input is dead-lettered with its reason and never stops the stream.
func poison(n int) []kafkago.Message {
	samples := []string{
		`{"event_id":"bad-1","time":"2026-11-23T10:00:00Z","type":"access","action":"export","actor":{"id":"emp-bad"},"source":{"system":"crm"},"data":{}}`,
		`{"event_id":"bad-2","time":"not a time","type":"access","action":"read","actor":{"id":"emp-bad"},"source":{"system":"crm"}}`,
		`this is not JSON at all`,
		`{"event_id":"bad-4","time":"2026-11-23T10:00:00Z","type":"share","action":"transfer","actor":{"id":"emp-bad"},"source":{"system":"crm"},"data":{"records":5}}`,
	}
	out := make([]kafkago.Message, n)
	for i := range out {
		out[i] = kafkago.Message{Key: []byte("emp-bad"), Value: []byte(samples[i%len(samples)])}
	}
	return out
}

// cmdGen produces a synthetic day of events to the events topic.
func cmdGen(ctx context.Context, args []string, env func(string) string, stdout io.Writer) error {
	var g genFlags
	cfg, _, err := loadConfig("gen", args, env, g.register)
	if err != nil {
		return err
	}
	gen, err := g.generator()
	if err != nil {
		return err
	}
	if g.out != "" {
		return writeJSONLines(g.out, gen, stdout)
	}
	if err := kafka.EnsureTopics(ctx, cfg.Kafka.Brokers, 30*time.Second, topicSpecs(cfg)...); err != nil {
		return err
	}
	n, err := produce(ctx, cfg, gen, g.invalid, func(sent, total int, rate float64) {
		fmt.Fprintf(stdout, "\rproduced %d/%d events (%.0f/s)   ", sent, total, rate)
	})
	fmt.Fprintln(stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "produced %d events and %d invalid messages to %s; incidents:\n", n, g.invalid, cfg.Kafka.EventsTopic)
	for _, inc := range gen.Incidents() {
		fmt.Fprintf(stdout, "  %-18s %-14s %s\n", inc.Kind, inc.Actor, inc.Description)
	}
	return nil
}

// produce writes the generator's subject statuses to the subjects topic,
// then its events (and invalid poison messages) to the events topic.
func produce(ctx context.Context, cfg *Config, gen *synth.Generator, invalid int, progress func(sent, total int, rate float64)) (int, error) {
	w := &kafkago.Writer{
		Addr: kafkago.TCP(cfg.Kafka.Brokers...), Transport: kafka.NewTransport(), Topic: cfg.Kafka.EventsTopic,
		Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll,
		BatchSize: 2000, BatchTimeout: 5 * time.Millisecond, // BatchBytes keeps its 1 MiB default: the broker's message.max.bytes
	}
	defer w.Close()
	// Subject statuses first: an opt-out must be known before the shares
	// that concern it (the two topics are consumed independently).
	if cfg.Kafka.SubjectsTopic != "" {
		sw := &kafkago.Writer{
			Addr: kafkago.TCP(cfg.Kafka.Brokers...), Transport: kafka.NewTransport(), Topic: cfg.Kafka.SubjectsTopic,
			Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll, BatchTimeout: 5 * time.Millisecond,
		}
		defer sw.Close()
		if err := synth.ProduceSubjects(ctx, sw, gen); err != nil {
			return 0, fmt.Errorf("produce subject statuses: %w", err)
		}
	}
	start := time.Now()
	total := gen.Total()
	err := synth.Produce(ctx, w, gen, total, func(sent int) {
		if progress != nil {
			progress(sent, total, float64(sent)/time.Since(start).Seconds())
		}
	})
	if err != nil {
		return 0, fmt.Errorf("produce events: %w", summarize(err))
	}
	if invalid > 0 {
		if err := w.WriteMessages(ctx, poison(invalid)...); err != nil {
			return 0, fmt.Errorf("produce invalid messages: %w", summarize(err))
		}
	}
	return total, nil
}

// summarize shortens kafka-go's WriteErrors, which repeat one error per
// message, to the count and the distinct errors.
func summarize(err error) error {
	var we kafkago.WriteErrors
	if !errors.As(err, &we) {
		return err
	}
	seen := map[string]int{}
	var order []string
	for _, e := range we {
		if e == nil {
			continue
		}
		if seen[e.Error()] == 0 {
			order = append(order, e.Error())
		}
		seen[e.Error()]++
	}
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = fmt.Sprintf("%d × %s", seen[s], s)
	}
	return fmt.Errorf("%d of %d messages failed: %s", we.Count(), len(we), strings.Join(parts, "; "))
}

// writeJSONLines writes the generator's events, one JSON object per line,
// to path (- for stdout), and its subject statuses to path.subjects.
func writeJSONLines(path string, gen *synth.Generator, stdout io.Writer) error {
	out := stdout
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
		sf, err := os.Create(path + ".subjects")
		if err != nil {
			return err
		}
		defer sf.Close()
		for _, s := range gen.SubjectStatuses() {
			if _, err := fmt.Fprintf(sf, "%s\n", s.Value); err != nil {
				return err
			}
		}
	}
	w := bufio.NewWriterSize(out, 1<<20)
	var buf []byte
	for {
		_, v, ok := gen.Next(buf)
		if !ok {
			break
		}
		buf = append(v, '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return w.Flush()
}
