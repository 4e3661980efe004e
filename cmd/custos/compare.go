package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/sinks/clickhouse"
)

// custos bench -compare runs ClickHouse's own Kafka table engine on the
// throughput run's topic, with its own consumer group, before Custos runs
// on it: the engine is what a privacy office could run instead (no
// validation, no rules, no dead letters), so the ratio of the two rates is
// the figure that counts (absolute rates on a shared machine vary ±20%).
// Each runs alone on the machine; all read the same messages from the same
// broker. The engine runs twice:
//
//   - engineNarrow keeps 9 columns: the top-level fields JSONEachRow can
//     read on ClickHouse 18.16 (nested objects are skipped as unknown
//     fields), a parsed event time and the ingestion time. Issue 8 set its
//     targets against this one.
//   - engineEquivalent stores what Custos stores: every field of the event
//     in Custos's own events table, with its subject index and offsets
//     views (the same migrations build it), subject ids hashed. 18.16 has
//     no JSON functions beyond visitParam* and no format that reads a whole
//     nested document into one column, so the engine reads each message as
//     one TabSeparated String and the view takes it apart with
//     visitParamExtract* (nested objects with visitParamExtractRaw first).
//     It validates nothing, and a field it cannot find is stored empty.
//     This is what a privacy office that needs the forensic questions
//     answered would have to run instead of Custos.

// engineKind selects what the Kafka engine's view stores.
type engineKind int

const (
	engineNarrow engineKind = iota
	engineEquivalent
)

func (k engineKind) String() string {
	if k == engineEquivalent {
		return "Kafka engine (same table)"
	}
	return "Kafka engine (9 cols)"
}

// engineRun is what ClickHouse's Kafka engine did on the bench topic.
type engineRun struct {
	kind      engineKind
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

// runKafkaEngine creates a Kafka engine table on cfg's events topic, the
// table it stores into and the materialized view between them, waits until
// n rows are stored, and drops the engine table and the view again (a
// server with Kafka tables may abort on shutdown). The narrow engine's
// tables live in cfg's database; the equivalent engine gets a database of
// its own (cfg's database + "_engine", dropped afterwards unless keep)
// built by Custos's migrations.
func runKafkaEngine(ctx context.Context, out io.Writer, cfg *Config, n int64, kind engineKind, keep bool) (*engineRun, error) {
	db := cfg.ClickHouse.Database
	if kind == engineEquivalent {
		db += "_engine"
		store, err := clickhouse.Open(ctx, clickhouse.Config{Addr: cfg.ClickHouse.Addr, Database: db,
			Username: cfg.ClickHouse.Username, Password: cfg.ClickHouse.Password, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return nil, fmt.Errorf("open clickhouse: %w", err)
		}
		err = store.Migrate(ctx)
		store.Close()
		if err != nil {
			return nil, fmt.Errorf("create the equivalent tables in %s: %w", db, err)
		}
	}
	conn, err := ch.Open(&ch.Options{Addr: cfg.ClickHouse.Addr, Auth: ch.Auth{
		Database: db, Username: cfg.ClickHouse.Username, Password: cfg.ClickHouse.Password}})
	if err != nil {
		return nil, fmt.Errorf("connect to clickhouse: %w", err)
	}
	defer conn.Close()
	if kind == engineEquivalent && !keep {
		defer func() {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := conn.Exec(dctx, "DROP DATABASE IF EXISTS "+db); err != nil {
				fmt.Fprintf(out, "warning: drop database %s: %v\n", db, err)
			}
		}()
	}
	queue, table, view := db+".kafka_engine_queue", db+".kafka_engine_events", db+".kafka_engine_mv"
	if kind == engineEquivalent {
		table = db + ".events"
	}
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, t := range []string{view, view + "_subjects", view + "_offsets", queue} {
			if err := conn.Exec(dctx, "DROP TABLE IF EXISTS "+t); err != nil {
				fmt.Fprintf(out, "warning: drop %s: %v (drop it before stopping ClickHouse)\n", t, err)
			}
		}
	}
	defer drop()
	brokers := strings.Join(cfg.Kafka.Brokers, ",")
	var stmts []string
	var viewSQLs []string
	switch kind {
	case engineNarrow:
		group := cfg.Kafka.Group + "-kafka-engine"
		stmts = []string{
			fmt.Sprintf(`CREATE TABLE %s (event_id String, time String, type String, action String,
	purpose String, legal_basis String, outcome String)
ENGINE = Kafka SETTINGS kafka_broker_list = '%s', kafka_topic_list = '%s',
	kafka_group_name = '%s', kafka_format = 'JSONEachRow', kafka_num_consumers = 1`,
				queue, brokers, cfg.Kafka.EventsTopic, group),
			fmt.Sprintf(`CREATE TABLE %s (event_id String, time String, event_time DateTime, type String, action String,
	purpose String, legal_basis String, outcome String, ingested_at DateTime)
ENGINE = MergeTree PARTITION BY toYYYYMM(event_time) ORDER BY (type, event_time)`, table),
		}
		viewSQLs = []string{fmt.Sprintf(`CREATE MATERIALIZED VIEW %s TO %s AS
SELECT event_id, time, parseDateTimeBestEffort(time) AS event_time, type, action, purpose, legal_basis, outcome,
	now() AS ingested_at FROM %s`, view, table, queue)}
		fmt.Fprintf(out, "\nClickHouse Kafka engine on the same topic (group %s, JSONEachRow, 9 columns):\n", group)
	case engineEquivalent:
		group := cfg.Kafka.Group + "-kafka-engine-same-table"
		stmts = []string{fmt.Sprintf(`CREATE TABLE %s (raw String)
ENGINE = Kafka SETTINGS kafka_broker_list = '%s', kafka_topic_list = '%s',
	kafka_group_name = '%s', kafka_format = 'TabSeparated', kafka_row_delimiter = '\n', kafka_num_consumers = 1`,
			queue, brokers, cfg.Kafka.EventsTopic, group)}
		sels := equivalentSelects(queue, cfg.Kafka.EventsTopic)
		// The index views first, the events view last: the engine starts
		// consuming with its first view, and the run counts events.
		viewSQLs = []string{
			fmt.Sprintf("CREATE MATERIALIZED VIEW %s_subjects TO %s.subject_index AS\n%s", view, db, sels[1]),
			fmt.Sprintf("CREATE MATERIALIZED VIEW %s_offsets TO %s.event_offsets AS\n%s", view, db, sels[2]),
			fmt.Sprintf("CREATE MATERIALIZED VIEW %s TO %s AS\n%s", view, table, sels[0]),
		}
		fmt.Fprintf(out, "\nClickHouse Kafka engine on the same topic (group %s), into Custos's own events table, subject index and offsets views:\n", group)
	}
	for _, q := range stmts {
		if err := conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("create kafka engine tables: %w", err)
		}
	}
	m, err := startMeasure("", "")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	// The first view starts the engine's consumer.
	for _, q := range viewSQLs {
		if err := conn.Exec(ctx, q); err != nil {
			m.stop()
			return nil, fmt.Errorf("create kafka engine view: %w", err)
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var stored uint64
	last, lastAt := uint64(0), start
	deadline := start.Add(10 * time.Minute)
	progressAt, progressed := start, uint64(0)
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
			if stored != progressed {
				progressAt, progressed = now, stored
			}
			if now.After(deadline) || now.Sub(progressAt) > time.Minute {
				m.stop()
				return nil, fmt.Errorf("kafka engine: %d of %d rows after %s, none in the last minute (see clickhouse-server.err.log)",
					stored, n, now.Sub(start).Round(time.Second))
			}
		}
	}
	end := time.Now() // events is full
	if kind == engineEquivalent {
		// 18.16 feeds the engine's views one after the other and the
		// subject index view can trail the events view by hundreds of
		// thousands of rows: the run ends when the last of the three
		// tables stopped growing, not when events is full.
		subjects, offsets, last, err := waitViews(ctx, conn, db, n)
		if err != nil {
			m.stop()
			return nil, err
		}
		fmt.Fprintf(out, "\n  also stored: %d subject_index rows, %d event_offsets rows, complete %s after events",
			subjects, offsets, max(last.Sub(end), 0).Round(time.Millisecond))
		if last.After(end) {
			end = last
		}
	}
	run := &engineRun{kind: kind, elapsed: end.Sub(start)}
	run.resources = m.stop()
	fmt.Fprintf(out, "\n  %d rows in %s = %.0f rows/s\n", stored, run.elapsed.Round(time.Millisecond), float64(n)/run.elapsed.Seconds())
	return run, nil
}

// waitViews waits until the engine's index views have caught up: until
// event_offsets holds n rows and neither it nor subject_index has grown
// for two seconds. It returns both counts and when the last of them last
// grew.
func waitViews(ctx context.Context, conn ch.Conn, db string, n int64) (subjects, offsets uint64, last time.Time, err error) {
	const settle = 2 * time.Second
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last = time.Now()
	deadline := last.Add(5 * time.Minute)
	for {
		var s, o uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".subject_index").Scan(&s); err != nil {
			return 0, 0, last, fmt.Errorf("count kafka engine subject_index rows: %w", err)
		}
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".event_offsets").Scan(&o); err != nil {
			return 0, 0, last, fmt.Errorf("count kafka engine event_offsets rows: %w", err)
		}
		now := time.Now()
		if s != subjects || o != offsets {
			subjects, offsets, last = s, o, now
		}
		if int64(offsets) >= n && now.Sub(last) >= settle {
			return subjects, offsets, last, nil
		}
		if now.After(deadline) {
			return subjects, offsets, last, fmt.Errorf("kafka engine views: %d event_offsets rows of %d, %d subject_index rows after 5 minutes", offsets, n, subjects)
		}
		select {
		case <-ctx.Done():
			return subjects, offsets, last, ctx.Err()
		case <-tick.C:
		}
	}
}

// printCompare writes the comparison table of Custos and the engine runs.
func printCompare(out io.Writer, n int, t throughput) {
	engines := t.compare
	custos := float64(n) / t.elapsed.Seconds()
	fmt.Fprintf(out, "\ncompare on %d events (same topic, each alone on the machine; CPU seconds and peak RSS over each run):\n", n)
	fmt.Fprintf(out, "  %-38s %10s %8s %10s %10s %8s %10s %10s\n", "", "events/s", "own CPU", "CH CPU", "Kafka CPU", "own RSS", "CH RSS", "Kafka RSS")
	row := func(name string, rate float64, own time.Duration, ownRSS int64, u resources) {
		fmt.Fprintf(out, "  %-38s %10.0f %7.1fs %9s %10s %7dM %10s %10s\n", name, rate, own.Seconds(),
			cpuOrNA(u.clickhouseCPU, u.clickhouseSeen), cpuOrNA(u.kafkaCPU, u.kafkaSeen), ownRSS>>20,
			rssOrNA(u.clickhouseRSS, u.clickhouseSeen), rssOrNA(u.kafkaRSS, u.kafkaSeen))
	}
	row("Custos (validate, rules, DLQ)", custos, t.resources.selfCPU, t.resources.selfRSS, t.resources)
	for _, e := range engines {
		row("ClickHouse "+e.kind.String(), float64(n)/e.elapsed.Seconds(), e.resources.clickhouseCPU, e.resources.clickhouseRSS, e.resources)
	}
	var ceiling float64
	if st := t.store; st != nil {
		ceiling = float64(st.rows) / st.elapsed.Seconds()
		row("ClickHouse storing alone (no Kafka)", ceiling, st.resources.selfCPU, st.resources.selfRSS, st.resources)
	}
	for _, e := range engines {
		ratio := custos / (float64(n) / e.elapsed.Seconds())
		switch e.kind {
		case engineNarrow:
			fmt.Fprintf(out, "  ratio Custos / %s: %.2fx (issue 8 target: 1.8x)\n", e.kind, ratio)
		default:
			fmt.Fprintf(out, "  ratio Custos / %s: %.2fx (storing the same rows and views)\n", e.kind, ratio)
		}
	}
	if ceiling > 0 {
		fmt.Fprintf(out, "  share of what ClickHouse alone stores on this machine (%.0f rows/s, the ceiling of any pipeline storing these rows): Custos %.0f%%",
			ceiling, 100*custos/ceiling)
		for _, e := range engines {
			fmt.Fprintf(out, ", %s %.0f%%", e.kind, 100*float64(n)/e.elapsed.Seconds()/ceiling)
		}
		fmt.Fprintln(out)
	}
	if t.resources.clickhouseSeen {
		fmt.Fprintf(out, "  CPU per event, all processes: Custos %.1f µs (own %.1f + ClickHouse %.1f + Kafka %.1f)",
			us(t.resources.selfCPU+t.resources.clickhouseCPU+t.resources.kafkaCPU, n), us(t.resources.selfCPU, n), us(t.resources.clickhouseCPU, n), us(t.resources.kafkaCPU, n))
		if st := t.store; st != nil && st.resources.clickhouseSeen {
			fmt.Fprintf(out, ", storing alone %.1f µs (ClickHouse %.1f + client %.1f)",
				us(st.resources.clickhouseCPU+st.resources.selfCPU, st.rows), us(st.resources.clickhouseCPU, st.rows), us(st.resources.selfCPU, st.rows))
		}
		for _, e := range engines {
			if e.resources.clickhouseSeen {
				fmt.Fprintf(out, ", %s %.1f µs (ClickHouse %.1f + Kafka %.1f)", e.kind,
					us(e.resources.clickhouseCPU+e.resources.kafkaCPU, n), us(e.resources.clickhouseCPU, n), us(e.resources.kafkaCPU, n))
			}
		}
		fmt.Fprintln(out)
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

// equivalentSelects are the equivalent engine's views: every column of
// Custos's events table (in the sinks' insert order, then ingested_at)
// taken out of the raw JSON message with 18.16's visitParam* functions,
// then the rows of subject_index and of event_offsets. 18.16 does not
// cascade the rows a Kafka engine's view writes into the views of the
// target table, so the engine table feeds all three tables directly, and
// each view takes the message apart again. Subject ids are replaced by
// the first 128 bits of a SHA-256 of a fixed key and the id, in hex
// (Custos: HMAC-SHA256, the same shape).
func equivalentSelects(queue, topic string) []string {
	obj := func(name string) string { return "visitParamExtractRaw(raw, '" + name + "')" }
	str := func(from, key string) string { return "visitParamExtractString(" + from + ", '" + key + "')" }
	strs := func(from, key string) string {
		return "extractAll(visitParamExtractRaw(" + from + ", '" + key + "'), '\"([^\"]*)\"')"
	}
	has := func(from, key string) string { return "toUInt8(position(" + from + ", '\"" + key + "\":') > 0)" }
	actor, source, data, recipient, channel, request := obj("actor"), obj("source"), obj("data"), obj("recipient"), obj("channel"), obj("request")
	client := "visitParamExtractRaw(" + request + ", 'client')"
	attrs := obj("attributes")
	attrKeys := "extractAll(" + attrs + ", '\"([^\"]*)\":')"
	// The decoder's defaults.
	orDefault := func(e, def string) string { return "if(" + e + " = '', '" + def + "', " + e + ")" }
	cols := [][2]string{
		{str("raw", "event_id"), "event_id"},
		{"parseDateTimeBestEffort(" + str("raw", "time") + ")", "time"},
		{"toUInt16OrZero(substring(" + str("raw", "time") + ", 21, 3))", "time_ms"},
		{str("raw", "type"), "type"},
		{str("raw", "action"), "action"},
		{str(actor, "id"), "actor_id"},
		{orDefault(str(actor, "kind"), "user"), "actor_kind"},
		{str(actor, "role"), "actor_role"},
		{str(actor, "department"), "actor_department"},
		{str(source, "system"), "source_system"},
		{str(source, "dataset"), "source_dataset"},
		{str(source, "environment"), "source_environment"},
		{strs(data, "categories"), "categories"},
		{"visitParamExtractInt(" + data + ", 'records')", "records"},
		{has(data, "records"), "has_records"},
		{"visitParamExtractInt(" + data + ", 'bytes')", "bytes"},
		{"arrayMap(s -> lower(hex(substring(SHA256(concat('custos-bench-key', s)), 1, 16))), " + strs(data, "subjects") + ")", "subjects"},
		{"toUInt8(visitParamExtractBool(" + data + ", 'subjects_truncated'))", "subjects_truncated"},
		{strs(data, "subject_kinds"), "subject_kinds"},
		{str(recipient, "id"), "recipient_id"},
		{str(recipient, "name"), "recipient_name"},
		{str(recipient, "domain"), "recipient_domain"},
		{str(recipient, "country"), "recipient_country"},
		{str(recipient, "kind"), "recipient_kind"},
		{str(channel, "kind"), "channel_kind"},
		{"toUInt8(visitParamExtractBool(" + channel + ", 'encrypted'))", "channel_encrypted"},
		{has(channel, "encrypted"), "channel_encrypted_set"},
		{str("raw", "purpose"), "purpose"},
		{str("raw", "legal_basis"), "legal_basis"},
		{orDefault(str("raw", "outcome"), "success"), "outcome"},
		{str(request, "id"), "request_id"},
		{str(request, "session"), "request_session"},
		{str(request, "ticket"), "request_ticket"},
		{str(client, "ip"), "request_client_ip"},
		{str(client, "user_agent"), "request_user_agent"},
		// Custos stores attributes sorted by key.
		{"arraySort(" + attrKeys + ")", "attribute_keys"},
		{"arraySort((v, k) -> k, extractAll(" + attrs + ", ':\"([^\"]*)\"'), " + attrKeys + ")", "attribute_values"},
		{"''", "extra"},
		{"'" + event.SchemaV1 + "'", "schema"}, // what Custos records
		// 18.16's Kafka engine has no _topic/_partition/_offset virtual
		// columns: the offsets view gets the topic and a row number.
		{"'" + topic + "'", "kafka_topic"},
		{"toInt32(0)", "kafka_partition"},
		{"toInt64(rowNumberInAllBlocks())", "kafka_offset"},
		{"now()", "ingested_at"}, // 18.16 fills no DEFAULT through a view
	}
	expr := map[string]string{}
	for _, c := range cols {
		expr[c[1]] = c[0]
	}
	sel := func(cols [][2]string) string {
		var b strings.Builder
		b.WriteString("SELECT ")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(",\n\t")
			}
			b.WriteString(c[0] + " AS " + c[1])
		}
		b.WriteString("\nFROM " + queue)
		return b.String()
	}
	return []string{
		sel(cols),
		sel([][2]string{{"arrayJoin(" + expr["subjects"] + ")", "subject"}, {expr["time"], "time"},
			{expr["actor_id"], "actor_id"}, {expr["event_id"], "event_id"}}),
		sel([][2]string{{expr["kafka_topic"], "kafka_topic"}, {expr["kafka_partition"], "kafka_partition"},
			{expr["kafka_offset"], "kafka_offset"}, {expr["event_id"], "event_id"}, {expr["time"], "time"}}),
	}
}

// waitQuiet waits until clickhouse-server, when it runs on this machine,
// has used under 5% of a core for a second (merges and file removals of the
// run before are over), at most limit, so that each run of -compare starts
// with the server idle. It returns how long it waited.
func waitQuiet(limit time.Duration) time.Duration {
	pid := findProcess("clickhouse-server")
	start := time.Now()
	if pid == 0 {
		return 0
	}
	prev := procCPU(pid)
	for time.Since(start) < limit {
		time.Sleep(time.Second)
		cur := procCPU(pid)
		if cur-prev < 50*time.Millisecond {
			break
		}
		prev = cur
	}
	return time.Since(start)
}

// printRounds writes, over the rounds of one bench, the median and the
// range of each rate, ratio and share: on a shared machine one round's
// figures move by ±20%, the median of several much less.
func printRounds(out io.Writer, n int, runs []throughput) {
	rate := func(d time.Duration, rows int) float64 { return float64(rows) / d.Seconds() }
	type series struct {
		name   string
		format string
		vals   []float64
	}
	var all []*series
	add := func(name, format string, v float64) {
		for _, s := range all {
			if s.name == name {
				s.vals = append(s.vals, v)
				return
			}
		}
		all = append(all, &series{name: name, format: format, vals: []float64{v}})
	}
	for _, t := range runs {
		custos := rate(t.elapsed, n)
		add("Custos events/s", "%.0f", custos)
		add("Custos CPU µs/event, all processes", "%.1f", us(t.resources.selfCPU+t.resources.clickhouseCPU+t.resources.kafkaCPU, n))
		for _, e := range t.compare {
			add(e.kind.String()+" rows/s", "%.0f", rate(e.elapsed, n))
			add("ratio Custos / "+e.kind.String(), "%.2fx", custos/rate(e.elapsed, n))
		}
		if st := t.store; st != nil {
			ceiling := rate(st.elapsed, st.rows)
			add("ClickHouse storing alone rows/s", "%.0f", ceiling)
			add("Custos's share of the storage ceiling", "%.0f%%", 100*custos/ceiling)
		}
	}
	fmt.Fprintf(out, "\nover %d rounds (median, then min–max):\n", len(runs))
	for _, s := range all {
		sorted := slices.Sorted(slices.Values(s.vals))
		fmt.Fprintf(out, "  %-42s "+s.format+"  ("+s.format+" – "+s.format+")\n", s.name, median(sorted), sorted[0], sorted[len(sorted)-1])
	}
}

// median returns the median of sorted values (the mean of the middle two
// for an even count).
func median(sorted []float64) float64 {
	m := len(sorted) / 2
	if len(sorted)%2 == 1 {
		return sorted[m]
	}
	return (sorted[m-1] + sorted[m]) / 2
}
