package kafka

import (
	"sync"

	"github.com/custos-privacy/custos/ingest/event"
)

// Batch is a run of consecutive messages of one partition, decoded and
// validated, in offset order. Its offsets are committed only after Done is
// called with a nil error, and only once every earlier batch of the same
// partition is done too.
type Batch struct {
	// Topic and Partition say where the batch was read.
	Topic     string
	Partition int32
	// First and Last are the offsets of the first and last message.
	First, Last int64
	// Events are the valid events of an events-topic batch, in offset
	// order, with subject ids already pseudonymised.
	Events []*event.Event
	// Statuses are the valid messages of a subjects-topic batch, in offset
	// order, with subject ids already pseudonymised.
	Statuses []*event.SubjectStatus
	// Invalid counts the messages of the batch sent to the dead-letter
	// topic.
	Invalid int
	// Produced is the timestamp of the batch's first (oldest) message, in
	// Unix nanoseconds, for latency metrics.
	Produced int64

	once sync.Once
	done chan error

	// cost is what the batch holds of the consumer's in-flight budget,
	// given back once (free) when it is acknowledged or abandoned.
	cost     int64
	budget   *budget
	freeOnce sync.Once
}

// free gives the batch's share of the in-flight budget back.
func (b *Batch) free() {
	b.freeOnce.Do(func() {
		if b.budget != nil {
			b.budget.release(b.cost)
		}
	})
}

func newBatch(topic string, partition int32) *Batch {
	return &Batch{Topic: topic, Partition: partition, done: make(chan error, 1)}
}

// Done acknowledges the batch: with a nil error its events, and whatever the
// Processor derived from them, are durably stored; with an error they are
// not, and the partition stops without committing past the batch, so the
// batch will be delivered again. Only the first call counts.
func (b *Batch) Done(err error) {
	b.once.Do(func() {
		b.free()
		b.done <- err
	})
}

// tracker keeps one partition's batches in fetch order and yields the
// offset to commit: the offset after the last batch of the unbroken run of
// acknowledged batches.
type tracker struct {
	pending []*Batch
	commit  int64 // next offset to commit; -1 when nothing to commit yet
}

func (t *tracker) add(b *Batch) { t.pending = append(t.pending, b) }

// poll moves past every leading batch that is done, without blocking. It
// returns the first error a batch was acknowledged with; nothing at or
// after that batch can be committed any more, so those are dropped.
func (t *tracker) poll() error {
	for len(t.pending) > 0 {
		select {
		case err := <-t.pending[0].done:
			if err := t.settle(err); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// wait blocks until the oldest batch is acknowledged or stop is closed.
func (t *tracker) wait(stop <-chan struct{}) error {
	if len(t.pending) == 0 {
		return nil
	}
	select {
	case err := <-t.pending[0].done:
		return t.settle(err)
	case <-stop:
		return nil
	}
}

// settle records the acknowledgement of the oldest batch.
func (t *tracker) settle(err error) error {
	if err != nil {
		for _, b := range t.pending {
			b.free()
		}
		clear(t.pending)
		t.pending = t.pending[:0]
		return err
	}
	t.commit = t.pending[0].Last + 1
	t.pending[0] = nil
	t.pending = t.pending[1:]
	return nil
}
