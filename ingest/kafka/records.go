package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// RecordConfig configures a RecordConsumer. Zero values take the defaults
// named.
type RecordConfig struct {
	// Brokers are the bootstrap brokers (required).
	Brokers []string
	// GroupID is the consumer group (required).
	GroupID string
	// Topic is the topic consumed (required).
	Topic string
	// BatchSize is the most records of one partition per batch. Default
	// 5000.
	BatchSize int
	// BatchTimeout is the longest a batch waits to fill. Default 50ms.
	BatchTimeout time.Duration
	// MaxInFlight is how many batches of one partition may await
	// acknowledgement before the partition stops fetching. Default 16.
	MaxInFlight int
	// RebalanceTimeout bounds how long a revoked partition may take to
	// flush and commit. Default 30s.
	RebalanceTimeout time.Duration
}

func (c RecordConfig) withDefaults() RecordConfig {
	if c.BatchSize == 0 {
		c.BatchSize = 5000
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = 50 * time.Millisecond
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 16
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	return c
}

// Record is one message of a record topic.
type Record struct {
	Offset int64
	Key    []byte
	Value  []byte
}

// RecordBatch is a run of consecutive records of one partition. Its
// offsets are committed, with Metadata, once Done was called with nil for
// it and for every earlier batch of the partition.
type RecordBatch struct {
	Topic     string
	Partition int32
	// First and Last are the offsets of the first and last record.
	First, Last int64
	// Records are the batch's records, in offset order.
	Records []Record
	// Produced is the timestamp of the first record (Unix nanoseconds).
	Produced int64
	// Metadata is committed with the offset after the batch; the
	// processor sets it in Process (what its state covers once the batch
	// is applied).
	Metadata string

	once sync.Once
	done chan error
}

// Done acknowledges the batch: nil when everything derived from it is
// durably stored. Only the first call counts.
func (b *RecordBatch) Done(err error) {
	b.once.Do(func() { b.done <- err })
}

// AssignedPartition is a partition given to the member, with the group's
// committed position in it.
type AssignedPartition struct {
	Partition int32
	// Committed is the next offset to consume, -1 when the group has
	// never committed one (consumption starts at the first offset).
	Committed int64
	// Metadata is what was committed with it.
	Metadata string
}

// RecordProcessor takes over the partitions a RecordConsumer is assigned:
// all those of a generation at once, so that state rebuilt from storage
// is read once for all of them. The returned processors each see their
// partition's batches in offset order from one goroutine.
type RecordProcessor interface {
	Assigned(ctx context.Context, topic string, parts []AssignedPartition) (map[int32]RecordPartition, error)
}

// RecordPartition handles the batches of one assigned partition.
type RecordPartition interface {
	// Process handles a batch in offset order and must eventually call
	// b.Done once; an error return stops the partition.
	Process(ctx context.Context, b *RecordBatch) error
	// Flush asks the processor to store what it holds now.
	Flush()
}

// RecordConsumer consumes one topic of opaque records (the repartition
// topic) as a member of a consumer group: per generation it hands all its
// partitions to the RecordProcessor at once, then runs one goroutine per
// partition that cuts batches, passes them on in order and commits, as
// soon as a batch and those before it are acknowledged, the offset after
// it together with the batch's Metadata. Nothing is decoded, validated or
// dead-lettered here: the records are Custos's own.
type RecordConsumer struct {
	cfg     RecordConfig
	proc    RecordProcessor
	client  *kafkago.Client
	metrics *Metrics
	log     *slog.Logger

	draining atomic.Bool
	active   atomic.Int32 // partitions running
	inGen    atomic.Bool  // taking over or running a generation's partitions
	joined   atomic.Bool  // a generation was joined at least once
	mu       sync.Mutex
	stop     context.CancelFunc // ends Run's group loop (set while Run runs)
	stopped  chan struct{}
}

// NewRecordConsumer returns a RecordConsumer; metrics may be nil.
func NewRecordConsumer(cfg RecordConfig, proc RecordProcessor, metrics *Metrics, log *slog.Logger) (*RecordConsumer, error) {
	cfg = cfg.withDefaults()
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("kafka: record consumer: no brokers configured")
	case cfg.GroupID == "":
		return nil, errors.New("kafka: record consumer: group id is empty")
	case cfg.Topic == "":
		return nil, errors.New("kafka: record consumer: topic is empty")
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &RecordConsumer{cfg: cfg, proc: proc, metrics: metrics, log: log.With("component", "records", "topic", cfg.Topic),
		client:  &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Transport: NewTransport(), Timeout: 10 * time.Second},
		stopped: make(chan struct{})}, nil
}

// Close releases the consumer's idle connections, once Run has returned.
func (c *RecordConsumer) Close() {
	if t, ok := c.client.Transport.(*kafkago.Transport); ok {
		t.CloseIdleConnections()
	}
}

// Run joins the group and processes generations until ctx ends or a Drain
// completes. On the way out every partition stops fetching, waits (up to
// RebalanceTimeout) for its batches to be acknowledged and commits them.
func (c *RecordConsumer) Run(ctx context.Context) error {
	defer close(c.stopped)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	c.stop = cancel
	c.mu.Unlock()
	group, err := newGroup(c.cfg.GroupID, c.cfg.Brokers, []string{c.cfg.Topic}, kafkago.FirstOffset, c.cfg.RebalanceTimeout, c.log)
	if err != nil {
		return err
	}
	defer group.Close()
	for {
		gen, err := group.Next(rctx)
		if err != nil {
			if rctx.Err() != nil {
				return nil
			}
			c.log.Warn("consumer group: no generation yet", "err", err)
			continue
		}
		c.inGen.Store(true)
		c.joined.Store(true)
		c.runGeneration(rctx, gen)
		c.inGen.Store(false)
		if rctx.Err() != nil || c.draining.Load() {
			return nil
		}
	}
}

// Drain makes the partitions stop once they have processed every record
// written before they noticed the request (their high-water mark then),
// with everything acknowledged and committed, and Run return. A member
// that has not joined a generation yet joins one first; one that holds no
// partition returns at once. It waits up to timeout for Run to return,
// then ends it anyway. Use it at shutdown, once nothing of this process
// produces to the topic any more, so that what the process forwarded is
// applied before it goes.
func (c *RecordConsumer) Drain(timeout time.Duration) {
	c.draining.Store(true)
	if c.joined.Load() && !c.inGen.Load() && c.active.Load() == 0 {
		c.cancelRun()
	}
	select {
	case <-c.stopped:
	case <-time.After(timeout):
		c.log.Warn("draining took too long; stopping", "timeout", timeout)
		c.cancelRun()
		<-c.stopped
	}
}

func (c *RecordConsumer) cancelRun() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stop != nil {
		c.stop()
	}
}

// runGeneration takes over the generation's partitions and returns when
// the generation ends, ctx ends or a drain completed.
func (c *RecordConsumer) runGeneration(ctx context.Context, gen *kafkago.Generation) {
	var parts []int
	for _, pa := range gen.Assignments[c.cfg.Topic] {
		parts = append(parts, pa.ID)
	}
	if len(parts) == 0 {
		c.log.Info("joined generation without partitions", "generation", gen.ID)
		return
	}
	done := make(chan struct{})
	gen.Start(func(genCtx context.Context) {
		defer close(done)
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-genCtx.Done():
				cancel()
			case <-pctx.Done():
			}
		}()
		assigned, procs, err := c.assign(pctx, parts)
		if err != nil {
			if pctx.Err() == nil {
				c.log.Error("taking over partitions failed", "err", err)
			}
			return
		}
		c.log.Info("joined generation", "generation", gen.ID, "member", gen.MemberID, "partitions", len(parts))
		var wg sync.WaitGroup
		c.active.Add(int32(len(assigned)))
		for _, ap := range assigned {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					if c.active.Add(-1) == 0 && c.draining.Load() {
						c.cancelRun()
					}
				}()
				if err := c.runPartition(pctx, gen, ap, procs[ap.Partition]); err != nil {
					c.log.Error("partition stopped", "partition", ap.Partition, "err", err)
				}
			}()
		}
		wg.Wait()
	})
	<-done
}

// assign reads the committed positions and asks the processor to take
// the partitions over, retrying with backoff while either fails.
func (c *RecordConsumer) assign(ctx context.Context, parts []int) ([]AssignedPartition, map[int32]RecordPartition, error) {
	backoff := 250 * time.Millisecond
	for {
		assigned, procs, err := c.assignOnce(ctx, parts)
		if err == nil {
			return assigned, procs, nil
		}
		if ctx.Err() != nil {
			return nil, nil, err
		}
		c.log.Warn("taking over partitions failed; retrying", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil, nil, err
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (c *RecordConsumer) assignOnce(ctx context.Context, parts []int) ([]AssignedPartition, map[int32]RecordPartition, error) {
	committed, err := CommittedOffsets(ctx, c.cfg.Brokers, c.cfg.GroupID, c.cfg.Topic, parts)
	if err != nil {
		return nil, nil, err
	}
	assigned := make([]AssignedPartition, 0, len(parts))
	for _, p := range parts {
		cm := committed[int32(p)]
		assigned = append(assigned, AssignedPartition{Partition: int32(p), Committed: cm.Offset, Metadata: cm.Metadata})
	}
	procs, err := c.proc.Assigned(ctx, c.cfg.Topic, assigned)
	if err != nil {
		return nil, nil, err
	}
	for _, ap := range assigned {
		if procs[ap.Partition] == nil {
			return nil, nil, fmt.Errorf("no processor for partition %d", ap.Partition)
		}
	}
	return assigned, procs, nil
}

// runPartition consumes one partition for one generation.
func (c *RecordConsumer) runPartition(ctx context.Context, gen *kafkago.Generation, ap AssignedPartition, pp RecordPartition) error {
	p := ap.Partition
	log := c.log.With("partition", p)
	start := ap.Committed
	if start < 0 {
		start = kafkago.FirstOffset
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: c.cfg.Brokers, Topic: c.cfg.Topic, Partition: int(p),
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 50 * time.Millisecond, QueueCapacity: 1000,
	})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return fmt.Errorf("seek %s/%d to %d: %w", c.cfg.Topic, p, start, err)
	}
	log.Info("partition assigned", "offset", ap.Committed)

	fctx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	batches := make(chan *RecordBatch, c.cfg.MaxInFlight)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(batches)
		fetchErr <- c.fetch(fctx, r, p, batches)
	}()

	var (
		pending   []*RecordBatch
		next      = ap.Committed // offset after the last batch handed on (-1: none yet, unknown)
		end       = int64(-1)    // drain target: the high-water mark when the drain was noticed
		acked     = ap.Committed
		ackedMeta = ap.Metadata
		committed = ap.Committed
		stopErr   error
	)
	commit := func() {
		if acked <= committed {
			return
		}
		_, err := c.client.OffsetCommit(context.WithoutCancel(ctx), &kafkago.OffsetCommitRequest{
			GroupID: c.cfg.GroupID, GenerationID: int(gen.ID), MemberID: gen.MemberID,
			Topics: map[string][]kafkago.OffsetCommit{c.cfg.Topic: {{Partition: int(p), Offset: acked, Metadata: ackedMeta}}},
		})
		if err == nil {
			committed = acked
			c.metrics.commits.WithLabelValues("ok").Inc()
			return
		}
		c.metrics.commits.WithLabelValues("error").Inc()
		log.Warn("offset commit failed; will retry", "offset", acked, "err", err)
	}
	settle := func(err error) error {
		if err != nil {
			return fmt.Errorf("batch %d-%d not stored: %w", pending[0].First, pending[0].Last, err)
		}
		acked, ackedMeta = pending[0].Last+1, pending[0].Metadata
		pending[0] = nil
		pending = pending[1:]
		return nil
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		// Acknowledged batches first, committed at once: the commit
		// carries what the rebuilt state of a next owner must cover.
		for len(pending) > 0 {
			select {
			case err := <-pending[0].done:
				if stopErr = settle(err); stopErr != nil {
					break loop
				}
				continue
			default:
			}
			break
		}
		commit()
		if c.draining.Load() {
			if end < 0 {
				firsts, ends, err := Bounds(ctx, c.cfg.Brokers, c.cfg.Topic, []int{int(p)})
				if err != nil {
					log.Warn("drain: high-water mark unknown; stopping now", "err", err)
					break
				}
				end = ends[p]
				if next < 0 {
					next = firsts[p]
				}
			}
			if next >= end {
				break
			}
		}
		if len(pending) >= c.cfg.MaxInFlight {
			pp.Flush()
		}
		var oldest chan error
		if len(pending) > 0 {
			oldest = pending[0].done
		}
		in := batches
		if len(pending) >= c.cfg.MaxInFlight {
			in = nil // backpressure
		}
		select {
		case <-ctx.Done():
			break loop
		case err := <-oldest:
			if stopErr = settle(err); stopErr != nil {
				break loop
			}
		case <-tick.C:
		case b, ok := <-in:
			if !ok {
				break loop
			}
			lag := c.metrics.lag.WithLabelValues(c.cfg.Topic, strconv.Itoa(int(p)))
			lag.Set(float64(r.Lag()))
			c.metrics.messages.WithLabelValues(c.cfg.Topic).Add(float64(len(b.Records)))
			if err := pp.Process(ctx, b); err != nil {
				stopErr = fmt.Errorf("process %s/%d offsets %d-%d: %w", b.Topic, p, b.First, b.Last, err)
				break loop
			}
			pending = append(pending, b)
			next = b.Last + 1
		}
	}

	// Hand over: flush, wait for the outstanding batches, commit them.
	stopFetch()
	drain, cancel := context.WithTimeout(context.Background(), c.cfg.RebalanceTimeout)
	defer cancel()
	pp.Flush()
	for len(pending) > 0 && stopErr == nil {
		select {
		case err := <-pending[0].done:
			stopErr = settle(err)
		case <-drain.Done():
			stopErr = errors.New("batches not acknowledged in time")
		}
	}
	commit()
	log.Info("partition released", "committed", committed, "unacknowledged_batches", len(pending))
	for range batches { // let the fetch stage finish
	}
	if err := <-fetchErr; err != nil && stopErr == nil && ctx.Err() == nil && !c.draining.Load() {
		stopErr = err
	}
	return stopErr
}

// fetch cuts the partition's records into batches of at most BatchSize
// records or BatchTimeout and sends them on, in order.
func (c *RecordConsumer) fetch(ctx context.Context, r *kafkago.Reader, p int32, out chan<- *RecordBatch) error {
	for ctx.Err() == nil {
		first, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetch %s/%d: %w", c.cfg.Topic, p, err)
		}
		b := &RecordBatch{Topic: c.cfg.Topic, Partition: p, Produced: first.Time.UnixNano(), done: make(chan error, 1)}
		b.Records = append(make([]Record, 0, 64), Record{Offset: first.Offset, Key: first.Key, Value: first.Value})
		bctx, cancel := context.WithTimeout(ctx, c.cfg.BatchTimeout)
		for len(b.Records) < c.cfg.BatchSize {
			m, err := r.FetchMessage(bctx)
			if err != nil {
				break
			}
			b.Records = append(b.Records, Record{Offset: m.Offset, Key: m.Key, Value: m.Value})
		}
		cancel()
		b.First, b.Last = b.Records[0].Offset, b.Records[len(b.Records)-1].Offset
		select {
		case out <- b:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}
