package rules

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

const benchActors = 100_000

var benchT0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// benchStream returns a function that readies event i: time advancing
// 1 ms per event, actors spread over 100,000 so each one sees an event
// every 100 s of event time (all windows active). mixed is 60% exports,
// 30% reads and 10% shares to a partner or an unknown domain.
func benchStream(kind string) func(i int) *event.Event {
	actors := make([]string, benchActors)
	for i := range actors {
		actors[i] = fmt.Sprintf("user-%06d", i)
	}
	domains := []string{"sftp.acme-analytics.com", "acme-analytics.com", "mailwave.io", "files.dropzone.io"}
	const pool = 1024
	evs := make([]event.Event, pool)
	for i := range evs {
		e := &evs[i]
		*e = event.Event{
			ID: fmt.Sprintf("evt-%08d", i), Type: event.TypeAccess, Action: event.ActionExport,
			Actor:   event.Actor{Role: "analyst", Department: "finance", Kind: event.ActorUser},
			Source:  event.Source{System: "crm", Dataset: "customers"},
			Data:    event.Data{Records: int64(10 + i%190), HasRecords: true, Categories: []string{"user.contact.email"}},
			Outcome: event.OutcomeSuccess,
		}
		share := kind == "unknown_recipient" || kind == "mixed" && i%10 == 0
		if kind == "mixed" && i%10 > 6 {
			e.Action = event.ActionRead
		}
		if share {
			e.Type, e.Action = event.TypeShare, event.ActionTransfer
			e.Recipient = event.Recipient{Domain: domains[i%len(domains)], Kind: event.RecipientProcessor, Country: "DE"}
			e.Channel = event.Channel{Kind: event.ChannelSFTP}
		}
	}
	base := benchT0.UnixNano()
	return func(i int) *event.Event {
		e := &evs[i%pool]
		e.Time = time.Unix(0, base+int64(i)*int64(time.Millisecond)).UTC()
		e.Actor.ID = actors[(i*7919)%benchActors]
		return e
	}
}

// BenchmarkEvaluate measures one Evaluate call of the shipped rules with
// 100,000 active actors.
func BenchmarkEvaluate(b *testing.B) {
	for _, kind := range []string{"bulk_export", "unknown_recipient", "mixed"} {
		b.Run(kind, func(b *testing.B) {
			alerts := 0
			benchEvaluate(b, builtinEngine(b), kind, func(*Alert) { alerts++ })
		})
	}
}

// benchEvaluate times one Evaluate call of e over the benchmark stream of
// kind, after a warm-up that tracks every actor, and reports the keys.
func benchEvaluate(b *testing.B, e *Engine, kind string, emit func(*Alert)) {
	s := e.NewState(0)
	next := benchStream(kind)
	i := 0
	for ; i < 2*benchActors; i++ {
		s.Evaluate(next(i), emit)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Evaluate(next(i), emit)
		i++
	}
	b.ReportMetric(float64(s.Keys()), "keys")
}

// BenchmarkMemoryPerKey measures the heap per tracked actor window of the
// shipped rules: 100,000 actors, one export each.
func BenchmarkMemoryPerKey(b *testing.B) {
	e := builtinEngine(b)
	next := benchStream("bulk_export")
	var perKey float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := e.NewState(0)
		for i := range benchActors {
			s.Evaluate(next(i), nil)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perKey = float64(after.HeapAlloc-before.HeapAlloc) / float64(s.Keys())
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perKey, "B/key")
}
