package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// configureMemory sets the default heap limit unless GOMEMLIMIT is set,
// and turns off growth-triggered collection only while a limit holds and
// GOGC is not set.
func TestConfigureMemory(t *testing.T) {
	limit0, gc0 := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(limit0); debug.SetGCPercent(gc0) })
	for _, tc := range []struct {
		name      string
		env       map[string]string
		limit     int64 // the limit in force before (set by the runtime from GOMEMLIMIT)
		wantLimit int64
		wantGC    int
	}{
		{"nothing set", nil, math.MaxInt64, defaultMemoryLimit, -1},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, 1 << 30, 1 << 30, -1},
		{"GOMEMLIMIT off", map[string]string{"GOMEMLIMIT": "off"}, math.MaxInt64, math.MaxInt64, 100},
		{"GOGC set", map[string]string{"GOGC": "100"}, math.MaxInt64, defaultMemoryLimit, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(tc.limit)
			debug.SetGCPercent(100)
			configureMemory(func(k string) string { return tc.env[k] })
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit %d, want %d", got, tc.wantLimit)
			}
			if got := debug.SetGCPercent(100); got != tc.wantGC {
				t.Errorf("GC percent %d, want %d", got, tc.wantGC)
			}
		})
	}
}
