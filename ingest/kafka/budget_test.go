package kafka

import (
	"context"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	t.Run("within the limit does not wait", func(t *testing.T) {
		b := newBudget(100)
		if !b.acquire(context.Background(), 60, nil) || !b.acquire(context.Background(), 40, nil) {
			t.Fatal("acquire within the limit failed")
		}
		if got := b.inUse(); got != 100 {
			t.Fatalf("in use %d, want 100", got)
		}
	})
	t.Run("over the limit waits for a release and asks for a flush", func(t *testing.T) {
		b := newBudget(100)
		b.acquire(context.Background(), 80, nil)
		flushed := make(chan struct{}, 1)
		got := make(chan bool)
		go func() { got <- b.acquire(context.Background(), 50, func() { flushed <- struct{}{} }) }()
		select {
		case <-flushed:
		case <-time.After(5 * time.Second):
			t.Fatal("no flush asked while waiting")
		}
		select {
		case <-got:
			t.Fatal("acquired over the limit")
		case <-time.After(20 * time.Millisecond):
		}
		b.release(80)
		if !<-got {
			t.Fatal("acquire failed after release")
		}
		if n := b.inUse(); n != 50 {
			t.Fatalf("in use %d, want 50", n)
		}
	})
	t.Run("a request larger than the budget passes when nothing is held", func(t *testing.T) {
		b := newBudget(10)
		if !b.acquire(context.Background(), 1000, nil) {
			t.Fatal("oversized acquire on an empty budget failed")
		}
	})
	t.Run("cancel stops the wait", func(t *testing.T) {
		b := newBudget(10)
		b.acquire(context.Background(), 10, nil)
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan bool)
		go func() { got <- b.acquire(ctx, 5, nil) }()
		cancel()
		if <-got {
			t.Fatal("acquire succeeded after cancel")
		}
		if n := b.inUse(); n != 10 {
			t.Fatalf("in use %d, want 10", n)
		}
	})
	t.Run("a batch frees once, on Done or when abandoned", func(t *testing.T) {
		b := newBudget(100)
		b.acquire(context.Background(), 30, nil)
		bt := newBatch("t", 0)
		bt.cost, bt.budget = 30, b
		bt.Done(nil)
		bt.free()
		if n := b.inUse(); n != 0 {
			t.Fatalf("in use %d, want 0", n)
		}
	})
}
