package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/ingest/synth"
)

// isolate points cfg at topics, a group and a database of their own, named
// after tag, so runs never see each other's data.
func isolate(cfg *Config, tag string) {
	cfg.Kafka.EventsTopic = "custos." + tag + ".events"
	cfg.Kafka.SubjectsTopic = "custos." + tag + ".subjects"
	cfg.Kafka.DLQTopic = "custos." + tag + ".dlq"
	cfg.Kafka.AlertsTopic = "custos." + tag + ".alerts"
	cfg.Kafka.Group = "custos-" + tag
	cfg.ClickHouse.Database = "custos_" + strings.ReplaceAll(tag, "-", "_")
}

// cmdDemo runs the whole pipeline on a synthetic day and reports what it
// caught against the generator's ground truth.
func cmdDemo(ctx context.Context, args []string, env func(string) string, out io.Writer) error {
	var g genFlags
	cfg, _, err := loadConfig("demo", args, env, g.register)
	if err != nil {
		return err
	}
	if cfg.PseudonymKey == "" && cfg.PseudonymKeyFile == "" {
		cfg.PseudonymKey = "demo-only-pseudonym-key-not-for-production"
	}
	tag := "demo-" + time.Now().UTC().Format("20060102-150405")
	isolate(cfg, tag)
	cfg.LogLevel = "warn"
	log := newLogger(cfg)

	gen, err := g.generator()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Custos demo %s: %d synthetic events of %s, Kafka %v, ClickHouse %v (database %s)\n\n",
		tag, gen.Total(), gen.Config().Start.Format("Mon 2 Jan 2006"), cfg.Kafka.Brokers, cfg.ClickHouse.Addr, cfg.ClickHouse.Database)

	started := time.Now()
	svc, err := newService(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	defer svc.close()
	if err := svc.serveHTTP(ctx, cfg.HTTP); err != nil {
		fmt.Fprintf(out, "(metrics endpoint off: %v)\n", err)
		cfg.HTTP = ""
	}

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- svc.run(runCtx) }()

	produced := make(chan error, 1)
	var sent atomic.Int64
	go func() {
		_, err := produce(ctx, cfg, gen, g.invalid, func(n, _ int, _ float64) { sent.Store(int64(n)) })
		produced <- err
	}()

	total := int64(gen.Total())
	if err := waitStored(ctx, out, svc, total, produced, &sent); err != nil {
		return err
	}
	elapsed := time.Since(started)
	stopRun()
	if err := <-runErr; err != nil {
		return err
	}
	stored, alertCount, _ := svc.writer.Counts()
	fmt.Fprintf(out, "\n\nStored %d events in %s (%.0f events/s end to end, generation and Kafka included); %d alerts.\n\n",
		stored, elapsed.Round(100*time.Millisecond), float64(stored)/elapsed.Seconds(), alertCount)
	return report(ctx, out, cfg, gen.Incidents(), g.invalid)
}

// waitStored prints progress until total events are stored. produced
// reports the end of production (nil: production is already over); sent
// counts the events produced so far.
func waitStored(ctx context.Context, out io.Writer, svc *service, total int64, produced <-chan error, sent *atomic.Int64) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last, lastAt := int64(0), time.Now()
	prodDone := produced == nil
	deadline := time.Now().Add(10 * time.Minute)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-produced:
			if err != nil {
				return err
			}
			prodDone = true
		case now := <-tick.C:
			stored, alerts, _ := svc.writer.Counts()
			done := stored >= total && prodDone
			if now.Sub(lastAt) >= time.Second || done {
				rate := float64(stored-last) / now.Sub(lastAt).Seconds()
				last, lastAt = stored, now
				fmt.Fprintf(out, "\r  produced %8d   stored %8d / %d   %7.0f events/s   lag %8d   alerts %d      ",
					sent.Load(), stored, total, rate, sent.Load()-stored, alerts)
			}
			if done {
				return nil
			}
			if now.After(deadline) {
				return fmt.Errorf("only %d of %d events stored after 10 minutes", stored, total)
			}
		}
	}
}

// report prints the alerts, checks them against the incidents, shows the
// dead letters and says where to look next.
func report(ctx context.Context, out io.Writer, cfg *Config, incidents []synth.Incident, invalid int) error {
	conn, err := ch.Open(&ch.Options{Addr: cfg.ClickHouse.Addr, Auth: ch.Auth{Database: cfg.ClickHouse.Database, Username: cfg.ClickHouse.Username, Password: cfg.ClickHouse.Password}})
	if err != nil {
		return err
	}
	defer conn.Close()
	rows, err := conn.Query(ctx, `SELECT rule, severity, actor_id, summary FROM alerts FINAL ORDER BY event_time`)
	if err != nil {
		return fmt.Errorf("read alerts: %w", err)
	}
	type alert struct{ rule, severity, actor, summary string }
	var alerts []alert
	for rows.Next() {
		var a alert
		if err := rows.Scan(&a.rule, &a.severity, &a.actor, &a.summary); err != nil {
			return err
		}
		alerts = append(alerts, a)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	fmt.Fprintln(out, "Alerts:")
	for _, a := range alerts {
		fmt.Fprintf(out, "  [%s] %-18s %s\n", strings.ToUpper(a.severity), a.rule, a.summary)
	}
	caught, matched := 0, map[int]bool{}
	fmt.Fprintln(out, "\nInjected incidents (ground truth):")
	for _, inc := range incidents {
		hit := -1
		for i, a := range alerts {
			if a.actor != inc.Actor {
				continue
			}
			if a.rule == string(inc.Kind) {
				hit = i
				matched[i] = true
			} else if slices.Contains(inc.Also, synth.IncidentKind(a.rule)) {
				matched[i] = true // another rule rightly firing on the same events
			}
		}
		mark := "MISSED"
		if hit >= 0 {
			mark = "caught"
			caught++
		}
		fmt.Fprintf(out, "  %-7s %-18s %-14s %s\n", mark, inc.Kind, inc.Actor, inc.Description)
	}
	fmt.Fprintf(out, "\n%d of %d incidents caught; %d alerts on normal traffic.\n", caught, len(incidents), len(alerts)-len(matched))
	for i, a := range alerts {
		if !matched[i] {
			fmt.Fprintf(out, "  not an injected incident: [%s] %s %s\n", a.rule, a.actor, a.summary)
		}
	}

	dead, reasons, err := readDeadLetters(ctx, cfg, invalid)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d invalid messages went to the dead-letter topic %s:\n", dead, cfg.Kafka.DLQTopic)
	for _, r := range reasons {
		fmt.Fprintf(out, "  %s\n", r)
	}
	fmt.Fprintf(out, `
Where to look next:
  clickhouse-client -d %[1]s -q "SELECT rule, severity, actor_id, summary FROM alerts FINAL"
  clickhouse-client -d %[1]s -q "SELECT action, count(), sum(records) FROM events GROUP BY action"
  clickhouse-client -d %[1]s -q "SELECT * FROM subject_index LIMIT 5"   (subject ids are HMAC pseudonyms)
  Kafka topics %[2]s (alerts as JSON) and %[3]s (dead letters with reason headers)
  docs/contract.md (the event contract), deploy/demo/README.md (the synthetic world), docs/operations.md
`, cfg.ClickHouse.Database, cfg.Kafka.AlertsTopic, cfg.Kafka.DLQTopic)
	if caught != len(incidents) {
		return errors.New("an injected incident was not caught")
	}
	return nil
}

// readDeadLetters reads up to want messages of the dead-letter topic and
// returns their count and reasons.
func readDeadLetters(ctx context.Context, cfg *Config, want int) (int, []string, error) {
	if want == 0 {
		return 0, nil, nil
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: cfg.Kafka.Brokers, Topic: cfg.Kafka.DLQTopic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var reasons []string
	for len(reasons) < want {
		m, err := r.ReadMessage(rctx)
		if err != nil {
			return len(reasons), reasons, fmt.Errorf("read dead letters: %w (got %d of %d)", err, len(reasons), want)
		}
		var reason, msg string
		for _, h := range m.Headers {
			switch h.Key {
			case kafka.HeaderReason:
				reason = string(h.Value)
			case kafka.HeaderError:
				msg = string(h.Value)
			}
		}
		reasons = append(reasons, fmt.Sprintf("offset %d: [%s] %s", m.Offset, reason, msg))
	}
	return len(reasons), reasons, nil
}
