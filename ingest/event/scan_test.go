package event

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// plain8 must agree with a byte-by-byte test on every word: each byte
// value in each position, next to plain bytes and next to other stop
// bytes, and random words.
func TestPlain8MatchesByteTest(t *testing.T) {
	stop := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }
	want := func(w uint64) bool {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], w)
		for _, c := range b {
			if stop(c) {
				return false
			}
		}
		return true
	}
	check := func(w uint64) {
		t.Helper()
		if got := plain8(w); got != want(w) {
			t.Fatalf("plain8(%#016x) = %v, want %v", w, got, want(w))
		}
	}
	for _, fill := range []byte{'a', ' ', '~', 0x21, 0x5b, 0x5d, 0x7f, 0x00, 0x1f, 0x80, 0xff, '"', '\\'} {
		for pos := range 8 {
			for c := range 256 {
				var b [8]byte
				for i := range b {
					b[i] = fill
				}
				b[pos] = byte(c)
				check(binary.LittleEndian.Uint64(b[:]))
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		w := r.Uint64()
		check(w)
		check(w & 0x7f7f7f7f7f7f7f7f) // ASCII only
	}
}

// Strings whose stop byte falls at every offset of the eight-byte fast
// path, and strings ending just before the end of the buffer.
func TestStrStopsAtEveryOffset(t *testing.T) {
	for n := range 20 {
		for _, tail := range []string{`"`, `\"x"`, `\u00e9"`, "\xc3\xa9\"", "\x01\"", `\q"`} {
			body := make([]byte, n)
			for i := range body {
				body[i] = 'a' + byte(i%26)
			}
			in := `"` + string(body) + tail
			s := scanner{buf: []byte(in)}
			raw, escaped, err := s.str()
			switch tail {
			case "\x01\"", `\q"`:
				if err == nil {
					t.Errorf("%q: no error", in)
				}
				continue
			}
			if err != nil {
				t.Errorf("%q: %v", in, err)
				continue
			}
			if want := in[1 : len(in)-1]; string(raw) != want || s.pos != len(in) {
				t.Errorf("%q: raw %q pos %d, want %q pos %d", in, raw, s.pos, want, len(in))
			}
			if wantEsc := tail[0] == '\\'; escaped != wantEsc {
				t.Errorf("%q: escaped %v, want %v", in, escaped, wantEsc)
			}
		}
	}
}
