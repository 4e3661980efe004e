package kafka

import (
	"context"
	"sync"
)

// budget bounds the bytes of messages fetched and not yet acknowledged
// across every partition of a Consumer, so memory stays bounded however
// many partitions are assigned and however skewed they are (the per
// partition MaxInFlight alone allows partitions × MaxInFlight × BatchSize
// messages). A batch takes its message bytes from the budget when it is
// cut and gives them back when it is acknowledged or abandoned.
type budget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	limit int64
	used  int64
}

func newBudget(limit int64) *budget {
	b := &budget{limit: limit}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire waits until n bytes fit in the budget, or ctx ends (false). A
// request larger than the whole budget is let through when nothing else is
// held, so one huge batch cannot wedge the consumer. wait, if not nil, is
// called once before blocking (to ask the sink to flush now).
func (b *budget) acquire(ctx context.Context, n int64, wait func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fits(n) {
		b.used += n
		return true
	}
	if wait != nil {
		b.mu.Unlock()
		wait()
		b.mu.Lock()
	}
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	for !b.fits(n) {
		if ctx.Err() != nil {
			return false
		}
		b.cond.Wait()
	}
	b.used += n
	return true
}

func (b *budget) fits(n int64) bool { return b.used+n <= b.limit || b.used == 0 }

// release gives n bytes back.
func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.cond.Broadcast()
	b.mu.Unlock()
}

// inUse returns the bytes held.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
