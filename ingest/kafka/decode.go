package kafka

import (
	"errors"
	"sync"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/pseudonym"
)

// chunkSize is how many messages one decode task takes: large enough to
// amortise the hand-off, small enough to spread a hot partition's batch
// over every worker.
const chunkSize = 256

// decodePool decodes and validates messages on a fixed set of goroutines
// shared by all partitions. Order does not matter here: each message is
// written to its own slot, and the partition reassembles the batch in
// offset order.
type decodePool struct {
	tasks chan decodeTask
	wg    sync.WaitGroup
}

// decodeTask decodes msgs into the matching slots of events or statuses and
// records each message's error in errs.
type decodeTask struct {
	subjects bool
	msgs     []kafkago.Message
	events   []event.Event
	statuses []event.SubjectStatus
	errs     []error
	done     *sync.WaitGroup
}

func newDecodePool(workers int, limits event.Limits, keyed *pseudonym.Keyed) *decodePool {
	p := &decodePool{tasks: make(chan decodeTask, workers*4)}
	for i := 0; i < workers; i++ {
		p.wg.Add(1)
		dec := event.NewDecoder(limits)
		// kafka-go allocates every message value afresh and nothing here
		// writes to one: decoded strings may point into it.
		dec.SetAliasing(true)
		go p.work(dec, keyed.Clone())
	}
	return p
}

func (p *decodePool) work(dec *event.Decoder, keyed *pseudonym.Keyed) {
	defer p.wg.Done()
	var hdrs []event.Header
	for t := range p.tasks {
		for i := range t.msgs {
			m := &t.msgs[i]
			hdrs = convertHeaders(hdrs[:0], m.Headers)
			if t.subjects {
				s := &t.statuses[i]
				if err := dec.DecodeSubjectStatus(m.Value, hdrs, s); err != nil {
					t.errs[i] = err
					continue
				}
				s.Subject = keyed.Subject(s.Subject)
				s.Origin = event.Origin{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset}
				continue
			}
			ev := &t.events[i]
			if err := dec.Decode(m.Value, hdrs, ev); err != nil {
				t.errs[i] = err
				continue
			}
			keyed.Subjects(ev.Data.Subjects)
			ev.Origin = event.Origin{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset}
			// The event holds copies of what it needs: let the message's
			// bytes go now rather than when the batch is stored. Invalid
			// messages keep theirs for the dead-letter topic.
			m.Key, m.Value = nil, nil
		}
		t.done.Done()
	}
}

// convertHeaders converts kafka-go headers without copying their values.
func convertHeaders(dst []event.Header, src []kafkago.Header) []event.Header {
	for _, h := range src {
		dst = append(dst, event.Header{Key: h.Key, Value: h.Value})
	}
	if len(dst) == 0 {
		return nil
	}
	return dst
}

// decode decodes msgs in parallel and blocks until all are done. It returns
// the decoded values (one slot per message) and each message's error.
func (p *decodePool) decode(subjects bool, msgs []kafkago.Message) ([]event.Event, []event.SubjectStatus, []error) {
	errs := make([]error, len(msgs))
	var events []event.Event
	var statuses []event.SubjectStatus
	if subjects {
		statuses = make([]event.SubjectStatus, len(msgs))
	} else {
		events = make([]event.Event, len(msgs))
	}
	var done sync.WaitGroup
	for lo := 0; lo < len(msgs); lo += chunkSize {
		hi := min(lo+chunkSize, len(msgs))
		t := decodeTask{subjects: subjects, msgs: msgs[lo:hi], errs: errs[lo:hi], done: &done}
		if subjects {
			t.statuses = statuses[lo:hi]
		} else {
			t.events = events[lo:hi]
		}
		done.Add(1)
		p.tasks <- t
	}
	done.Wait()
	return events, statuses, errs
}

func (p *decodePool) close() {
	close(p.tasks)
	p.wg.Wait()
}

// reasonOf returns the short reason label of a decode error, for metrics
// and dead-letter headers.
func reasonOf(err error) (reason, field string) {
	var de *event.Error
	if errors.As(err, &de) {
		return string(de.Reason), de.Field
	}
	return "undecodable", ""
}
