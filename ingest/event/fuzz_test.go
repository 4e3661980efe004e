package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"testing"
	"unicode/utf8"
)

var bigExponent = regexp.MustCompile(`[0-9][eE][+-]?[0-9]{4,}`)

// FuzzDecode checks that the decoder never panics, that every accepted event
// satisfies the contract's invariants and survives the next Decode, and that
// on documents the schema can judge (JSON, UTF-8, no repeated keys, no
// CloudEvents envelope, within size and depth) it agrees with the schema.
//
//	go test ./ingest/event -run '^$' -fuzz FuzzDecode -fuzztime 60s
func FuzzDecode(f *testing.F) {
	for _, b := range exampleFiles(f) {
		f.Add(b)
		f.Add(compact(f, b))
	}
	for _, c := range corpus(f)[:400] {
		f.Add(c.b)
	}
	f.Add([]byte(`{"specversion":"1.0","id":"x","type":"t","source":"s","data":{"type":"access","action":"read","actor":{"id":"a"},"source":{"system":"s"},"time":"2026-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"data":{"records":1e400}}`))
	evSchema, _ := schemas(f)
	d := NewDecoder(DefaultLimits())
	f.Fuzz(func(t *testing.T, in []byte) {
		var ev Event
		err := d.Decode(in, nil, &ev)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" || e.Message == "" {
				t.Fatalf("error without reason: %v", err)
			}
		} else {
			checkInvariants(t, &ev)
			if ev.Extra != nil && !json.Valid(ev.Extra) {
				t.Fatalf("Extra is not JSON: %s", ev.Extra)
			}
		}
		if !schemaCanJudge(in) {
			return
		}
		schemaErr := schemaAccepts(evSchema, in)
		if (schemaErr == nil) != (err == nil) {
			t.Fatalf("schema says %v, decoder says %v\n%q", errString(schemaErr), err, in)
		}
	})
}

// schemaCanJudge reports whether in is a document on which schema and
// decoder must agree.
func schemaCanJudge(in []byte) bool {
	if len(in) > DefaultLimits().MaxMessageBytes || !utf8.Valid(in) || !json.Valid(in) || hasTopKey(in, "specversion") {
		return false
	}
	// Big exponents make the validator's exact arithmetic slow; the
	// decoder handles them (TestParseCount).
	if bigExponent.Match(in) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(in))
	type level struct {
		obj  bool
		keys map[string]bool
		key  bool // next string token in an object is a key
	}
	var stack []*level
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				if top != nil && top.obj {
					top.key = true
				}
				stack = append(stack, &level{obj: tok == '{', keys: map[string]bool{}, key: tok == '{'})
				if len(stack) > DefaultLimits().MaxDepth {
					return false
				}
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.obj && top.key {
				if top.keys[tok] {
					return false
				}
				top.keys[tok] = true
				top.key = false
				continue
			}
			if top != nil && top.obj {
				top.key = true
			}
		default:
			if top != nil && top.obj {
				top.key = true
			}
		}
	}
}

func TestParseCount(t *testing.T) {
	for in, want := range map[string]struct {
		n   int64
		res int
	}{
		"0": {0, countOK}, "-0": {0, countOK}, "12": {12, countOK}, "5.0": {5, countOK}, "5e2": {500, countOK},
		"25e-1": {0, countNotInteger}, "250e-1": {25, countOK}, "1e400": {0, countTooLarge}, "1e-400": {0, countNotInteger},
		"1e999999999999999": {0, countTooLarge}, "0e999999999999": {0, countOK}, "-1": {0, countNegative}, "-1.5": {0, countNotInteger},
		"9223372036854775807": {1<<63 - 1, countOK}, "9223372036854775808": {0, countTooLarge},
		"123456789012345678901234567890": {0, countTooLarge}, "1234567890123456789012.5": {0, countNotInteger},
		"100000000000000000000e-2": {1000000000000000000, countOK}, "0.000": {0, countOK},
	} {
		n, res := parseCount([]byte(in))
		if n != want.n || res != want.res {
			t.Errorf("parseCount(%s) = %d, %d; want %d, %d", in, n, res, want.n, want.res)
		}
	}
}
