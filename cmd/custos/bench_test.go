package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{1, 2, 10}, 2},
		{[]float64{1, 2, 4, 10}, 3},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// printRounds reports the median and range of every rate and ratio over
// the rounds of custos bench -rounds.
func TestPrintRounds(t *testing.T) {
	const n = 1_000_000
	round := func(custos, narrow, same, store time.Duration) throughput {
		return throughput{
			elapsed: custos,
			compare: []*engineRun{{kind: engineNarrow, elapsed: narrow}, {kind: engineEquivalent, elapsed: same}},
			store:   &storeRun{rows: n, elapsed: store},
		}
	}
	runs := []throughput{
		round(10*time.Second, 10*time.Second, 20*time.Second, 5*time.Second), // 100k/s, 1.00x, 2.00x, 50%
		round(20*time.Second, 10*time.Second, 20*time.Second, 5*time.Second), // 50k/s, 0.50x, 1.00x, 25%
		round(8*time.Second, 10*time.Second, 16*time.Second, 4*time.Second),  // 125k/s, 1.25x, 2.00x, 50%
	}
	var out bytes.Buffer
	printRounds(&out, n, runs)
	got := out.String()
	for _, want := range []string{
		"over 3 rounds (median, then min–max):",
		"Custos events/s                            100000  (50000 – 125000)",
		"ratio Custos / Kafka engine (9 cols)       1.00x  (0.50x – 1.25x)",
		"ratio Custos / Kafka engine (same table)   2.00x  (1.00x – 2.00x)",
		"ClickHouse storing alone rows/s            200000  (200000 – 250000)",
		"Custos's share of the storage ceiling      50%  (25% – 50%)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
