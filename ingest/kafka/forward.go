package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// OutRecord is a record to forward: the partition it goes to, its key and
// its value.
type OutRecord struct {
	Partition int32
	Key       []byte
	Value     []byte
}

// Forwarder produces records to a topic (the repartition topic) in order
// within each partition, and waits until every in-sync replica has them
// (RequiredAcks: RequireAll).
//
// Order is what the consumer of that topic relies on to recognise
// duplicates, so a Forwarder does not use kafka-go's Writer, which may
// send a partition's next batch after its previous one failed: each
// partition's records go out as sequential produce requests, each an
// atomic append, and a failed request is retried, as is, before the next
// one is sent. A retried request that had in fact been appended appends
// its records a second time, after the first: duplicates, never
// reordering. Partitions are written in parallel.
type Forwarder struct {
	client     *kafkago.Client
	topic      string
	partitions int
	maxBytes   int
	log        *slog.Logger
}

// forwardMaxBytes bounds the record bytes of one produce request, well
// under the broker's default message.max.bytes (1 MiB) after framing.
const forwardMaxBytes = 512 << 10

// NewForwarder returns a Forwarder to topic, which has partitions
// partitions.
func NewForwarder(brokers []string, topic string, partitions int, log *slog.Logger) *Forwarder {
	return &Forwarder{
		client:     &kafkago.Client{Addr: kafkago.TCP(brokers...), Transport: NewTransport(), Timeout: 10 * time.Second},
		topic:      topic,
		partitions: partitions,
		maxBytes:   forwardMaxBytes,
		log:        log,
	}
}

// Close releases the forwarder's idle connections.
func (f *Forwarder) Close() {
	if t, ok := f.client.Transport.(*kafkago.Transport); ok {
		t.CloseIdleConnections()
	}
}

// Topic is the topic the forwarder writes to.
func (f *Forwarder) Topic() string { return f.topic }

// Partitions is the partition count of the topic.
func (f *Forwarder) Partitions() int { return f.partitions }

// Produce writes recs, in their order within each partition, and returns
// once all of them are acknowledged by every in-sync replica. A failed
// request is retried with backoff until it succeeds or ctx ends; then the
// first error is returned and some records may have been written (the
// caller produces them again, after them: duplicates).
func (f *Forwarder) Produce(ctx context.Context, recs []OutRecord) error {
	if len(recs) == 0 {
		return nil
	}
	byPart := map[int32][]int{}
	for i := range recs {
		p := recs[i].Partition
		if p < 0 || int(p) >= f.partitions {
			return fmt.Errorf("forward to %s: partition %d out of range [0, %d)", f.topic, p, f.partitions)
		}
		byPart[p] = append(byPart[p], i)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for p, idx := range byPart {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.producePartition(ctx, p, recs, idx); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// producePartition writes the records recs[idx...] of partition p as
// sequential requests of at most maxBytes.
func (f *Forwarder) producePartition(ctx context.Context, p int32, recs []OutRecord, idx []int) error {
	for len(idx) > 0 {
		n, size := 0, 0
		for n < len(idx) && (n == 0 || size+len(recs[idx[n]].Value)+len(recs[idx[n]].Key) <= f.maxBytes) {
			size += len(recs[idx[n]].Value) + len(recs[idx[n]].Key)
			n++
		}
		if err := f.produceChunk(ctx, p, recs, idx[:n]); err != nil {
			return err
		}
		idx = idx[n:]
	}
	return nil
}

// produceChunk writes the records recs[idx...] as one request, retrying it
// until it succeeds or ctx ends.
func (f *Forwarder) produceChunk(ctx context.Context, p int32, recs []OutRecord, idx []int) error {
	backoff := 100 * time.Millisecond
	chunk := make([]kafkago.Record, len(idx))
	for attempt := 1; ; attempt++ {
		now := time.Now()
		for i, j := range idx { // readers are consumed by a request: new ones each attempt
			chunk[i] = kafkago.Record{Time: now, Key: kafkago.NewBytes(recs[j].Key), Value: kafkago.NewBytes(recs[j].Value)}
		}
		res, err := f.client.Produce(ctx, &kafkago.ProduceRequest{
			Topic: f.topic, Partition: int(p), RequiredAcks: kafkago.RequireAll,
			Records: kafkago.NewRecordReader(chunk...), Compression: kafkago.Lz4,
		})
		if err == nil && res != nil {
			err = res.Error
			if err == nil && len(res.RecordErrors) > 0 {
				err = fmt.Errorf("%d records refused", len(res.RecordErrors))
			}
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("forward %d records to %s/%d: %w", len(idx), f.topic, p, errors.Join(err, ctx.Err()))
		}
		if f.log != nil && attempt%5 == 1 {
			f.log.Warn("forwarding failed; retrying", "topic", f.topic, "partition", p, "records", len(idx), "attempt", attempt, "err", err)
		}
		// The same request is sent again before anything after it: the
		// partition's order holds.
		select {
		case <-ctx.Done():
			return fmt.Errorf("forward %d records to %s/%d: %w", len(idx), f.topic, p, errors.Join(err, ctx.Err()))
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// PartitionFor is the partition of a repartition topic of n partitions
// that a record keyed key goes to: the 32-bit FNV-1a hash of the key
// modulo n. Every Custos process computes the same, so a group's
// contributions all reach one partition.
func PartitionFor(key []byte, n int) int32 {
	h := uint32(2166136261)
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	return int32(h % uint32(n))
}

// RouteKey appends the key of a contribution of rule to group key to dst:
// the rule id, a zero byte and the group key.
func RouteKey(dst []byte, rule, key string) []byte {
	dst = append(dst, rule...)
	dst = append(dst, 0)
	return append(dst, key...)
}

// ---- topic and group information ----

// adminClient returns a client for one-off requests and the function that
// releases its connections.
func adminClient(brokers []string) (*kafkago.Client, func()) {
	t := NewTransport()
	return &kafkago.Client{Addr: kafkago.TCP(brokers...), Transport: t, Timeout: 10 * time.Second}, t.CloseIdleConnections
}

// PartitionCount returns the number of partitions of topic.
func PartitionCount(ctx context.Context, brokers []string, topic string) (int, error) {
	c, done := adminClient(brokers)
	defer done()
	res, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	for _, t := range res.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return 0, fmt.Errorf("metadata of %s: %w", topic, t.Error)
			}
			return len(t.Partitions), nil
		}
	}
	return 0, fmt.Errorf("metadata of %s: no such topic", topic)
}

// Committed is a consumer group's committed position in one partition.
type Committed struct {
	// Offset is the next offset to consume; -1 when nothing was committed.
	Offset int64
	// Metadata is the string committed with it.
	Metadata string
}

// CommittedOffsets returns the offsets group has committed for the given
// partitions of topic.
func CommittedOffsets(ctx context.Context, brokers []string, group, topic string, partitions []int) (map[int32]Committed, error) {
	c, done := adminClient(brokers)
	defer done()
	res, err := c.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: partitions}})
	if err != nil {
		return nil, fmt.Errorf("committed offsets of %s on %s: %w", group, topic, err)
	}
	if res.Error != nil {
		return nil, fmt.Errorf("committed offsets of %s on %s: %w", group, topic, res.Error)
	}
	out := make(map[int32]Committed, len(partitions))
	for _, p := range partitions {
		out[int32(p)] = Committed{Offset: -1}
	}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("committed offset of %s on %s/%d: %w", group, topic, p.Partition, p.Error)
		}
		out[int32(p.Partition)] = Committed{Offset: p.CommittedOffset, Metadata: p.Metadata}
	}
	return out, nil
}

// Bounds returns the first offset still in the log and the next offset to
// be written (the high-water mark) of the given partitions of topic.
func Bounds(ctx context.Context, brokers []string, topic string, partitions []int) (first, end map[int32]int64, err error) {
	c, done := adminClient(brokers)
	defer done()
	var reqs []kafkago.OffsetRequest
	for _, p := range partitions {
		reqs = append(reqs, kafkago.FirstOffsetOf(p), kafkago.LastOffsetOf(p))
	}
	res, err := c.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, nil, fmt.Errorf("offsets of %s: %w", topic, err)
	}
	first, end = map[int32]int64{}, map[int32]int64{}
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, nil, fmt.Errorf("offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		first[int32(po.Partition)], end[int32(po.Partition)] = po.FirstOffset, po.LastOffset
	}
	for _, p := range partitions {
		if _, ok := end[int32(p)]; !ok {
			return nil, nil, fmt.Errorf("offsets of %s/%d: no answer", topic, p)
		}
	}
	return first, end, nil
}

// ScanPartition calls fn with every record of topic/partition from the
// first offset still in the log to the high-water mark at the time of the
// call, in order.
func ScanPartition(ctx context.Context, brokers []string, topic string, partition int32, fn func(offset int64, value []byte) error) error {
	first, end, err := Bounds(ctx, brokers, topic, []int{int(partition)})
	if err != nil {
		return err
	}
	if first[partition] >= end[partition] {
		return nil
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: int(partition),
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(first[partition]); err != nil {
		return fmt.Errorf("scan %s/%d: %w", topic, partition, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("scan %s/%d: %w", topic, partition, err)
		}
		if err := fn(m.Offset, m.Value); err != nil {
			return err
		}
		if m.Offset >= end[partition]-1 {
			return nil
		}
	}
}
