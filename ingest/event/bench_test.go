package event

import (
	"encoding/json"
	"testing"

	"github.com/bytedance/sonic"
	gojson "github.com/goccy/go-json"
	"github.com/valyala/fastjson"
)

// The benchmarks decode the contract's examples as producers send them
// (compact JSON, 560-790 B, nested). BenchmarkDecode is the chosen decoder,
// validation included; the BenchmarkCandidate* ones are the alternatives
// tried, decoding into a mirror struct (or extracting with fastjson) and
// doing no validation at all, so they flatter the alternatives. Run:
//
//	go test ./ingest/event -run '^$' -bench . -benchmem -benchtime 1s

func benchEvents(b *testing.B) [][]byte {
	ex := exampleFiles(b)
	out := make([][]byte, 0, len(ex))
	for _, name := range sortedKeys(ex) {
		out = append(out, compact(b, ex[name]))
	}
	return out
}

func benchBytes(events [][]byte) int64 {
	n := 0
	for _, e := range events {
		n += len(e)
	}
	return int64(n / len(events))
}

func BenchmarkDecode(b *testing.B) { benchDecode(b, false) }

// BenchmarkDecodeAliasing is BenchmarkDecode as the Kafka consumer runs
// it: strings point into the message instead of a per-event copy.
func BenchmarkDecodeAliasing(b *testing.B) { benchDecode(b, true) }

func benchDecode(b *testing.B, aliasing bool) {
	events := benchEvents(b)
	d := NewDecoder(DefaultLimits())
	d.SetAliasing(aliasing)
	var ev Event
	b.SetBytes(benchBytes(events))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := d.Decode(events[i%len(events)], nil, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSubjectStatus(b *testing.B) {
	msg := []byte(`{"subject":"cust-88231","time":"2026-03-02T09:14:07Z","status":"opted_out","uses":["marketing.advertising.third_party","marketing.communications.email"]}`)
	d := NewDecoder(DefaultLimits())
	var s SubjectStatus
	b.ReportAllocs()
	for b.Loop() {
		if err := d.DecodeSubjectStatus(msg, nil, &s); err != nil {
			b.Fatal(err)
		}
	}
}

// mirror is the event as encoding/json-style decoders want it.
type mirror struct {
	Schema  string `json:"schema"`
	EventID string `json:"event_id"`
	Time    string `json:"time"`
	Type    string `json:"type"`
	Action  string `json:"action"`
	Actor   *struct {
		ID         string `json:"id"`
		Kind       string `json:"kind"`
		Role       string `json:"role"`
		Department string `json:"department"`
	} `json:"actor"`
	Source *struct {
		System      string `json:"system"`
		Dataset     string `json:"dataset"`
		Environment string `json:"environment"`
	} `json:"source"`
	Data *struct {
		Categories        []string `json:"categories"`
		Records           *int64   `json:"records"`
		Bytes             int64    `json:"bytes"`
		Subjects          []string `json:"subjects"`
		SubjectsTruncated bool     `json:"subjects_truncated"`
		SubjectKinds      []string `json:"subject_kinds"`
	} `json:"data"`
	Recipient *struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Domain  string `json:"domain"`
		Country string `json:"country"`
		Kind    string `json:"kind"`
	} `json:"recipient"`
	Channel *struct {
		Kind      string `json:"kind"`
		Encrypted *bool  `json:"encrypted"`
	} `json:"channel"`
	Purpose    string `json:"purpose"`
	LegalBasis string `json:"legal_basis"`
	Outcome    string `json:"outcome"`
	Request    *struct {
		ID      string `json:"id"`
		Session string `json:"session"`
		Ticket  string `json:"ticket"`
		Client  *struct {
			IP        string `json:"ip"`
			UserAgent string `json:"user_agent"`
		} `json:"client"`
	} `json:"request"`
	Attributes map[string]string `json:"attributes"`
}

func benchUnmarshal(b *testing.B, unmarshal func([]byte, any) error) {
	events := benchEvents(b)
	b.SetBytes(benchBytes(events))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var m mirror
		if err := unmarshal(events[i%len(events)], &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCandidateEncodingJSON(b *testing.B) { benchUnmarshal(b, json.Unmarshal) }

func BenchmarkCandidateGoccy(b *testing.B) { benchUnmarshal(b, gojson.Unmarshal) }

func BenchmarkCandidateSonic(b *testing.B) { benchUnmarshal(b, sonic.Unmarshal) }

// BenchmarkCandidateFastjson parses with a reused fastjson.Parser and copies
// every field out into an Event (strings copied, no validation).
func BenchmarkCandidateFastjson(b *testing.B) {
	events := benchEvents(b)
	var p fastjson.Parser
	b.SetBytes(benchBytes(events))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v, err := p.ParseBytes(events[i%len(events)])
		if err != nil {
			b.Fatal(err)
		}
		var ev Event
		str := func(v *fastjson.Value, keys ...string) string { return string(v.GetStringBytes(keys...)) }
		strs := func(v *fastjson.Value, keys ...string) []string {
			a := v.GetArray(keys...)
			if len(a) == 0 {
				return nil
			}
			out := make([]string, len(a))
			for i, x := range a {
				out[i] = string(x.GetStringBytes())
			}
			return out
		}
		ev.ID = str(v, "event_id")
		ev.Time, _ = parseTime(v.GetStringBytes("time"))
		ev.Type = Type(str(v, "type"))
		ev.Action = Action(str(v, "action"))
		ev.Actor = Actor{ID: str(v, "actor", "id"), Kind: ActorKind(str(v, "actor", "kind")), Role: str(v, "actor", "role"), Department: str(v, "actor", "department")}
		ev.Source = Source{System: str(v, "source", "system"), Dataset: str(v, "source", "dataset"), Environment: str(v, "source", "environment")}
		ev.Data.Categories = strs(v, "data", "categories")
		ev.Data.Subjects = strs(v, "data", "subjects")
		ev.Data.SubjectKinds = strs(v, "data", "subject_kinds")
		ev.Data.Records = v.GetInt64("data", "records")
		ev.Data.Bytes = v.GetInt64("data", "bytes")
		ev.Recipient = Recipient{ID: str(v, "recipient", "id"), Name: str(v, "recipient", "name"), Domain: str(v, "recipient", "domain"), Country: str(v, "recipient", "country"), Kind: RecipientKind(str(v, "recipient", "kind"))}
		ev.Purpose = str(v, "purpose")
		ev.LegalBasis = str(v, "legal_basis")
		ev.Request = Request{ID: str(v, "request", "id"), Session: str(v, "request", "session"), Ticket: str(v, "request", "ticket"), ClientIP: str(v, "request", "client", "ip"), UserAgent: str(v, "request", "client", "user_agent")}
		if o := v.GetObject("attributes"); o != nil {
			o.Visit(func(k []byte, x *fastjson.Value) {
				ev.Attributes = append(ev.Attributes, Attribute{Key: string(k), Value: string(x.GetStringBytes())})
			})
		}
		_ = ev
	}
}
