package writer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules"
)

// memStore is an in-memory Store that can fail its next calls and can
// store part of a failing event insert, as a multi-partition ClickHouse
// insert may.
type memStore struct {
	mu          sync.Mutex
	calls       []string
	events      map[int64]int // offset -> times stored
	alerts      map[string]int
	failEvents  int // fail this many event inserts
	partialHalf bool
	failAlerts  int
}

func newMemStore() *memStore {
	return &memStore{events: map[int64]int{}, alerts: map[string]int{}}
}

func (m *memStore) InsertEvents(_ context.Context, evs []*event.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "events")
	if m.failEvents > 0 {
		m.failEvents--
		if m.partialHalf {
			for _, ev := range evs[:len(evs)/2] {
				m.events[ev.Origin.Offset]++
			}
		}
		return errors.New("connection reset")
	}
	for _, ev := range evs {
		if m.events[ev.Origin.Offset] == 0 { // idempotent by offset, as the Store contract asks
			m.events[ev.Origin.Offset]++
		}
	}
	return nil
}

func (m *memStore) InsertAlerts(_ context.Context, as []*rules.Alert) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "alerts")
	if m.failAlerts > 0 {
		m.failAlerts--
		return errors.New("timeout")
	}
	for _, a := range as {
		m.alerts[a.ID]++
	}
	return nil
}

func (m *memStore) InsertSubjectStatuses(context.Context, []*event.SubjectStatus) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "statuses")
	return nil
}

type memPub struct{ n int }

func (p *memPub) Publish(_ context.Context, as []*rules.Alert) error { p.n += len(as); return nil }

func events(n int) []*event.Event {
	out := make([]*event.Event, n)
	for i := range out {
		out[i] = &event.Event{ID: "e", Origin: event.Origin{Topic: "t", Partition: 0, Offset: int64(i)}}
	}
	return out
}

func TestWriterStoresAlertsBeforeEventsAndRetries(t *testing.T) {
	tests := []struct {
		name      string
		store     func() *memStore
		wantCalls []string
	}{
		{"clean", newMemStore, []string{"alerts", "events"}},
		{"alerts fail once", func() *memStore { m := newMemStore(); m.failAlerts = 1; return m },
			[]string{"alerts", "alerts", "events"}},
		{"events fail once, half stored", func() *memStore { m := newMemStore(); m.failEvents = 1; m.partialHalf = true; return m },
			[]string{"alerts", "events", "events"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.store()
			pub := &memPub{}
			w := New(Config{FlushRows: 1000, FlushInterval: 10 * time.Millisecond}, st, pub, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { w.Run(ctx, time.Second); close(done) }()
			acked := make(chan error, 1)
			it := Item{Events: events(10), Alerts: []*rules.Alert{{ID: "a1", Rule: "bulk_export"}}, Done: func(err error) { acked <- err }}
			if err := w.Submit(ctx, it); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-acked:
				if err != nil {
					t.Fatalf("acknowledged with %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("item never acknowledged")
			}
			cancel()
			<-done
			if !slices.Equal(st.calls, tt.wantCalls) {
				t.Fatalf("calls = %v, want %v", st.calls, tt.wantCalls)
			}
			for off := int64(0); off < 10; off++ {
				if st.events[off] != 1 {
					t.Fatalf("event at offset %d stored %d times, want once", off, st.events[off])
				}
			}
			if st.alerts["a1"] != 1 || pub.n != 1 {
				t.Fatalf("alert stored %d times, published %d times; want once each", st.alerts["a1"], pub.n)
			}
			if n, a, _ := w.Counts(); n != 10 || a != 1 {
				t.Fatalf("Counts() = %d events, %d alerts", n, a)
			}
		})
	}
}

func TestWriterGivesUpAtShutdownWithoutAcknowledging(t *testing.T) {
	st := newMemStore()
	st.failEvents = 1 << 30
	w := New(Config{FlushRows: 1000, FlushInterval: 10 * time.Millisecond}, st, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx, 300*time.Millisecond); close(done) }()
	acked := make(chan error, 1)
	_ = w.Submit(ctx, Item{Events: events(3), Done: func(err error) { acked <- err }})
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-acked:
		if err == nil {
			t.Fatal("an item that was never stored must not be acknowledged as stored")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("writer did not give up after the drain period")
	}
	<-done
}

// slowStore blocks its first event insert until release is closed and
// records the size of every event insert.
type slowStore struct {
	*memStore
	release chan struct{}
	started chan struct{}
	sizes   []int
}

func (s *slowStore) InsertEvents(ctx context.Context, evs []*event.Event) error {
	s.mu.Lock()
	first := len(s.sizes) == 0
	s.sizes = append(s.sizes, len(evs))
	s.mu.Unlock()
	if first {
		close(s.started)
		<-s.release
	}
	return s.memStore.InsertEvents(ctx, evs)
}

// While an insert runs, the items that arrive (and their flush requests)
// gather into one unit, written as soon as the store is free.
func TestWriterGroupsItemsWhileTheStoreIsBusy(t *testing.T) {
	st := &slowStore{memStore: newMemStore(), release: make(chan struct{}), started: make(chan struct{})}
	w := New(Config{FlushRows: 1000, FlushInterval: time.Hour}, st, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { w.Run(ctx, time.Second); close(done) }()
	var acked sync.WaitGroup
	submit := func(from, n int) {
		evs := events(from + n)[from:]
		acked.Add(1)
		if err := w.Submit(ctx, Item{Events: evs, Done: func(error) { acked.Done() }}); err != nil {
			t.Fatal(err)
		}
		w.Flush()
	}
	submit(0, 10)
	<-st.started
	for i := 1; i <= 3; i++ {
		submit(i*10, 10)
		time.Sleep(10 * time.Millisecond) // each one flushed on its own if the writer did not wait
	}
	close(st.release)
	acked.Wait()
	cancel()
	<-done
	if !slices.Equal(st.sizes, []int{10, 30}) {
		t.Fatalf("event inserts of %v rows, want [10 30]", st.sizes)
	}
}
