package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/ingest/synth"
	"github.com/custos-privacy/custos/sinks/writer"
)

// benchFlags are the bench command's own flags.
type benchFlags struct {
	events     int
	rate       int
	duration   time.Duration
	cpuProfile string
	memProfile string
	compare    bool
	keep       bool
	eventSize  int
	storeOnly  bool
	rounds     int
}

// cmdBench measures the whole pipeline on real Kafka and ClickHouse:
// throughput over a backlog of generator events produced beforehand, then
// latency from produce to stored at a paced rate.
func cmdBench(ctx context.Context, args []string, env func(string) string, out io.Writer) error {
	var b benchFlags
	cfg, _, err := loadConfig("bench", args, env, func(fs *flag.FlagSet) {
		fs.IntVar(&b.events, "events", 1000000, "events in the throughput run")
		fs.IntVar(&b.rate, "rate", 25000, "events/s produced in the latency run (0: skip it)")
		fs.DurationVar(&b.duration, "duration", 20*time.Second, "length of the latency run")
		fs.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of the throughput run's consume phase to this file")
		fs.StringVar(&b.memProfile, "memprofile", "", "write an allocation profile of the throughput run to this file (go tool pprof -sample_index=alloc_space), and the in-use heap at its peak to FILE.peak")
		fs.BoolVar(&b.compare, "compare", false, "also run ClickHouse's own Kafka engine on the same topic and compare")
		fs.BoolVar(&b.keep, "keep", false, "keep each run's topics and ClickHouse database (default: deleted after the run)")
		fs.IntVar(&b.eventSize, "event-size", 0, eventSizeUsage)
		fs.BoolVar(&b.storeOnly, "store-only", false, "measure only the storage ceiling: the events decoded beforehand, stored by ClickHouse alone (no Kafka), then exit")
		fs.IntVar(&b.rounds, "rounds", 1, "repeat the throughput run (and the comparison) this many times and print the median and range of each figure")
	})
	if err != nil {
		return err
	}
	if b.rounds < 1 {
		return fmt.Errorf("-rounds %d: want 1 or more", b.rounds)
	}
	if b.rounds > 1 && (b.cpuProfile != "" || b.memProfile != "") {
		return errors.New("-cpuprofile and -memprofile profile one round: use them with -rounds 1")
	}
	if cfg.PseudonymKey == "" && cfg.PseudonymKeyFile == "" {
		cfg.PseudonymKey = "bench-only-pseudonym-key-0123456789"
	}
	cfg.HTTP = ""
	fmt.Fprintf(out, "custos bench: %d CPUs, GOMAXPROCS %d, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.RFC3339))

	if b.storeOnly {
		return benchStoreOnly(ctx, out, *cfg, b)
	}
	var runs []throughput
	for r := 1; r <= b.rounds; r++ {
		if b.rounds > 1 {
			fmt.Fprintf(out, "\n=== round %d of %d (load average %s)\n", r, b.rounds, loadAvg())
		}
		tput, err := benchThroughput(ctx, out, *cfg, b)
		if err != nil {
			return err
		}
		printThroughput(out, b, tput)
		runs = append(runs, tput)
	}
	if b.rounds > 1 {
		printRounds(out, b.events, runs)
	}
	if b.rate > 0 {
		lat, err := benchLatency(ctx, out, *cfg, b.rate, b.duration, b.keep, b.eventSize)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\nlatency at %d events/s: produce -> stored p50 %s, p99 %s, max %s over %d events\n",
			b.rate, lat.p(0.50), lat.p(0.99), lat.p(1), lat.n)
	}
	return nil
}

// printThroughput writes what one throughput run measured.
func printThroughput(out io.Writer, b benchFlags, tput throughput) {
	u := tput.resources
	fmt.Fprintf(out, "\nthroughput: %d events in %s = %.0f events/s end to end (Kafka -> decode+validate -> rules -> ClickHouse -> commit)\n",
		b.events, tput.elapsed.Round(time.Millisecond), float64(b.events)/tput.elapsed.Seconds())
	fmt.Fprintf(out, "  Custos: CPU %.1f s (%.1f µs/event), peak RSS %d MB while consuming (%d MB over the whole process, producing included), peak live heap %d MB\n",
		u.selfCPU.Seconds(), us(u.selfCPU, b.events), u.selfRSS>>20, peakRSSMB(), u.selfLiveHeap>>20)
	fmt.Fprintf(out, "  meanwhile ClickHouse CPU %s, peak RSS %s; Kafka CPU %s, peak RSS %s; load average %s\n",
		cpuOrNA(u.clickhouseCPU, u.clickhouseSeen), rssOrNA(u.clickhouseRSS, u.clickhouseSeen),
		cpuOrNA(u.kafkaCPU, u.kafkaSeen), rssOrNA(u.kafkaRSS, u.kafkaSeen), loadAvg())
	if ps := tput.partitions; len(ps.runs) > 0 {
		fmt.Fprintf(out, "  partitions (events, share, last stored at):")
		for _, p := range ps.runs {
			fmt.Fprintf(out, " p%d %d %.0f%% %.1fs;", p.partition, p.events, 100*float64(p.events)/float64(b.events), p.drained.Seconds())
		}
		fmt.Fprintf(out, "\n  until all partitions but the last had drained: %.0f events/s; the last one alone after that: %.0f events/s for %.1fs\n",
			ps.allRate, ps.aloneRate, ps.alone.Seconds())
	}
	if len(tput.compare) > 0 {
		printCompare(out, b.events, tput)
	}
}

// throughput is what the throughput run measured over its consume phase.
type throughput struct {
	elapsed   time.Duration
	resources resources    // of Custos, ClickHouse and Kafka during the run
	compare   []*engineRun // ClickHouse's Kafka engine on the same topic (-compare)
	store     *storeRun    // ClickHouse storing the same events alone (-compare)
	// partitions is, for each events partition, its events and when its
	// last one was stored: a hot partition that drains last and alone is
	// the bottleneck.
	partitions partitionStats
}

// partitionRun is one partition's share of the throughput run.
type partitionRun struct {
	partition int32
	events    int64
	drained   time.Duration
}

// watchPartitions samples the writer's per-partition counts until ctx
// ends, then sends when each partition's count last grew, and the rates
// before and after all partitions but the last had drained.
func watchPartitions(ctx context.Context, w *writer.Writer, start time.Time) <-chan partitionStats {
	ch := make(chan partitionStats, 1)
	go func() {
		type sample struct {
			at     time.Duration
			counts map[writer.Partition]int64
		}
		var samples []sample
		last := map[writer.Partition]partitionRun{}
		take := func() {
			now := time.Since(start)
			counts := w.PartitionCounts()
			samples = append(samples, sample{now, counts})
			for k, v := range counts {
				if v != last[k].events {
					last[k] = partitionRun{partition: k.Partition, events: v, drained: now}
				}
			}
		}
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			take()
			select {
			case <-ctx.Done():
				take()
				var st partitionStats
				var lastKey writer.Partition
				for k, r := range last {
					st.runs = append(st.runs, r)
					if r.drained >= last[lastKey].drained {
						lastKey = k
					}
				}
				slices.SortFunc(st.runs, func(a, b partitionRun) int { return int(a.partition - b.partition) })
				// The moment the second-to-last partition drained.
				var others time.Duration
				for k, r := range last {
					if k != lastKey && r.drained > others {
						others = r.drained
					}
				}
				for _, sm := range samples {
					if sm.at < others {
						continue
					}
					var total int64
					for _, v := range sm.counts {
						total += v
					}
					if sm.at > 0 {
						st.allRate = float64(total) / sm.at.Seconds()
					}
					if d := last[lastKey].drained - sm.at; d > 0 {
						st.aloneRate = float64(last[lastKey].events-sm.counts[lastKey]) / d.Seconds()
						st.alone = d
					}
					break
				}
				ch <- st
				return
			case <-t.C:
			}
		}
	}()
	return ch
}

// partitionStats is how the partitions of the throughput run drained.
type partitionStats struct {
	runs []partitionRun
	// allRate is the rate until all partitions but the last had drained;
	// aloneRate the last one's rate after that, for alone.
	allRate, aloneRate float64
	alone              time.Duration
}

// benchThroughput produces n events to fresh topics first, then times the
// pipeline from start until every event is stored and acknowledged.
func benchThroughput(ctx context.Context, out io.Writer, cfg Config, b benchFlags) (throughput, error) {
	n := b.events
	isolate(&cfg, "bench-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	scfg := synth.Config{Seed: 7, Start: time.Now().UTC().Add(-24 * time.Hour), Events: n, Incidents: false, TargetSize: b.eventSize}
	gen, err := synth.New(scfg)
	if err != nil {
		return throughput{}, err
	}
	log := newLogger(&cfg)
	svc, err := newService(ctx, &cfg, log, nil) // creates topics and schema
	if err != nil {
		return throughput{}, err
	}
	defer svc.close()
	if !b.keep {
		defer cleanUp(out, &cfg)
	}
	fmt.Fprintf(out, "producing %d events to %s ...\n", gen.Total(), cfg.Kafka.EventsTopic)
	pstart := time.Now()
	if _, err := produce(ctx, &cfg, gen, 0, nil); err != nil {
		return throughput{}, err
	}
	fmt.Fprintf(out, "produced in %s (%.0f/s); consuming\n", time.Since(pstart).Round(time.Millisecond), float64(gen.Total())/time.Since(pstart).Seconds())
	gen = nil
	runtime.GC() // the producer's buffers are not the pipeline's memory
	debug.FreeOSMemory()

	var res throughput
	if b.compare {
		// ClickHouse's Kafka engine first, alone on the machine, then
		// Custos alone: each gets both cores, the same topic and its own
		// consumer group.
		for _, kind := range []engineKind{engineNarrow, engineEquivalent} {
			fmt.Fprintf(out, "(waited %s for ClickHouse to be idle)\n", waitQuiet(time.Minute).Round(time.Second))
			eng, err := runKafkaEngine(ctx, out, &cfg, int64(n), kind, b.keep)
			if err != nil {
				return throughput{}, fmt.Errorf("compare: %w", err)
			}
			res.compare = append(res.compare, eng)
		}
		gen, err := synth.New(scfg) // the same events again
		if err != nil {
			return throughput{}, err
		}
		if res.store, err = storeAlone(ctx, out, &cfg, gen, b.keep); err != nil {
			return throughput{}, fmt.Errorf("compare: %w", err)
		}
		runtime.GC()
		debug.FreeOSMemory()
		fmt.Fprintf(out, "\nCustos on the same topic (waited %s for ClickHouse to be idle):\n", waitQuiet(time.Minute).Round(time.Second))
	}

	m, err := startMeasure(b.cpuProfile, b.memProfile)
	if err != nil {
		return throughput{}, err
	}
	start := time.Now()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.run(runCtx) }()
	drained := watchPartitions(runCtx, svc.writer, start)
	var sent atomic.Int64
	sent.Store(int64(n))
	err = waitStored(ctx, out, svc, int64(n), nil, &sent)
	res.elapsed = time.Since(start)
	stop()
	res.partitions = <-drained
	if rerr := <-done; err == nil {
		err = rerr
	}
	res.resources = m.stop()
	if b.memProfile != "" {
		if perr := writeHeapProfile(b.memProfile); perr != nil && err == nil {
			err = perr
		}
	}
	return res, err
}

func startMeasure(cpuProfile, memProfile string) (*measure, error) {
	m := &measure{stopped: make(chan struct{}), done: make(chan struct{})}
	m.self.start(os.Getpid())
	m.clickhouse.start(findProcess("clickhouse-server"))
	m.kafka.start(findProcess("java", "kafka.Kafka"))
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		m.prof = f
	}
	go func() {
		defer close(m.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			metrics.Read(live)
			if v := int64(live[0].Value.Uint64()); v > m.liveHeap.Load() {
				if memProfile != "" && v > m.liveHeap.Load()*11/10 {
					// What is live at the peak: the in-use heap profile.
					if f, err := os.Create(memProfile + ".peak"); err == nil {
						_ = pprof.Lookup("heap").WriteTo(f, 0)
						f.Close()
					}
				}
				m.liveHeap.Store(v)
			}
			m.self.sample()
			m.clickhouse.sample()
			m.kafka.sample()
			select {
			case <-m.stopped:
				return
			case <-t.C:
			}
		}
	}()
	return m, nil
}

// stop ends the measurement.
func (m *measure) stop() resources {
	close(m.stopped)
	<-m.done
	if m.prof != nil {
		pprof.StopCPUProfile()
		m.prof.Close()
	}
	return resources{
		selfCPU: m.self.used(), clickhouseCPU: m.clickhouse.used(), kafkaCPU: m.kafka.used(),
		selfRSS: m.self.peak.Load(), selfLiveHeap: m.liveHeap.Load(), clickhouseRSS: m.clickhouse.peak.Load(), kafkaRSS: m.kafka.peak.Load(),
		clickhouseSeen: m.clickhouse.pid > 0, kafkaSeen: m.kafka.pid > 0,
	}
}

// rssBytes returns the resident set size of process pid (VmRSS), 0 if
// unknown.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	return nil
}

// latencies collects stored-batch latencies weighted by rows.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
	w  []int
	n  int
}

func (l *latencies) add(d time.Duration, rows int) {
	l.mu.Lock()
	l.d, l.w, l.n = append(l.d, d), append(l.w, rows), l.n+rows
	l.mu.Unlock()
}

// p returns the q-quantile, each batch counting as many times as it had
// rows (every row of a batch is at most as late as its oldest).
func (l *latencies) p(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	idx := make([]int, len(l.d))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return int(l.d[a] - l.d[b]) })
	target, acc := int(q*float64(l.n)), 0
	for _, i := range idx {
		acc += l.w[i]
		if acc >= target {
			return l.d[i].Round(time.Millisecond)
		}
	}
	if len(idx) == 0 {
		return 0
	}
	return l.d[idx[len(idx)-1]].Round(time.Millisecond)
}

// benchLatency runs the pipeline and produces at a steady rate, recording
// for each stored batch the time since its oldest message was produced.
func benchLatency(ctx context.Context, out io.Writer, cfg Config, rate int, d time.Duration, keep bool, eventSize int) (*latencies, error) {
	isolate(&cfg, "lat-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	total := int(float64(rate) * d.Seconds())
	gen, err := synth.New(synth.Config{Seed: 11, Start: time.Now().UTC().Add(-24 * time.Hour), Events: total, Incidents: false, TargetSize: eventSize})
	if err != nil {
		return nil, err
	}
	lat := &latencies{}
	svc, err := newService(ctx, &cfg, newLogger(&cfg), lat.add)
	if err != nil {
		return nil, err
	}
	defer svc.close()
	if !keep {
		defer cleanUp(out, &cfg)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- svc.run(runCtx) }()
	time.Sleep(2 * time.Second) // let the group form before the clock starts

	w := &kafkago.Writer{Addr: kafkago.TCP(cfg.Kafka.Brokers...), Transport: kafka.NewTransport(), Topic: cfg.Kafka.EventsTopic,
		Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll, BatchSize: 1000, BatchTimeout: 2 * time.Millisecond}
	defer w.Close()
	fmt.Fprintf(out, "\nlatency run: %d events/s for %s to %s\n", rate, d, cfg.Kafka.EventsTopic)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	perTick := max(rate/100, 1)
	msgs := make([]kafkago.Message, 0, perTick)
	sent := 0
	for sent < total {
		<-tick.C
		msgs = msgs[:0]
		for i := 0; i < perTick && sent < total; i++ {
			k, v, ok := gen.Next(nil)
			if !ok {
				sent = total
				break
			}
			msgs = append(msgs, kafkago.Message{Key: k, Value: v, Time: time.Now()})
			sent++
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return nil, err
		}
	}
	var produced atomic.Int64
	produced.Store(int64(sent))
	err = waitStored(ctx, out, svc, int64(sent), nil, &produced)
	stop()
	if rerr := <-done; err == nil {
		err = rerr
	}
	return lat, err
}

// peakRSSMB returns the process's peak resident set size in MB (VmHWM).
func peakRSSMB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.Atoi(f[1])
				return kb / 1024
			}
		}
	}
	return 0
}

// loadAvg returns the 1, 5 and 15 minute load averages, for the record
// (other work on the machine skews the figures).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}

// cleanUp drops a run's ClickHouse database and deletes its topics: every
// run makes fresh ones, and a database left behind keeps ClickHouse busy
// merging its parts during the next run.
func cleanUp(out io.Writer, cfg *Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := ch.Open(&ch.Options{Addr: cfg.ClickHouse.Addr, Auth: ch.Auth{
		Database: "default", Username: cfg.ClickHouse.Username, Password: cfg.ClickHouse.Password}})
	if err == nil {
		err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.ClickHouse.Database)
		conn.Close()
	}
	if err != nil {
		fmt.Fprintf(out, "warning: drop database %s: %v\n", cfg.ClickHouse.Database, err)
	}
	topics := []string{cfg.Kafka.EventsTopic, cfg.Kafka.SubjectsTopic, cfg.Kafka.DLQTopic, cfg.Kafka.AlertsTopic}
	if t := cfg.Kafka.Repartition(); t != "" {
		topics = append(topics, t)
	}
	client := &kafkago.Client{Addr: kafkago.TCP(cfg.Kafka.Brokers...), Timeout: 10 * time.Second}
	res, err := client.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: topics})
	if err == nil {
		for t, terr := range res.Errors {
			if terr != nil {
				err = fmt.Errorf("%s: %w", t, terr)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(out, "warning: delete topics: %v\n", err)
	}
}
