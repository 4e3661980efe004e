//go:build goexperiment.jsonv2

package event

import (
	jsonv2 "encoding/json/v2"
	"testing"
)

// BenchmarkCandidateJSONv2 is encoding/json/v2 (Go 1.25+ behind
// GOEXPERIMENT=jsonv2) on the same events and mirror struct as the other
// candidates: GOEXPERIMENT=jsonv2 go test -bench Candidate ./ingest/event
func BenchmarkCandidateJSONv2(b *testing.B) {
	benchUnmarshal(b, func(data []byte, v any) error { return jsonv2.Unmarshal(data, v) })
}
