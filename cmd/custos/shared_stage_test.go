package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/kafka"
	"github.com/custos-privacy/custos/rules"
)

// TestRepartitionedScenario replays the full scenario as the pipeline
// runs it when it repartitions: events split by actor over six partitions,
// each evaluating the rules grouped by actor and routing its contributions
// (encoded, each sent twice: duplicates) to six partitions of the shared
// stage by (rule, group key). Every alert must be the one the pipeline
// raises without repartitioning (six partitions, one process-wide
// rules.Shared), and the shared rules' alerts the ones the in-process
// replay raises (TestFullScenarioAgainstGroundTruth checks those against
// the ground truth; rules grouped by actor with peers see each partition's
// peers only, in both pipelines).
func TestRepartitionedScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("replays 400,000 events; run without -short")
	}
	gen, engine := fullScenarioEngine(t)
	dec := event.NewDecoder(event.Limits{})
	const n = 6
	split := engine.Split()
	one := engine.NewState(0)
	var processWide rules.Shared
	var legacy, locals, shared [n]*rules.State
	var routers [n]*rules.Router
	var marks [n]rules.Marks
	var offsets [n]int64
	for p := range n {
		legacy[p] = engine.NewSharedState(int32(p), &processWide)
		locals[p], routers[p] = split.Local().NewState(int32(p)), split.NewRouter()
		shared[p] = engine.NewSharedState(int32(p), new(rules.Shared))
	}
	var inProcess, want, got []string
	record := func(to *[]string) func(*rules.Alert) {
		return func(a *rules.Alert) {
			*to = append(*to, fmt.Sprintf("%s %s %s %s %d %d", a.Rule, a.ID, a.Severity, a.GroupKey, a.Value, a.Events))
		}
	}
	var key []byte
	partition := func(rule, k string) int32 {
		key = kafka.RouteKey(key[:0], rule, k)
		return kafka.PartitionFor(key, n)
	}
	var buf []byte
	for {
		_, v, ok := gen.Next(buf)
		if !ok {
			break
		}
		buf = v
		var ev event.Event
		if err := dec.Decode(v, nil, &ev); err != nil {
			t.Fatal(err)
		}
		one.Evaluate(&ev, record(&inProcess))
		p := kafka.PartitionFor([]byte(ev.Actor.ID), n)
		ev.Origin = event.Origin{Topic: "events", Partition: p, Offset: offsets[p]}
		offsets[p]++
		legacy[p].Evaluate(&ev, record(&want))
		locals[p].Evaluate(&ev, record(&got))
		type rec struct {
			q int32
			b []byte
		}
		var recs []rec
		routers[p].Route(locals[p], &ev, n, partition, func(q int32, c *rules.Contribution) {
			b, err := c.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec{q, b})
		})
		for q := range n {
			b, _ := rules.Progress(ev.Origin, ev.Time).MarshalBinary()
			recs = append(recs, rec{int32(q), b})
		}
		for range 2 {
			for _, r := range recs {
				var c rules.Contribution
				if err := c.UnmarshalBinary(r.b); err != nil {
					t.Fatal(err)
				}
				if c.Progress {
					marks[r.q].Advance(c.Event.Origin)
					continue
				}
				if !c.Hint && !marks[r.q].Admit(c.Event.Origin) {
					continue
				}
				shared[r.q].Apply(&c, record(&got))
			}
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	sharedOnly := func(as []string) []string {
		var out []string
		for _, a := range as {
			for _, r := range engine.SharedRules() {
				if len(a) > len(r) && a[:len(r)+1] == r+" " {
					out = append(out, a)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	if w, g := sharedOnly(inProcess), sharedOnly(got); !slices.Equal(w, g) || len(w) == 0 {
		t.Fatalf("the shared rules' alerts differ from the in-process replay:\n got %q\nwant %q", g, w)
	}
	if !slices.Equal(want, got) {
		var missing, extra []string
		for _, w := range want {
			if _, ok := slices.BinarySearch(got, w); !ok {
				missing = append(missing, w)
			}
		}
		for _, g := range got {
			if _, ok := slices.BinarySearch(want, g); !ok {
				extra = append(extra, g)
			}
		}
		t.Fatalf("repartitioned alerts differ from the pipeline without repartitioning:\nmissing %q\nextra %q", missing, extra)
	}
	t.Logf("%d alerts, the same both ways; %d of the shared rules", len(want), len(sharedOnly(got)))
}

// fakeForwarder records what it is asked to produce; fail makes the next
// calls fail.
type fakeForwarder struct {
	mu    sync.Mutex
	got   [][]kafka.OutRecord
	fail  error
	delay time.Duration
}

func (f *fakeForwarder) Produce(ctx context.Context, recs []kafka.OutRecord) error {
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.got = append(f.got, recs)
	return nil
}

func (f *fakeForwarder) Partitions() int { return 2 }

// TestForwardQueue: batches are forwarded in order once stored, and only
// then acknowledged; a batch not stored, or not forwarded, fails every
// later one.
func TestForwardQueue(t *testing.T) {
	fw := &fakeForwarder{delay: time.Millisecond}
	q := &forwardQueue{fwd: fw, ctx: context.Background(), drain: time.Second, log: slog.New(slog.DiscardHandler)}
	acks := make(chan string, 16)
	ack := func(name string) func(error) {
		return func(err error) { acks <- fmt.Sprintf("%s:%v", name, err) }
	}
	batch := func(i int) []kafka.OutRecord { return []kafka.OutRecord{{Partition: 0, Value: []byte{byte(i)}}} }
	for i := range 5 {
		q.after(batch(i), ack(fmt.Sprint(i)))(nil)
	}
	q.after(nil, ack("empty"))(nil)
	for i := range 5 {
		if got := <-acks; got != fmt.Sprintf("%d:<nil>", i) {
			t.Fatalf("ack %d: %s", i, got)
		}
	}
	if got := <-acks; got != "empty:<nil>" {
		t.Fatalf("ack of a batch without contributions: %s", got)
	}
	for i, recs := range fw.got {
		if recs[0].Value[0] != byte(i) {
			t.Fatalf("forwarded out of order: %v", fw.got)
		}
	}
	stored := errors.New("insert failed")
	q.after(batch(9), ack("unstored"))(stored)
	q.after(batch(10), ack("next"))(nil)
	if got := <-acks; got != "unstored:insert failed" {
		t.Fatalf("unstored batch: %s", got)
	}
	if got := <-acks; got != "next:insert failed" {
		t.Fatalf("the batch after a failure was acknowledged: %s", got)
	}
	if len(fw.got) != 5 {
		t.Fatalf("%d forwards, want 5: nothing after a failure", len(fw.got))
	}

	fw2 := &fakeForwarder{fail: errors.New("broker down")}
	ctx, cancel := context.WithCancel(context.Background())
	q2 := &forwardQueue{fwd: fw2, ctx: ctx, drain: 10 * time.Millisecond, log: slog.New(slog.DiscardHandler)}
	cancel()
	q2.after(batch(0), ack("down"))(nil)
	if got := <-acks; got != "down:broker down" {
		t.Fatalf("a failed forward: %s", got)
	}
}
