// Package writer gathers the rows and alerts of every partition into large
// writes to the stores, and acknowledges each batch once all it carried is
// durably stored.
//
// Order of a flush: alerts into the alerts table, alerts onto the alerts
// topic, then events and subject statuses. So an event that is stored always
// has its alerts stored too; after a crash, events already stored are
// skipped (by offset) and events not stored are evaluated again, raising
// alerts with the same stable ids. A failed flush is retried with backoff
// until it succeeds or the writer is stopped; nothing is dropped. The Store
// must make a retried event insert idempotent (the ClickHouse store skips
// the offsets it already holds).
package writer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules"
)

// Store is where rows and alerts are kept (ClickHouse in production).
// InsertEvents must store each event once even when called again with
// events a failed earlier call already stored.
type Store interface {
	InsertEvents(ctx context.Context, events []*event.Event) error
	InsertAlerts(ctx context.Context, alerts []*rules.Alert) error
	InsertSubjectStatuses(ctx context.Context, statuses []*event.SubjectStatus) error
}

// Publisher delivers alerts to people and systems (the alerts topic).
type Publisher interface {
	Publish(ctx context.Context, alerts []*rules.Alert) error
}

// Item is what one batch contributes to a flush.
type Item struct {
	// Events to insert, already filtered of rows the store holds.
	Events []*event.Event
	// Alerts the events raised.
	Alerts []*rules.Alert
	// Statuses to insert.
	Statuses []*event.SubjectStatus
	// Done is called once with nil when everything above is stored, or
	// with the error that stopped the writer.
	Done func(error)
	// Since is when the batch's oldest message was produced (Unix
	// nanoseconds), for the latency metric.
	Since int64
}

// Config tunes the writer.
type Config struct {
	// FlushRows is the most events per insert. Default 100000.
	FlushRows int
	// FlushInterval is the longest an item waits before its flush starts.
	// Default 500ms.
	FlushInterval time.Duration
	// Queue is how many items may wait (backpressure beyond). Default 64.
	Queue int
	// OnStored, if set, is called after each stored item with its latency
	// (from Item.Since) and size, for benchmarks.
	OnStored func(latency time.Duration, rows int)
}

// Writer batches items across partitions and writes them. Create it with
// New, start Run, then Submit.
type Writer struct {
	cfg     Config
	store   Store
	pub     Publisher
	log     *slog.Logger
	items   chan Item
	flushCh chan struct{}
	metrics *Metrics

	mu         sync.Mutex
	stored     int64 // events acknowledged as stored
	alerts     int64
	statuses   int64
	partitions map[Partition]int64 // events stored, by Kafka partition
}

// Partition names a Kafka partition, for PartitionCounts.
type Partition struct {
	Topic     string
	Partition int32
}

// New returns a Writer.
func New(cfg Config, store Store, pub Publisher, metrics *Metrics, log *slog.Logger) *Writer {
	if cfg.FlushRows <= 0 {
		cfg.FlushRows = 100000
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 500 * time.Millisecond
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 64
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Writer{cfg: cfg, store: store, pub: pub, log: log, metrics: metrics,
		items: make(chan Item, cfg.Queue), flushCh: make(chan struct{}, 1)}
}

// Submit queues an item; it blocks while the queue is full (backpressure)
// or until ctx ends.
func (w *Writer) Submit(ctx context.Context, it Item) error {
	select {
	case w.items <- it:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush asks for the queued items to be written now instead of at the next
// interval (used when a partition is revoked).
func (w *Writer) Flush() {
	select {
	case w.flushCh <- struct{}{}:
	default:
	}
}

// Counts returns how many events, alerts and subject statuses have been
// stored and acknowledged so far.
func (w *Writer) Counts() (events, alerts, statuses int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stored, w.alerts, w.statuses
}

// PartitionCounts returns how many events of each Kafka partition have
// been stored and acknowledged so far.
func (w *Writer) PartitionCounts() map[Partition]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[Partition]int64, len(w.partitions))
	for k, v := range w.partitions {
		m[k] = v
	}
	return m
}

// unit is one flush: the items gathered for it.
type unit struct {
	items    []Item
	events   []*event.Event
	alerts   []*rules.Alert
	statuses []*event.SubjectStatus
}

// Run gathers items into units and writes them, one unit being written
// while the next is gathered, until ctx ends. It then writes what is still
// queued, giving up after drain; items it could not store are acknowledged
// with an error (and so never committed).
//
// A unit is handed to the store when it is due (FlushInterval after its
// first item, FlushRows events, or a Flush request) and the store is not
// busy with the previous one: while an insert runs, the next unit keeps
// growing (group commit). Under load the inserts therefore grow with the
// rate, which is what ClickHouse wants (fewer, larger parts and merges),
// while at a low rate an item waits at most FlushInterval plus one insert.
func (w *Writer) Run(ctx context.Context, drain time.Duration) {
	units := make(chan *unit, 1)
	idle := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for u := range units {
			w.write(ctx, drain, u)
			idle <- struct{}{}
		}
	}()
	w.gather(ctx, units, idle)
	close(units)
	wg.Wait()
}

func (w *Writer) gather(ctx context.Context, units chan<- *unit, idle <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	u := &unit{}
	busy := false // the store is writing a unit
	due := false  // u is to be written as soon as the store is free
	send := func() {
		if len(u.items) == 0 {
			due = false
			return
		}
		if busy {
			return
		}
		timer.Stop()
		units <- u // never blocks: the writer is idle
		u, busy, due = &unit{}, true, false
	}
	add := func(it Item) {
		if len(u.items) == 0 {
			timer.Reset(w.cfg.FlushInterval)
		}
		u.items = append(u.items, it)
		u.events = append(u.events, it.Events...)
		u.alerts = append(u.alerts, it.Alerts...)
		u.statuses = append(u.statuses, it.Statuses...)
		if len(u.events)+len(u.statuses) >= w.cfg.FlushRows {
			due = true
		}
	}
	for {
		// A full unit takes no more items until the store has taken it:
		// Submit blocks (backpressure).
		items := w.items
		if len(u.events)+len(u.statuses) >= w.cfg.FlushRows {
			items = nil
		}
		select {
		case <-ctx.Done():
			for {
				select {
				case it := <-w.items:
					add(it)
				default:
					if busy {
						<-idle
						busy = false
					}
					send()
					if busy {
						<-idle
					}
					return
				}
			}
		case it := <-items:
			add(it)
		case <-timer.C:
			due = true
		case <-w.flushCh:
			// Take everything already queued, then write it.
			for n := len(w.items); n > 0; n-- {
				add(<-w.items)
			}
			due = true
		case <-idle:
			busy = false
		}
		if due {
			send()
		}
	}
}

// write stores a unit, retrying until it succeeds; once ctx has ended it
// keeps trying for at most drain.
func (w *Writer) write(ctx context.Context, drain time.Duration, u *unit) {
	wctx := context.WithoutCancel(ctx)
	var deadline time.Time
	backoff := 200 * time.Millisecond
	var st progress
	for {
		err := w.writeOnce(wctx, u, &st)
		if err == nil {
			break
		}
		w.metrics.flushErrors.Inc()
		if ctx.Err() != nil {
			if deadline.IsZero() {
				deadline = time.Now().Add(drain)
			}
			if time.Now().After(deadline) {
				w.log.Error("giving up a flush at shutdown; its batches stay uncommitted and will be re-delivered", "events", len(u.events), "err", err)
				for _, it := range u.items {
					it.Done(fmt.Errorf("not stored: %w", err))
				}
				return
			}
		}
		w.log.Warn("flush failed; retrying", "events", len(u.events), "alerts", len(u.alerts), "backoff", backoff, "err", err)
		time.Sleep(backoff)
		backoff = min(backoff*2, 10*time.Second)
	}
	now := time.Now().UnixNano()
	for _, it := range u.items {
		it.Done(nil)
		if it.Since > 0 {
			w.metrics.latency.Observe(float64(now-it.Since) / 1e9)
			if w.cfg.OnStored != nil {
				w.cfg.OnStored(time.Duration(now-it.Since), len(it.Events)+len(it.Statuses))
			}
		}
	}
	for _, a := range u.alerts {
		w.metrics.alerts.WithLabelValues(a.Rule, string(a.Severity)).Inc()
	}
	w.metrics.rows.Add(float64(len(u.events)))
	w.mu.Lock()
	if w.partitions == nil {
		w.partitions = map[Partition]int64{}
	}
	for _, it := range u.items {
		if len(it.Events) > 0 { // an item holds one partition's batch
			o := it.Events[0].Origin
			w.partitions[Partition{o.Topic, o.Partition}] += int64(len(it.Events))
		}
	}
	w.stored += int64(len(u.events))
	w.alerts += int64(len(u.alerts))
	w.statuses += int64(len(u.statuses))
	w.mu.Unlock()
}

// progress records which steps of a unit's write are done, so a retry
// resumes where the failure was.
type progress struct {
	alertsStored, alertsPublished, eventsStored, statusesStored bool
}

func (w *Writer) writeOnce(ctx context.Context, u *unit, st *progress) error {
	if !st.alertsStored && len(u.alerts) > 0 {
		if err := w.store.InsertAlerts(ctx, u.alerts); err != nil {
			return fmt.Errorf("store alerts: %w", err)
		}
	}
	st.alertsStored = true
	if !st.alertsPublished && len(u.alerts) > 0 && w.pub != nil {
		if err := w.pub.Publish(ctx, u.alerts); err != nil {
			return fmt.Errorf("publish alerts: %w", err)
		}
	}
	st.alertsPublished = true
	if !st.eventsStored && len(u.events) > 0 {
		start := time.Now()
		if err := w.store.InsertEvents(ctx, u.events); err != nil {
			return fmt.Errorf("store %d events: %w", len(u.events), err)
		}
		w.metrics.insertSeconds.Observe(time.Since(start).Seconds())
	}
	st.eventsStored = true
	if !st.statusesStored && len(u.statuses) > 0 {
		if err := w.store.InsertSubjectStatuses(ctx, u.statuses); err != nil {
			return fmt.Errorf("store %d subject statuses: %w", len(u.statuses), err)
		}
	}
	st.statusesStored = true
	return nil
}

// Metrics are the writer's Prometheus metrics.
type Metrics struct {
	rows          prometheus.Counter
	alerts        *prometheus.CounterVec
	flushErrors   prometheus.Counter
	insertSeconds prometheus.Histogram
	latency       prometheus.Histogram
}

// NewMetrics creates the writer metrics and registers them with reg (nil:
// not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_events_stored_total", Help: "Events stored in ClickHouse.",
		}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_alerts_total", Help: "Alerts stored and published, by rule and severity.",
		}, []string{"rule", "severity"}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_flush_errors_total", Help: "Failed flush attempts (each is retried).",
		}),
		insertSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "custos_insert_seconds", Help: "Duration of ClickHouse event inserts.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "custos_batch_latency_seconds", Help: "From producing a batch's oldest message to having the batch stored.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.rows, m.alerts, m.flushErrors, m.insertSeconds, m.latency)
	}
	return m
}
