package synth_test

import (
	"fmt"
	"testing"

	"github.com/custos-privacy/custos/ingest/synth"
)

// BenchmarkNext measures the cost of one event: ns/op is ns per event,
// B/event its average size.
func BenchmarkNext(b *testing.B) {
	benchNext(b, synth.Config{Events: max(b.N, 1_000_000), Incidents: true})
}

// BenchmarkNextFull is BenchmarkNext on the full scenario (peaks, habits
// and all its incidents).
func BenchmarkNextFull(b *testing.B) {
	benchNext(b, synth.Config{Scenario: synth.ScenarioFull, Events: max(b.N, 8_000_000), Incidents: true})
}

// benchNext times Next over a generator of cfg and reports the average
// event size and the rate.
func benchNext(b *testing.B, cfg synth.Config) {
	g, err := synth.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 2048)
	var size int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, v, ok := g.Next(buf)
		if !ok {
			b.Fatal("stream exhausted")
		}
		buf = v
		size += len(v)
	}
	b.ReportMetric(float64(size)/float64(b.N), "B/event")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkNew measures building the world and the schedule.
func BenchmarkNew(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := synth.New(synth.Config{Incidents: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func Example() {
	g, err := synth.New(synth.Config{Seed: 42, Events: 1000, Incidents: true})
	if err != nil {
		panic(err)
	}
	var buf []byte
	n := 0
	for {
		_, v, ok := g.Next(buf) // reuse one buffer
		if !ok {
			break
		}
		buf = v
		n++
	}
	fmt.Println(n == g.Total())
	for _, inc := range g.Incidents() {
		fmt.Println(inc.Kind, len(inc.EventIDs), inc.Records)
	}
	// Output:
	// true
	// bulk_export 7 28000
	// unknown_recipient 1 1850
	// unknown_recipient 1 3200
	// bulk_export 4 60000
}
