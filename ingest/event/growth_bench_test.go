package event_test

import (
	"strconv"
	"testing"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/ingest/synth"
)

// BenchmarkDecodeSize measures decode + validate of the generator's
// events shaped toward 300 B, 600 B and 2 KB (synth.Config.TargetSize),
// and as generated ("natural", ~600 B): ns/op is per event, MB/s over the
// message bytes. The leanest events the contract allows average ~370 B,
// so the 300 B case is that. Run:
//
//	go test ./ingest/event -run '^$' -bench DecodeSize -benchmem -count 2
func BenchmarkDecodeSize(b *testing.B) {
	for _, size := range []int{0, 300, 600, 2048} {
		name := strconv.Itoa(size)
		if size == 0 {
			name = "natural"
		}
		b.Run(name, func(b *testing.B) {
			msgs, avg := generatorEvents(b, size, 20_000)
			d := event.NewDecoder(event.DefaultLimits())
			var ev event.Event
			b.SetBytes(int64(avg))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := d.Decode(msgs[i%len(msgs)], nil, &ev); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(avg, "B/event")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// generatorEvents returns n events of the generator's normal traffic
// shaped toward size (0: as generated) and their average size.
func generatorEvents(b *testing.B, size, n int) ([][]byte, float64) {
	b.Helper()
	g, err := synth.New(synth.Config{Events: n, TargetSize: size})
	if err != nil {
		b.Fatal(err)
	}
	var msgs [][]byte
	total := 0
	for {
		_, v, ok := g.Next(nil)
		if !ok {
			break
		}
		msgs = append(msgs, v)
		total += len(v)
	}
	return msgs, float64(total) / float64(len(msgs))
}
