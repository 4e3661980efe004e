package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/ingest/synth"
)

// benchFlags are the bench command's own flags.
type benchFlags struct {
	events   int
	rate     int
	duration time.Duration
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
	})
	if err != nil {
		return err
	}
	if cfg.PseudonymKey == "" && cfg.PseudonymKeyFile == "" {
		cfg.PseudonymKey = "bench-only-pseudonym-key-0123456789"
	}
	cfg.HTTP = ""
	fmt.Fprintf(out, "custos bench: %d CPUs, GOMAXPROCS %d, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.RFC3339))

	tput, err := benchThroughput(ctx, out, *cfg, b.events)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nthroughput: %d events in %s = %.0f events/s end to end (Kafka -> decode+validate -> rules -> ClickHouse -> commit); peak RSS %d MB\n",
		b.events, tput.elapsed.Round(time.Millisecond), float64(b.events)/tput.elapsed.Seconds(), peakRSSMB())
	if b.rate > 0 {
		lat, err := benchLatency(ctx, out, *cfg, b.rate, b.duration)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\nlatency at %d events/s: produce -> stored p50 %s, p99 %s, max %s over %d events\n",
			b.rate, lat.p(0.50), lat.p(0.99), lat.p(1), lat.n)
	}
	return nil
}

type throughput struct{ elapsed time.Duration }

// benchThroughput produces n events to fresh topics first, then times the
// pipeline from start until every event is stored and acknowledged.
func benchThroughput(ctx context.Context, out io.Writer, cfg Config, n int) (throughput, error) {
	isolate(&cfg, "bench-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	gen, err := synth.New(synth.Config{Seed: 7, Start: time.Now().UTC().Add(-24 * time.Hour), Events: n, Incidents: false})
	if err != nil {
		return throughput{}, err
	}
	log := newLogger(&cfg)
	svc, err := newService(ctx, &cfg, log, nil) // creates topics and schema
	if err != nil {
		return throughput{}, err
	}
	defer svc.close()
	fmt.Fprintf(out, "producing %d events to %s ...\n", gen.Total(), cfg.Kafka.EventsTopic)
	pstart := time.Now()
	if _, err := produce(ctx, &cfg, gen, 0, nil); err != nil {
		return throughput{}, err
	}
	fmt.Fprintf(out, "produced in %s (%.0f/s); consuming\n", time.Since(pstart).Round(time.Millisecond), float64(gen.Total())/time.Since(pstart).Seconds())
	start := time.Now()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.run(runCtx) }()
	var sent atomic.Int64
	sent.Store(int64(gen.Total()))
	err = waitStored(ctx, out, svc, int64(gen.Total()), nil, &sent)
	elapsed := time.Since(start)
	stop()
	if rerr := <-done; err == nil {
		err = rerr
	}
	return throughput{elapsed: elapsed}, err
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
func benchLatency(ctx context.Context, out io.Writer, cfg Config, rate int, d time.Duration) (*latencies, error) {
	isolate(&cfg, "lat-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	total := int(float64(rate) * d.Seconds())
	gen, err := synth.New(synth.Config{Seed: 11, Start: time.Now().UTC().Add(-24 * time.Hour), Events: total, Incidents: false})
	if err != nil {
		return nil, err
	}
	lat := &latencies{}
	svc, err := newService(ctx, &cfg, newLogger(&cfg), lat.add)
	if err != nil {
		return nil, err
	}
	defer svc.close()
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
