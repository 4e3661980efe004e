package kafka

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestTrackerCommitsOnlyTheUnbrokenRun(t *testing.T) {
	mk := func(first, last int64) *Batch {
		b := newBatch("t", 0)
		b.First, b.Last = first, last
		return b
	}
	tests := []struct {
		name       string
		acks       []int // indexes of batches acknowledged, in this order
		failed     int   // index acknowledged with an error (-1: none)
		wantCommit int64
		wantErr    bool
		wantLeft   int
	}{
		{"nothing acknowledged", nil, -1, -1, false, 3},
		{"first only", []int{0}, -1, 100, false, 2},
		{"later batch first does not move the commit", []int{2}, -1, -1, false, 3},
		{"gap filled", []int{2, 0, 1}, -1, 300, false, 0},
		{"failure stops at the failed batch and drops the rest", []int{0}, 1, 100, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := tracker{commit: -1}
			bs := []*Batch{mk(0, 99), mk(100, 199), mk(200, 299)}
			for _, b := range bs {
				tr.add(b)
			}
			for _, i := range tt.acks {
				bs[i].Done(nil)
			}
			if tt.failed >= 0 {
				bs[tt.failed].Done(errors.New("insert failed"))
			}
			err := tr.poll()
			if (err != nil) != tt.wantErr {
				t.Fatalf("poll error = %v, want error %v", err, tt.wantErr)
			}
			if tr.commit != tt.wantCommit {
				t.Fatalf("commit = %d, want %d", tr.commit, tt.wantCommit)
			}
			if len(tr.pending) != tt.wantLeft {
				t.Fatalf("pending = %d, want %d", len(tr.pending), tt.wantLeft)
			}
		})
	}
}

func TestBatchDoneOnlyFirstCallCounts(t *testing.T) {
	b := newBatch("t", 1)
	b.Done(nil)
	b.Done(errors.New("late error"))
	if err := <-b.done; err != nil {
		t.Fatalf("first Done(nil) should win, got %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr bool
	}{
		{"defaults", func(*Config) {}, false},
		{"dlq equals events topic", func(c *Config) { c.DLQTopic = c.EventsTopic }, true},
		{"no brokers", func(c *Config) { c.Brokers = nil }, true},
		{"zero in flight", func(c *Config) { c.MaxInFlight = -1 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{SubjectsTopic: "custos.subjects"}.WithDefaults()
			tt.mutate(&c)
			if err := c.Validate(); (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// flakyProcessor fails its first n takeovers.
type flakyProcessor struct{ n, calls int }

func (f *flakyProcessor) Assigned(context.Context, string, int32, int64) (PartitionProcessor, error) {
	f.calls++
	if f.calls <= f.n {
		return nil, errors.New("clickhouse: connection refused")
	}
	return nopPartition{}, nil
}

type nopPartition struct{}

func (nopPartition) Process(context.Context, *Batch) error { return nil }
func (nopPartition) Flush()                                {}

func TestAssignRetriesUntilTheProcessorTakesOver(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := &flakyProcessor{n: 2}
	pp, err := assign(context.Background(), f, "t", 0, 0, log)
	if err != nil || pp == nil || f.calls != 3 {
		t.Fatalf("assign = %v, %v after %d calls; want a processor after 3 calls", pp, err, f.calls)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := assign(ctx, &flakyProcessor{n: 1 << 30}, "t", 0, 0, log); err == nil {
		t.Fatal("assign must give up with an error when its context ends")
	}
}
