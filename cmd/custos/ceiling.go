package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/pseudonym"
	"github.com/custos-privacy/custos/ingest/synth"
	"github.com/custos-privacy/custos/sinks/clickhouse"
)

// The storage ceiling of custos bench -compare.
//
// Whatever reads the events, ClickHouse has to store them: the events row
// with every field of the contract, the subject index and the offsets.
// storeAlone measures how fast this machine's ClickHouse does that and
// nothing else: the generator's events, decoded and pseudonymised before
// the clock starts, go straight to a fresh database through Custos's own
// Store (the same INSERT, blocks, views and tables as the pipeline), with
// no Kafka, no validation, no rules and no commits, two inserts at a time
// so that both cores work. No pipeline that stores these rows, Custos or
// the Kafka engine or any sink, can be faster on this machine than this
// rate; Custos's end-to-end rate is printed as a share of it.

// storeAloneRows is the size of one insert: what the pipeline's writer
// sends at full speed (about 30,000 rows an insert with the default
// in-flight budget).
const storeAloneRows = 32768

// storeAloneInserters is how many inserts run at once.
const storeAloneInserters = 2

// storeAloneMax bounds the events the ceiling run holds decoded at once
// (~1.3 KB each with the generator's events): a longer bench measures the
// ceiling on its first storeAloneMax events.
const storeAloneMax = 2_000_000

// storeRun is what the storage-ceiling run measured.
type storeRun struct {
	rows      int
	elapsed   time.Duration
	resources resources
}

// storeAlone inserts the events of gen into the database <db>_store and
// measures the rate. The database is dropped afterwards unless keep.
func storeAlone(ctx context.Context, out io.Writer, cfg *Config, gen *synth.Generator, keep bool) (*storeRun, error) {
	keyed, err := cfg.keyed()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\nClickHouse storing alone (the same events decoded beforehand, straight into Custos's tables, %d inserts of %d rows at a time):\n", storeAloneInserters, storeAloneRows)
	events, err := decodeAll(gen, cfg.Limits, keyed, cfg.Kafka.EventsTopic, storeAloneMax)
	if err != nil {
		return nil, err
	}
	if gen.Total() > len(events) {
		fmt.Fprintf(out, "  (the first %d of the %d events: they are all held in memory)\n", len(events), gen.Total())
	}

	db := cfg.ClickHouse.Database + "_store"
	store, err := clickhouse.Open(ctx, clickhouse.Config{Addr: cfg.ClickHouse.Addr, Database: db,
		Username: cfg.ClickHouse.Username, Password: cfg.ClickHouse.Password, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}
	defer store.Close()
	if !keep {
		defer dropDatabase(out, cfg, db)
	}
	if err := store.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("create the tables in %s: %w", db, err)
	}

	// The decoded events are ~1 KB each and all live at once: no garbage
	// collection while they are inserted (it would scan them all and take
	// a core from ClickHouse: the client is to cost what encoding the rows
	// costs), then give the memory back and forget this run's peak RSS,
	// which is not the pipeline's.
	runtime.GC()
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer func() {
		events = nil
		debug.FreeOSMemory()
		// Resets VmHWM (Linux 4.0 and later); without it the process's
		// peak RSS would be this run's.
		_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	}()
	fmt.Fprintf(out, "  (waited %s for ClickHouse to be idle)\n", waitQuiet(time.Minute).Round(time.Second))

	m, err := startMeasure("", "")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var next, stored atomic.Int64
	errs := make(chan error, storeAloneInserters)
	var wg sync.WaitGroup
	for range storeAloneInserters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				hi := int(next.Add(storeAloneRows))
				lo := hi - storeAloneRows
				if lo >= len(events) {
					return
				}
				hi = min(hi, len(events))
				if err := store.InsertEvents(ctx, events[lo:hi]); err != nil {
					errs <- err
					return
				}
				stored.Add(int64(hi - lo))
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastAt := int64(0), start
	for waiting := true; waiting; {
		select {
		case <-finished:
			waiting = false
		case now := <-tick.C:
			s := stored.Load()
			fmt.Fprintf(out, "\r  stored %8d / %d   %7.0f rows/s      ", s, len(events), float64(s-last)/now.Sub(lastAt).Seconds())
			last, lastAt = s, now
		}
	}
	run := &storeRun{rows: len(events), elapsed: time.Since(start)}
	run.resources = m.stop()
	select {
	case err := <-errs:
		return nil, fmt.Errorf("store alone: %w", err)
	default:
	}
	fmt.Fprintf(out, "\r  %d rows in %s = %.0f rows/s                    \n", run.rows, run.elapsed.Round(time.Millisecond), float64(run.rows)/run.elapsed.Seconds())
	return run, nil
}

// benchStoreOnly runs the storage ceiling alone (custos bench -store-only).
func benchStoreOnly(ctx context.Context, out io.Writer, cfg Config, b benchFlags) error {
	isolate(&cfg, "bench-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	gen, err := synth.New(synth.Config{Seed: 7, Start: time.Now().UTC().Add(-24 * time.Hour), Events: b.events, TargetSize: b.eventSize})
	if err != nil {
		return err
	}
	run, err := storeAlone(ctx, out, &cfg, gen, b.keep)
	if err != nil {
		return err
	}
	u := run.resources
	fmt.Fprintf(out, "storing alone: %.0f rows/s; CPU per row %.1f µs (ClickHouse %.1f + client %.1f); ClickHouse peak RSS %s; load average %s\n",
		float64(run.rows)/run.elapsed.Seconds(), us(u.clickhouseCPU+u.selfCPU, run.rows), us(u.clickhouseCPU, run.rows), us(u.selfCPU, run.rows),
		rssOrNA(u.clickhouseRSS, u.clickhouseSeen), loadAvg())
	if b.keep {
		fmt.Fprintf(out, "kept database %s_store\n", cfg.ClickHouse.Database)
	}
	return nil
}

// decodeAll decodes the events of gen, at most limit of them, as the
// pipeline does (validation, pseudonymised subjects, Kafka coordinates
// spread over six partitions).
func decodeAll(gen *synth.Generator, lim event.Limits, keyed *pseudonym.Keyed, topic string, limit int) ([]*event.Event, error) {
	dec := event.NewDecoder(lim)
	events := make([]*event.Event, 0, min(gen.Total(), limit))
	var buf []byte
	for i := 0; i < limit; i++ {
		_, value, ok := gen.Next(buf[:0])
		if !ok {
			break
		}
		buf = value
		ev := new(event.Event)
		if err := dec.Decode(value, nil, ev); err != nil {
			return nil, fmt.Errorf("decode generator event %d: %w", i, err)
		}
		keyed.Subjects(ev.Data.Subjects)
		ev.Origin = event.Origin{Topic: topic, Partition: int32(i % 6), Offset: int64(i / 6)}
		events = append(events, ev)
	}
	return events, nil
}

// dropDatabase drops db, warning on failure.
func dropDatabase(out io.Writer, cfg *Config, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := ch.Open(&ch.Options{Addr: cfg.ClickHouse.Addr, Auth: ch.Auth{
		Database: "default", Username: cfg.ClickHouse.Username, Password: cfg.ClickHouse.Password}})
	if err == nil {
		err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	}
	if err != nil {
		fmt.Fprintf(out, "warning: drop database %s: %v\n", db, err)
	}
}
