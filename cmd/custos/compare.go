package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// custos bench -compare runs ClickHouse's own Kafka table engine on the
// throughput run's topic, with its own consumer group, before Custos runs
// on it: the engine is what a privacy office could run instead (no
// validation, no rules, no dead letters), so the ratio of the two rates is
// the figure that counts (absolute rates on a shared machine vary ±20%).
// Each runs alone on the machine; both read the same messages from the same
// broker. The engine keeps 9 columns: the top-level fields JSONEachRow can
// read on ClickHouse 18.16 (nested objects are skipped as unknown fields),
// a parsed event time and the ingestion time.

// engineRun is what ClickHouse's Kafka engine did on the bench topic.
type engineRun struct {
	elapsed   time.Duration
	resources resources
}

// resources is the CPU time and peak RSS of the processes on the machine that
// did the work during one run: this process, clickhouse-server and the
// Kafka broker (when they run here).
type resources struct {
	selfCPU, clickhouseCPU, kafkaCPU time.Duration
	selfRSS, clickhouseRSS, kafkaRSS int64 // peak, bytes
	selfLiveHeap                     int64 // peak live Go heap, bytes
	clickhouseSeen, kafkaSeen        bool
}

// runKafkaEngine creates a Kafka engine table on cfg's events topic, a
// MergeTree table and the materialized view between them in cfg's
// database, waits until n rows are stored, and drops the engine table and
// the view again (a server with Kafka tables may abort on shutdown).
func runKafkaEngine(ctx context.Context, out io.Writer, cfg *Config, n int64) (*engineRun, error) {
	conn, err := ch.Open(&ch.Options{Addr: cfg.ClickHouse.Addr, Auth: ch.Auth{
		Database: cfg.ClickHouse.Database, Username: cfg.ClickHouse.Username, Password: cfg.ClickHouse.Password}})
	if err != nil {
		return nil, fmt.Errorf("connect to clickhouse: %w", err)
	}
	defer conn.Close()
	db := cfg.ClickHouse.Database
	queue, table, view := db+".kafka_engine_queue", db+".kafka_engine_events", db+".kafka_engine_mv"
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, t := range []string{view, queue} {
			if err := conn.Exec(dctx, "DROP TABLE IF EXISTS "+t); err != nil {
				fmt.Fprintf(out, "warning: drop %s: %v (drop it before stopping ClickHouse)\n", t, err)
			}
		}
	}
	defer drop()
	stmts := []string{
		fmt.Sprintf(`CREATE TABLE %s (event_id String, time String, type String, action String,
	purpose String, legal_basis String, outcome String)
ENGINE = Kafka SETTINGS kafka_broker_list = '%s', kafka_topic_list = '%s',
	kafka_group_name = '%s', kafka_format = 'JSONEachRow', kafka_num_consumers = 1`,
			queue, strings.Join(cfg.Kafka.Brokers, ","), cfg.Kafka.EventsTopic, cfg.Kafka.Group+"-kafka-engine"),
		fmt.Sprintf(`CREATE TABLE %s (event_id String, time String, event_time DateTime, type String, action String,
	purpose String, legal_basis String, outcome String, ingested_at DateTime)
ENGINE = MergeTree PARTITION BY toYYYYMM(event_time) ORDER BY (type, event_time)`, table),
	}
	for _, q := range stmts {
		if err := conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("create kafka engine tables: %w", err)
		}
	}
	fmt.Fprintf(out, "\nClickHouse Kafka engine on the same topic (group %s-kafka-engine, JSONEachRow, 9 columns):\n", cfg.Kafka.Group)
	m, err := startMeasure("", "")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	// The view starts the engine's consumer.
	err = conn.Exec(ctx, fmt.Sprintf(`CREATE MATERIALIZED VIEW %s TO %s AS
SELECT event_id, time, parseDateTimeBestEffort(time) AS event_time, type, action, purpose, legal_basis, outcome,
	now() AS ingested_at FROM %s`, view, table, queue))
	if err != nil {
		m.stop()
		return nil, fmt.Errorf("create kafka engine view: %w", err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var stored uint64
	last, lastAt := uint64(0), start
	deadline := start.Add(10 * time.Minute)
	for int64(stored) < n {
		select {
		case <-ctx.Done():
			m.stop()
			return nil, ctx.Err()
		case now := <-tick.C:
			if err := conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&stored); err != nil {
				m.stop()
				return nil, fmt.Errorf("count kafka engine rows: %w", err)
			}
			if now.Sub(lastAt) >= time.Second || int64(stored) >= n {
				fmt.Fprintf(out, "\r  stored %8d / %d   %7.0f rows/s      ", stored, n, float64(stored-last)/now.Sub(lastAt).Seconds())
				last, lastAt = stored, now
			}
			if now.After(deadline) {
				m.stop()
				return nil, fmt.Errorf("kafka engine: only %d of %d rows after 10 minutes", stored, n)
			}
		}
	}
	run := &engineRun{elapsed: time.Since(start)}
	run.resources = m.stop()
	fmt.Fprintf(out, "\n  %d rows in %s = %.0f rows/s\n", stored, run.elapsed.Round(time.Millisecond), float64(n)/run.elapsed.Seconds())
	return run, nil
}

// print writes the comparison table.
func (e *engineRun) print(out io.Writer, n int, t throughput) {
	custos, engine := float64(n)/t.elapsed.Seconds(), float64(n)/e.elapsed.Seconds()
	fmt.Fprintf(out, "\ncompare on %d events (same topic, each alone on the machine; CPU seconds and peak RSS over each run):\n", n)
	fmt.Fprintf(out, "  %-34s %10s %8s %10s %10s %8s %10s %10s\n", "", "events/s", "own CPU", "CH CPU", "Kafka CPU", "own RSS", "CH RSS", "Kafka RSS")
	row := func(name string, rate float64, own time.Duration, ownRSS int64, u resources) {
		fmt.Fprintf(out, "  %-34s %10.0f %7.1fs %9s %10s %7dM %10s %10s\n", name, rate, own.Seconds(),
			cpuOrNA(u.clickhouseCPU, u.clickhouseSeen), cpuOrNA(u.kafkaCPU, u.kafkaSeen), ownRSS>>20,
			rssOrNA(u.clickhouseRSS, u.clickhouseSeen), rssOrNA(u.kafkaRSS, u.kafkaSeen))
	}
	row("Custos (validate, rules, DLQ)", custos, t.resources.selfCPU, t.resources.selfRSS, t.resources)
	row("ClickHouse Kafka engine (9 cols)", engine, e.resources.clickhouseCPU, e.resources.clickhouseRSS, e.resources)
	fmt.Fprintf(out, "  ratio Custos / Kafka engine: %.2fx (issue 8 target: 1.8x)\n", custos/engine)
	if e.resources.clickhouseSeen {
		fmt.Fprintf(out, "  CPU per event, all processes: Custos %.1f µs (own %.1f + ClickHouse %.1f + Kafka %.1f), Kafka engine %.1f µs (ClickHouse %.1f + Kafka %.1f)\n",
			us(t.resources.selfCPU+t.resources.clickhouseCPU+t.resources.kafkaCPU, n), us(t.resources.selfCPU, n), us(t.resources.clickhouseCPU, n), us(t.resources.kafkaCPU, n),
			us(e.resources.clickhouseCPU+e.resources.kafkaCPU, n), us(e.resources.clickhouseCPU, n), us(e.resources.kafkaCPU, n))
	}
}

func us(d time.Duration, n int) float64 { return d.Seconds() * 1e6 / float64(n) }

func cpuOrNA(d time.Duration, ok bool) string {
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func rssOrNA(b int64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%dM", b>>20)
}

// measure records CPU time and peak RSS (sampled every 50ms) of this
// process, and of clickhouse-server and the Kafka broker when they run on
// this machine, between startMeasure and stop; optionally a CPU profile of
// this process.
type measure struct {
	self, clickhouse, kafka proc
	liveHeap                atomic.Int64 // peak of the Go heap live after a GC
	prof                    *os.File
	stopped, done           chan struct{}
}

// proc is one measured process.
type proc struct {
	pid  int
	cpu0 time.Duration
	peak atomic.Int64
}

func (p *proc) start(pid int) {
	p.pid = pid
	if pid > 0 {
		p.cpu0 = procCPU(pid)
	}
}

func (p *proc) sample() {
	if p.pid <= 0 {
		return
	}
	if rss := rssBytes(p.pid); rss > p.peak.Load() {
		p.peak.Store(rss)
	}
}

func (p *proc) used() time.Duration {
	if p.pid <= 0 {
		return 0
	}
	return procCPU(p.pid) - p.cpu0
}

// procCPU returns the user+system CPU time of process pid from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100)
}

// findProcess returns the pid of the first process whose command line
// contains every one of words, or 0.
func findProcess(words ...string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(cmd, w)
		}
		if ok {
			return pid
		}
	}
	return 0
}
