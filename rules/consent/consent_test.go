package consent

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// readStatuses decodes testdata/statuses.jsonl with the real decoder.
func readStatuses(t testing.TB) []*event.SubjectStatus {
	t.Helper()
	f, err := os.Open("testdata/statuses.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := event.NewDecoder(event.Limits{})
	var out []*event.SubjectStatus
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := new(event.SubjectStatus)
		if err := dec.DecodeSubjectStatus(sc.Bytes(), nil, s); err != nil {
			t.Fatalf("statuses.jsonl:%d: %v", line, err)
		}
		out = append(out, s)
	}
	return out
}

func loaded(t testing.TB) *Registry {
	t.Helper()
	r := New()
	r.ApplyAll(slices.Values(readStatuses(t)))
	return r
}

func day(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

const (
	subjA = "a0000000000000000000000000000001" // out of marketing, back in for e-mail
	subjB = "b0000000000000000000000000000002" // out of all sharing, then back in
	subjC = "c0000000000000000000000000000003" // closed (an opt-in does not reopen)
	subjD = "d0000000000000000000000000000004" // out of analytics, delivered twice
	subjE = "e0000000000000000000000000000005" // out of third-party advertising only
	subjF = "f0000000000000000000000000000006" // out then in, delivered in reverse
	subjG = "a7000000000000000000000000000007" // out and in at the same instant
	subjH = "a8000000000000000000000000000008" // out of all, then in for essential
	subjN = "cust-40012"                       // not a hex pseudonym
	other = "0123456789abcdef0123456789abcdef" // no status
)

func TestCheck(t *testing.T) {
	r := loaded(t)
	tests := []struct {
		name        string
		subjects    []string
		use         string
		at          string
		out, closed int
	}{
		{"before any opt-out", []string{subjA}, "marketing.advertising", "2026-01-10T08:59:59Z", 0, 0},
		{"opt-out applies from its own time", []string{subjA}, "marketing.advertising", "2026-01-10T09:00:00Z", 1, 0},
		{"parent use covers child", []string{subjA}, "marketing.advertising.third_party", "2026-01-20T00:00:00Z", 1, 0},
		{"not a sibling prefix", []string{subjA}, "marketingx", "2026-01-20T00:00:00Z", 0, 0},
		{"other use not covered", []string{subjA}, "analytics.reporting", "2026-01-20T00:00:00Z", 0, 0},
		{"partial opt-in lifts its use", []string{subjA}, "marketing.communications.email.newsletter", "2026-02-02T00:00:00Z", 0, 0},
		{"partial opt-in keeps the rest", []string{subjA}, "marketing.communications.sms", "2026-02-02T00:00:00Z", 1, 0},
		{"out of all sharing", []string{subjB}, "essential.service.payment_processing", "2026-02-01T00:00:00Z", 1, 0},
		{"out of all covers no purpose", []string{subjB}, "", "2026-02-01T00:00:00Z", 1, 0},
		{"specific opt-out does not cover no purpose", []string{subjA}, "", "2026-02-01T00:00:00Z", 0, 0},
		{"full opt-in lifts all", []string{subjB}, "marketing", "2026-03-01T00:00:00Z", 0, 0},
		{"closed from its time", []string{subjC}, "essential.service", "2026-02-20T17:45:00Z", 0, 1},
		{"not yet closed", []string{subjC}, "essential.service", "2026-02-20T17:44:59Z", 0, 0},
		{"opt-in does not reopen", []string{subjC}, "essential.service", "2026-04-01T00:00:00Z", 0, 1},
		{"re-delivered once counted once", []string{subjD}, "analytics", "2026-02-01T00:00:00Z", 1, 0},
		{"narrow opt-out, broader share", []string{subjE}, "marketing.advertising", "2026-02-01T00:00:00Z", 0, 0},
		{"narrow opt-out, exact share", []string{subjE}, "marketing.advertising.third_party", "2026-02-01T00:00:00Z", 1, 0},
		{"upper-case hex is the same subject", []string{"E0000000000000000000000000000005"}, "marketing.advertising.third_party", "2026-02-01T00:00:00Z", 1, 0},
		{"reverse delivery, between", []string{subjF}, "marketing.email", "2026-01-20T00:00:00Z", 1, 0},
		{"reverse delivery, after", []string{subjF}, "marketing.email", "2026-02-15T00:00:00Z", 0, 0},
		{"same instant: opt-out wins", []string{subjG}, "marketing", "2026-01-02T00:00:00Z", 1, 0},
		{"out of all, in for essential", []string{subjH}, "essential.service", "2026-02-01T00:00:00Z", 0, 0},
		{"out of all, in for essential: marketing", []string{subjH}, "marketing", "2026-02-01T00:00:00Z", 1, 0},
		{"non-hex id", []string{subjN}, "marketing.email", "2026-02-01T00:00:00Z", 1, 0},
		{"unknown subject", []string{other}, "marketing", "2026-02-01T00:00:00Z", 0, 0},
		{"mixed share", []string{subjA, subjB, subjC, subjD, subjE, other, subjN}, "marketing.advertising.third_party", "2026-02-25T00:00:00Z", 4, 1},
		{"no subjects", nil, "marketing", "2026-02-25T00:00:00Z", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, closed := r.Check(tt.subjects, tt.use, day(tt.at))
			if out != tt.out || closed != tt.closed {
				t.Fatalf("Check = (%d, %d), want (%d, %d)", out, closed, tt.out, tt.closed)
			}
		})
	}
}

func TestApplyIdempotentAndOrderFree(t *testing.T) {
	sts := readStatuses(t)
	r := loaded(t)
	if got, want := r.Len(), 9; got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
	if got, want := r.Statuses(), len(sts)-1; got != want { // one duplicate line
		t.Fatalf("Statuses = %d, want %d", got, want)
	}
	if n := r.ApplyAll(slices.Values(sts)); n != 0 {
		t.Fatalf("re-delivery changed %d statuses", n)
	}
	// Every order gives the same answers: apply in reverse and compare.
	rev := New()
	for i := len(sts) - 1; i >= 0; i-- {
		rev.Apply(sts[i])
	}
	subjects := []string{subjA, subjB, subjC, subjD, subjE, subjF, subjG, subjH, subjN}
	uses := []string{"", "marketing", "marketing.communications.email", "marketing.advertising.third_party", "analytics.reporting", "essential.service"}
	for _, at := range []string{"2026-01-01T00:00:00Z", "2026-01-10T09:00:00Z", "2026-01-20T00:00:00Z", "2026-02-15T00:00:00Z", "2026-03-02T00:00:00Z"} {
		for _, u := range uses {
			for _, s := range subjects {
				o1, c1 := r.Check([]string{s}, u, day(at))
				o2, c2 := rev.Check([]string{s}, u, day(at))
				if o1 != o2 || c1 != c2 {
					t.Fatalf("%s %q at %s: forward (%d,%d), reverse (%d,%d)", s, u, at, o1, c1, o2, c2)
				}
			}
		}
	}
	if r.Apply(&event.SubjectStatus{Subject: "", Status: event.StatusClosed}) ||
		r.Apply(&event.SubjectStatus{Subject: subjA, Status: "paused"}) || r.Apply(nil) {
		t.Fatal("invalid status applied")
	}
}

func TestKeyOf(t *testing.T) {
	if KeyOf(subjA) != KeyOf("A0000000000000000000000000000001") {
		t.Fatal("hex case matters")
	}
	k := KeyOf("0123456789abcdef0123456789abcdef")
	if fmt.Sprintf("%x", k[:]) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("KeyOf = %x", k)
	}
	if again := KeyOf("cust-1"); KeyOf("cust-1") == KeyOf("cust-2") || KeyOf("cust-1") != again {
		t.Fatal("hashed keys")
	}
	if KeyOf("0123456789abcdef0123456789abcdeg") == KeyOf("0123456789abcdef0123456789abcdef") {
		t.Fatal("non-hex digit decoded")
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	r := loaded(t)
	subjects := []string{subjA, subjB, subjC, other, subjN}
	at := day("2026-02-25T00:00:00Z")
	if n := testing.AllocsPerRun(100, func() { r.Check(subjects, "marketing.advertising", at) }); n != 0 {
		t.Fatalf("Check allocates %v times", n)
	}
}

// TestConcurrent runs one writer against several readers; run with -race.
func TestConcurrent(t *testing.T) {
	r := loaded(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			subjects := []string{subjA, subjB, subjC, other}
			for {
				select {
				case <-stop:
					return
				default:
					r.Check(subjects, "marketing", day("2026-02-25T00:00:00Z"))
				}
			}
		}()
	}
	base := day("2026-01-01T00:00:00Z")
	for i := 0; i < 2000; i++ {
		r.Apply(&event.SubjectStatus{Subject: pseudonym(i % 500), Time: base.Add(time.Duration(i) * time.Minute),
			Status: []event.SubjectStatusKind{event.StatusOptedOut, event.StatusOptedIn, event.StatusClosed}[i%3], Uses: []string{"marketing"}})
	}
	close(stop)
	wg.Wait()
	if r.Len() != 9+500 {
		t.Fatalf("Len = %d", r.Len())
	}
}

func pseudonym(i int) string { return fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15) }

// TestMemoryPerSubject measures the heap held per subject with one status
// (the common case) and reports it; it fails above 64 bytes.
func TestMemoryPerSubject(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~10 MB")
	}
	const n = 200_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = pseudonym(i)
	}
	st := &event.SubjectStatus{Time: day("2026-01-01T00:00:00Z"), Status: event.StatusOptedOut, Uses: []string{"marketing"}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := New()
	for _, id := range ids {
		st.Subject = id
		r.Apply(st)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.1f bytes per subject (%d subjects; heap %d -> %d)", per, r.Len(), before.HeapAlloc, after.HeapAlloc)
	if per > 64 {
		t.Fatalf("%.1f bytes per subject, want at most 64", per)
	}
	runtime.KeepAlive(r)
	runtime.KeepAlive(ids)
}

func BenchmarkCheck(b *testing.B) {
	r := New()
	st := &event.SubjectStatus{Time: day("2026-01-01T00:00:00Z"), Status: event.StatusOptedOut, Uses: []string{"marketing"}}
	for i := 0; i < 100_000; i++ {
		st.Subject = pseudonym(i)
		r.Apply(st)
	}
	// A share naming 20 subjects, a quarter of them with a status.
	subjects := make([]string, 20)
	for i := range subjects {
		if i%4 == 0 {
			subjects[i] = pseudonym(i * 1000)
		} else {
			subjects[i] = pseudonym(1_000_000 + i)
		}
	}
	at := day("2026-02-01T00:00:00Z")
	b.ReportAllocs()
	for b.Loop() {
		if out, _ := r.Check(subjects, "marketing.advertising.third_party", at); out != 5 {
			b.Fatal(out)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(subjects)), "ns/subject")
}

func BenchmarkApply(b *testing.B) {
	r := New()
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = pseudonym(i)
	}
	st := &event.SubjectStatus{Status: event.StatusOptedOut, Uses: []string{"marketing"}}
	base := day("2026-01-01T00:00:00Z")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		st.Subject = ids[i&(1<<16-1)]
		st.Time = base.Add(time.Duration(i) * time.Second)
		r.Apply(st)
	}
}
