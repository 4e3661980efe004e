package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/pseudonym"
)

// Processor receives the batches of the partitions assigned to this
// process. Assigned is called once per partition and generation, before the
// partition's first batch, and may rebuild state (for instance from
// storage); the returned PartitionProcessor then sees that partition's
// batches in offset order from a single goroutine.
type Processor interface {
	Assigned(ctx context.Context, topic string, partition int32, committed int64) (PartitionProcessor, error)
}

// PartitionProcessor handles the batches of one assigned partition.
type PartitionProcessor interface {
	// Process handles a batch, in offset order. It must eventually call
	// b.Done exactly once: nil when the batch and everything derived from
	// it are durably stored. It may return before that (pipelining); an
	// error return stops the partition.
	Process(ctx context.Context, b *Batch) error
	// Flush asks the processor to store what it holds now rather than at
	// its next interval. It is called when the partition reaches its limit
	// of unacknowledged batches or the consumer's in-flight budget
	// (MaxBufferedBytes) is spent (a hot partition must not wait for a
	// timer), and when the partition is given up (rebalance or shutdown),
	// so the outstanding batches get acknowledged and committed before it
	// goes.
	Flush()
}

// Consumer consumes the events and subjects topics as one consumer group
// member. Create it with New and start it with Run.
type Consumer struct {
	cfg     Config
	proc    Processor
	dlq     messageWriter
	pool    *decodePool
	budget  *budget
	metrics *Metrics
	log     *slog.Logger
	dialer  *kafkago.Dialer // of the partition readers
}

// New returns a Consumer. keyed pseudonymises subject ids right after
// decoding, before a Processor sees them; dlq receives invalid messages and
// must wait for all in-sync replicas (RequiredAcks: RequireAll).
func New(cfg Config, proc Processor, keyed *pseudonym.Keyed, dlq *kafkago.Writer, metrics *Metrics, log *slog.Logger) (*Consumer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dlq.RequiredAcks != kafkago.RequireAll {
		return nil, errors.New("kafka: the dead-letter writer must use RequiredAcks: RequireAll")
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Consumer{cfg: cfg, proc: proc, dlq: dlq, metrics: metrics, log: log, dialer: fetchDialer(),
		pool: newDecodePool(cfg.DecodeWorkers, cfg.Limits, keyed), budget: newBudget(cfg.MaxBufferedBytes)}, nil
}

// Run joins the consumer group and processes generations until ctx ends.
// On the way out every partition stops fetching, waits (up to
// RebalanceTimeout) for its batches to be acknowledged and commits them.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.pool.close()
	topics := []string{c.cfg.EventsTopic}
	if c.cfg.SubjectsTopic != "" {
		topics = append(topics, c.cfg.SubjectsTopic)
	}
	start := kafkago.FirstOffset
	if c.cfg.StartFromLatest {
		start = kafkago.LastOffset
	}
	group, err := newGroup(c.cfg.GroupID, c.cfg.Brokers, topics, start, c.cfg.RebalanceTimeout, c.log)
	if err != nil {
		return err
	}
	defer group.Close()
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("consumer group: no generation yet", "err", err)
			continue
		}
		c.metrics.rebalances.Inc()
		c.runGeneration(ctx, gen)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// runGeneration starts one goroutine per assigned partition and returns
// when the generation ends and all of them have committed and stopped.
func (c *Consumer) runGeneration(ctx context.Context, gen *kafkago.Generation) {
	var wg sync.WaitGroup
	n := 0
	for topic, parts := range gen.Assignments {
		for _, pa := range parts {
			n++
			wg.Add(1)
			gen.Start(func(genCtx context.Context) {
				defer wg.Done()
				// The partition stops when the generation ends or Run's
				// context is cancelled, whichever comes first.
				pctx, cancel := context.WithCancel(ctx)
				defer cancel()
				go func() {
					select {
					case <-genCtx.Done():
						cancel()
					case <-pctx.Done():
					}
				}()
				if err := c.runPartition(pctx, gen, topic, pa); err != nil {
					c.log.Error("partition stopped", "topic", topic, "partition", pa.ID, "err", err)
				}
			})
		}
	}
	c.log.Info("joined generation", "generation", gen.ID, "member", gen.MemberID, "partitions", n)
	c.metrics.assigned.Set(float64(n))
	wg.Wait()
	c.metrics.assigned.Set(0)
}

// staged is a batch between decoding and processing.
type staged struct {
	batch    *Batch
	msgs     []kafkago.Message
	events   []event.Event
	statuses []event.SubjectStatus
	errs     []error
	decoded  chan struct{}
}

// runPartition consumes one partition for one generation: a fetch stage
// that cuts batches and hands them to the decode pool, and an ordered stage
// that dead-letters invalid messages, passes the batch to the processor and
// commits acknowledged offsets.
func (c *Consumer) runPartition(ctx context.Context, gen *kafkago.Generation, topic string, pa kafkago.PartitionAssignment) error {
	partition := int32(pa.ID)
	log := c.log.With("topic", topic, "partition", partition)
	pp, err := assign(ctx, c.proc, topic, partition, pa.Offset, log)
	if err != nil {
		return fmt.Errorf("assign %s/%d: %w", topic, partition, err)
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:       c.cfg.Brokers,
		Topic:         topic,
		Partition:     pa.ID,
		MinBytes:      1,
		MaxBytes:      c.cfg.FetchMaxBytes,
		MaxWait:       50 * time.Millisecond,
		QueueCapacity: c.cfg.QueueCapacity,
		Dialer:        c.dialer,
	})
	defer r.Close()
	if err := r.SetOffset(pa.Offset); err != nil {
		return fmt.Errorf("seek %s/%d to %d: %w", topic, partition, pa.Offset, err)
	}
	log.Info("partition assigned", "offset", pa.Offset)

	stages := make(chan *staged, c.cfg.MaxInFlight)
	fetchErr := make(chan error, 1)
	// The fetch stage asks for a flush when the shared budget is spent;
	// the processor is only called from this goroutine.
	flushReq := make(chan struct{}, 1)
	askFlush := func() {
		select {
		case flushReq <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(stages)
		fetchErr <- c.fetch(ctx, r, topic, partition, askFlush, stages)
	}()

	tr := tracker{commit: -1}
	committed := int64(-1)
	commit := func() {
		if tr.commit <= committed {
			return
		}
		err := gen.CommitOffsets(map[string]map[int]int64{topic: {pa.ID: tr.commit}})
		if err != nil {
			c.metrics.commits.WithLabelValues("error").Inc()
			log.Warn("offset commit failed; will retry", "offset", tr.commit, "err", err)
			return
		}
		c.metrics.commits.WithLabelValues("ok").Inc()
		committed = tr.commit
	}
	ticker := time.NewTicker(c.cfg.CommitInterval)
	defer ticker.Stop()

	var stopErr error
loop:
	for {
		if err := tr.poll(); err != nil {
			stopErr = fmt.Errorf("batch not stored: %w", err)
			break
		}
		// Backpressure: no more than MaxInFlight unacknowledged batches.
		if len(tr.pending) >= c.cfg.MaxInFlight {
			pp.Flush()
		}
		for len(tr.pending) >= c.cfg.MaxInFlight && ctx.Err() == nil {
			if err := tr.wait(ctx.Done()); err != nil {
				stopErr = fmt.Errorf("batch not stored: %w", err)
				break loop
			}
		}
		select {
		case <-ctx.Done():
			break loop
		case <-ticker.C:
			commit()
		case <-flushReq:
			pp.Flush()
		case st, ok := <-stages:
			if !ok {
				break loop
			}
			<-st.decoded
			if err := c.deliver(ctx, pp, st); err != nil {
				st.batch.free()
				stopErr = err
				break loop
			}
			tr.add(st.batch)
		}
	}

	// Hand over: flush what the processor holds, wait for the outstanding
	// batches, commit them. A batch not acknowledged in time is simply not
	// committed: the next owner of the partition gets it again.
	drain, cancel := context.WithTimeout(context.Background(), c.cfg.RebalanceTimeout)
	defer cancel()
	pp.Flush()
	for len(tr.pending) > 0 && drain.Err() == nil {
		if err := tr.wait(drain.Done()); err != nil {
			if stopErr == nil {
				stopErr = fmt.Errorf("batch not stored: %w", err)
			}
			break
		}
	}
	commit()
	log.Info("partition released", "committed", committed, "unacknowledged_batches", len(tr.pending))
	for _, b := range tr.pending { // given up: not ours to account for any more
		b.free()
	}
	for st := range stages { // let the fetch stage finish
		<-st.decoded
		st.batch.free()
	}
	if err := <-fetchErr; err != nil && stopErr == nil && ctx.Err() == nil {
		stopErr = err
	}
	return stopErr
}

// fetch cuts the partition's messages into batches of at most BatchSize
// messages or BatchTimeout, starts decoding each and sends it on, in order.
func (c *Consumer) fetch(ctx context.Context, r *kafkago.Reader, topic string, partition int32, flush func(), out chan<- *staged) error {
	subjects := topic == c.cfg.SubjectsTopic && topic != c.cfg.EventsTopic
	lag := c.metrics.lag.WithLabelValues(topic, strconv.Itoa(int(partition)))
	messages := c.metrics.messages.WithLabelValues(topic)
	for ctx.Err() == nil {
		first, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetch %s/%d: %w", topic, partition, err)
		}
		st := &staged{batch: newBatch(topic, partition), decoded: make(chan struct{})}
		st.batch.Produced = first.Time.UnixNano()
		msgs := make([]kafkago.Message, 1, c.cfg.BatchSize)
		msgs[0] = first
		bctx, cancel := context.WithTimeout(ctx, c.cfg.BatchTimeout)
		for len(msgs) < c.cfg.BatchSize {
			m, err := r.FetchMessage(bctx)
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		cancel()
		last := msgs[len(msgs)-1]
		lag.Set(float64(last.HighWaterMark - last.Offset - 1))
		messages.Add(float64(len(msgs)))
		st.msgs = msgs
		st.batch.First, st.batch.Last = msgs[0].Offset, last.Offset
		// Take the batch's bytes from the budget shared by all partitions;
		// while it is spent, ask for a flush and wait for acknowledgements.
		var cost int64
		for i := range msgs {
			cost += int64(len(msgs[i].Value) + len(msgs[i].Key))
		}
		if !c.budget.acquire(ctx, cost, flush) {
			return nil
		}
		st.batch.cost, st.batch.budget = cost, c.budget
		c.metrics.buffered.Set(float64(c.budget.inUse()))
		go func() {
			st.events, st.statuses, st.errs = c.pool.decode(subjects, msgs)
			close(st.decoded)
		}()
		select {
		case out <- st:
		case <-ctx.Done():
			<-st.decoded
			st.batch.free()
			return nil
		}
	}
	return nil
}

// deliver dead-letters a decoded batch's invalid messages, then hands its
// valid ones to the processor.
func (c *Consumer) deliver(ctx context.Context, pp PartitionProcessor, st *staged) error {
	b := st.batch
	var dead []kafkago.Message
	now := time.Now()
	for i, err := range st.errs {
		if err == nil {
			continue
		}
		reason, _ := reasonOf(err)
		c.metrics.invalid.WithLabelValues(b.Topic, reason).Inc()
		dead = append(dead, deadLetter(&st.msgs[i], err, now))
	}
	if len(dead) > 0 {
		if err := sendDeadLetters(ctx, c.dlq, dead); err != nil {
			return err
		}
		c.metrics.deadLettered.Add(float64(len(dead)))
		b.Invalid = len(dead)
	}
	if st.statuses != nil {
		b.Statuses = make([]*event.SubjectStatus, 0, len(st.statuses)-len(dead))
		for i := range st.statuses {
			if st.errs[i] == nil {
				b.Statuses = append(b.Statuses, &st.statuses[i])
			}
		}
	} else {
		b.Events = make([]*event.Event, 0, len(st.events)-len(dead))
		for i := range st.events {
			if st.errs[i] == nil {
				b.Events = append(b.Events, &st.events[i])
			}
		}
	}
	st.msgs = nil
	c.metrics.batches.WithLabelValues(b.Topic).Inc()
	c.metrics.batchSize.Observe(float64(len(b.Events) + len(b.Statuses) + b.Invalid))
	if err := pp.Process(ctx, b); err != nil {
		return fmt.Errorf("process %s/%d offsets %d-%d: %w", b.Topic, b.Partition, b.First, b.Last, err)
	}
	return nil
}

// assign asks the processor to take over a partition, retrying with
// backoff while it fails (ClickHouse briefly unreachable, say): giving up
// would end the whole generation and make the group rebalance in a loop.
// It returns an error only when ctx ends first.
func assign(ctx context.Context, proc Processor, topic string, partition int32, offset int64, log *slog.Logger) (PartitionProcessor, error) {
	backoff := 250 * time.Millisecond
	for {
		pp, err := proc.Assigned(ctx, topic, partition, offset)
		if err == nil {
			return pp, nil
		}
		log.Warn("taking over the partition failed; retrying", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// newGroup joins consumer group id on topics, with the heartbeat, session
// and join settings both consumers use; kafka-go's own messages are logged
// at debug level.
func newGroup(id string, brokers, topics []string, start int64, rebalance time.Duration, log *slog.Logger) (*kafkago.ConsumerGroup, error) {
	group, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                id,
		Brokers:           brokers,
		Topics:            topics,
		StartOffset:       start,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  rebalance,
		JoinGroupBackoff:  time.Second,
		ErrorLogger:       kafkago.LoggerFunc(func(f string, a ...any) { log.Debug(fmt.Sprintf(f, a...), "component", "kafka-group") }),
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer group %s: %w", id, err)
	}
	return group, nil
}
