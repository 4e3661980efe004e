package rules

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/partner"
)

// t0 is 12:00 UTC, aligned to the hour.
var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

const testRegistry = `
partners:
  - id: acme-analytics
    name: Acme Analytics Ltd
    kind: processor
    status: approved
    domains: [acme-analytics.com]
    agreements:
      - ref: DPA-2024-017
        categories: [user.contact]
        uses: [analytics.reporting]
        valid_from: 2024-01-01
`

func testEngine(t testing.TB) *Engine {
	t.Helper()
	reg, err := partner.Parse("registry.yml", []byte(testRegistry))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.EvidenceSamples = 3
	cfg.BulkExport.Exceptions = append(cfg.BulkExport.Exceptions, Exception{
		Actor: "svc-old-sync", Reason: "Legacy CRM sync.", Owner: "crm-team",
		Expires: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
	})
	e, err := New(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var seq int

// ev builds an event at t0+at.
func ev(at time.Duration, actor string, action event.Action, records int64, opts ...func(*event.Event)) *event.Event {
	seq++
	e := &event.Event{
		ID: fmt.Sprintf("ev-%d", seq), Time: t0.Add(at), Type: event.TypeAccess, Action: action,
		Actor:   event.Actor{ID: actor, Kind: event.ActorUser, Role: "analyst", Department: "finance"},
		Source:  event.Source{System: "crm", Dataset: "customers"},
		Data:    event.Data{Records: records, HasRecords: true, Categories: []string{"user.contact.email"}},
		Outcome: event.OutcomeSuccess,
	}
	if action == event.ActionTransfer {
		e.Type = event.TypeShare
		e.Recipient = event.Recipient{Domain: "sftp.acme-analytics.com", Kind: event.RecipientProcessor}
		e.Channel = event.Channel{Kind: event.ChannelSFTP, Encrypted: true, EncryptedSet: true}
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

func outcome(o event.Outcome) func(*event.Event) { return func(e *event.Event) { e.Outcome = o } }
func to(domain string) func(*event.Event) {
	return func(e *event.Event) { e.Recipient.Domain = domain }
}
func recipientKind(k event.RecipientKind) func(*event.Event) {
	return func(e *event.Event) { e.Recipient.Kind = k }
}
func recipientID(id string) func(*event.Event) {
	return func(e *event.Event) { e.Recipient.Domain, e.Recipient.ID = "", id }
}

const (
	export   = event.ActionExport
	download = event.ActionDownload
	transfer = event.ActionTransfer
	read     = event.ActionRead
)

// wantAlert is what a test expects of one alert.
type wantAlert struct {
	rule    string
	key     string // group key
	slot    time.Duration
	records int64
	events  int64
}

func run(t *testing.T, e *Engine, events []*event.Event) (*State, []*Alert) {
	t.Helper()
	s := e.NewState(3)
	var got []*Alert
	for _, ev := range events {
		s.Evaluate(ev, func(a *Alert) { got = append(got, a) })
	}
	return s, got
}

func TestBulkExport(t *testing.T) {
	m := time.Minute
	tests := []struct {
		name       string
		events     []*event.Event
		want       []wantAlert
		late       int64
		suppressed int64
	}{
		{
			name:   "exactly at the threshold",
			events: []*event.Event{ev(0, "jdoe", export, 4000), ev(10*m, "jdoe", download, 6000)},
			want:   []wantAlert{{RuleBulkExport, "jdoe", 0, 10000, 2}},
		},
		{
			name:   "just below the threshold",
			events: []*event.Event{ev(0, "jdoe", export, 4000), ev(10*m, "jdoe", export, 5999)},
		},
		{
			name:   "one event above the threshold",
			events: []*event.Event{ev(7*m, "jdoe", export, 60412)},
			want:   []wantAlert{{RuleBulkExport, "jdoe", 0, 60412, 1}},
		},
		{
			name:   "transfers count",
			events: []*event.Event{ev(0, "jdoe", transfer, 5000), ev(1*m, "jdoe", export, 5000)},
			want:   []wantAlert{{RuleBulkExport, "jdoe", 0, 10000, 2}},
		},
		{
			name:   "the window slides: the first export has left it",
			events: []*event.Event{ev(0, "jdoe", export, 6000), ev(65*m, "jdoe", export, 6000)},
		},
		{
			name:   "still inside the sliding window across the hour",
			events: []*event.Event{ev(30*m, "jdoe", export, 6000), ev(75*m, "jdoe", export, 6000)},
			want:   []wantAlert{{RuleBulkExport, "jdoe", 60 * m, 12000, 2}},
		},
		{
			name: "out of order within the allowed lateness counts",
			events: []*event.Event{
				ev(30*m, "jdoe", export, 6000), ev(40*m, "jdoe", export, 3000),
				ev(32*m, "jdoe", export, 2000), // 8 min late
			},
			want: []wantAlert{{RuleBulkExport, "jdoe", 0, 11000, 3}},
		},
		{
			name: "a late event completes an earlier window",
			events: []*event.Event{
				ev(0, "jdoe", export, 6000), ev(62*m, "jdoe", export, 100),
				ev(55*m, "jdoe", export, 5000), // 7 min late; 0:00-1:00 now holds 11,000
			},
			want: []wantAlert{{RuleBulkExport, "jdoe", 0, 11000, 2}},
		},
		{
			name: "too late is counted, not added",
			events: []*event.Event{
				ev(30*m, "jdoe", export, 6000), ev(45*m, "jdoe", export, 1000),
				ev(20*m, "jdoe", export, 5000), // 25 min late
			},
			late: 1,
		},
		{
			name: "denied and failed exports add no volume",
			events: []*event.Event{
				ev(0, "jdoe", export, 9000, outcome(event.OutcomeDenied)),
				ev(1*m, "jdoe", export, 9000, outcome(event.OutcomeFailure)),
				ev(2*m, "jdoe", export, 9000),
			},
		},
		{
			name:   "reads do not count",
			events: []*event.Event{ev(0, "jdoe", read, 50000), ev(1*m, "jdoe", event.ActionQuery, 50000)},
		},
		{
			name:   "actors are counted apart",
			events: []*event.Event{ev(0, "jdoe", export, 6000), ev(1*m, "asmith", export, 6000)},
		},
		{
			name: "one alert per actor and slot",
			events: []*event.Event{
				ev(5*m, "jdoe", export, 11000), ev(10*m, "jdoe", export, 500), ev(20*m, "jdoe", export, 5000),
			},
			want: []wantAlert{{RuleBulkExport, "jdoe", 0, 11000, 1}},
		},
		{
			name:   "a new slot while still above the threshold alerts again",
			events: []*event.Event{ev(50*m, "jdoe", export, 11000), ev(65*m, "jdoe", export, 100)},
			want: []wantAlert{
				{RuleBulkExport, "jdoe", 0, 11000, 1},
				{RuleBulkExport, "jdoe", 60 * m, 11100, 2},
			},
		},
		{
			name:       "an exception suppresses the alert",
			events:     []*event.Event{ev(0, "svc-nightly-backup", export, 500000), ev(1*m, "svc-nightly-backup", export, 1)},
			suppressed: 1,
		},
		{
			name:   "an expired exception does not",
			events: []*event.Event{ev(0, "svc-old-sync", export, 20000)},
			want:   []wantAlert{{RuleBulkExport, "svc-old-sync", 0, 20000, 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, got := run(t, testEngine(t), tt.events)
			checkAlerts(t, got, tt.want)
			if s.Late() != tt.late || s.Suppressed() != tt.suppressed {
				t.Fatalf("Late = %d, Suppressed = %d; want %d, %d", s.Late(), s.Suppressed(), tt.late, tt.suppressed)
			}
		})
	}
}

func checkAlerts(t *testing.T, got []*Alert, want []wantAlert) {
	t.Helper()
	if len(got) != len(want) {
		for _, a := range got {
			t.Logf("got %s %s slot %s: %s", a.Rule, a.GroupKey, a.Slot, a.Summary)
		}
		t.Fatalf("%d alerts, want %d", len(got), len(want))
	}
	ids := map[string]bool{}
	for i, w := range want {
		a := got[i]
		slot := t0.Add(w.slot)
		if w.rule == RuleUnknownRecipient {
			slot = slot.Truncate(24 * time.Hour)
		}
		if a.Rule != w.rule || a.GroupKey != w.key || !a.Slot.Equal(slot) || a.Records != w.records || a.Events != w.events {
			t.Fatalf("alert %d = %s %q slot %s records %d events %d; want %+v", i, a.Rule, a.GroupKey, a.Slot, a.Records, a.Events, w)
		}
		if a.ID != StableID(a.Rule, a.GroupKey, a.Slot) {
			t.Fatalf("alert %d: ID is not StableID(rule, group key, slot)", i)
		}
		if ids[a.ID] {
			t.Fatalf("alert %d: duplicate id", i)
		}
		ids[a.ID] = true
		if a.Partition != 3 || a.Summary == "" || a.Severity != SeverityHigh {
			t.Fatalf("alert %d = %+v", i, a)
		}
		if len(a.Evidence) == 0 || len(a.Evidence) > 3 {
			t.Fatalf("alert %d: evidence %v", i, a.Evidence)
		}
	}
}

func TestBulkExportAlert(t *testing.T) {
	m := time.Minute
	var events []*event.Event
	for i := range 12 {
		events = append(events, ev(20*m+time.Duration(i)*3*m, "jdoe", export, 5034))
	}
	events = append(events, ev(20*m+34*m, "jdoe", export, 4))
	_, got := run(t, testEngine(t), events)
	if len(got) != 1 {
		t.Fatalf("%d alerts", len(got))
	}
	a := got[0]
	want := "jdoe (analyst, finance) exported 10,068 records in 2 events between 12:20 and 12:23 UTC (up to 3 min), " +
		"at or above the 10,000-record threshold for 1h; latest export from crm/customers."
	if a.Summary != want {
		t.Fatalf("Summary = %q\nwant      %q", a.Summary, want)
	}
	if !a.WindowStart.Equal(t0.Add(-35*m)) || !a.WindowEnd.Equal(t0.Add(25*m)) || !a.EventTime.Equal(t0.Add(23*m)) ||
		a.Threshold != 10000 || a.Title == "" || strings.Join(a.Evidence, ",") != events[0].ID+","+events[1].ID {
		t.Fatalf("alert = %+v", a)
	}

	_, got = run(t, testEngine(t), []*event.Event{ev(0, "svc-old-sync", export, 20000, func(e *event.Event) {
		e.Actor = event.Actor{ID: "svc-old-sync", Kind: event.ActorService}
	})})
	if s := got[0].Summary; !strings.HasPrefix(s, "service account svc-old-sync exported 20,000 records in 1 event at 12:00 UTC, at or above") ||
		!strings.Contains(s, "the exception for this actor (Legacy CRM sync; owner crm-team) expired on 2026-03-01") {
		t.Fatalf("Summary = %q", s)
	}
}

func TestUnknownRecipient(t *testing.T) {
	h := time.Hour
	tests := []struct {
		name   string
		events []*event.Event
		want   []wantAlert
	}{
		{
			name:   "partner domain and subdomain",
			events: []*event.Event{ev(0, "jdoe", transfer, 10, to("acme-analytics.com")), ev(h, "jdoe", transfer, 10, to("SFTP.acme-analytics.com."))},
		},
		{
			name: "unknown domain, once per actor, domain and day",
			events: []*event.Event{
				ev(0, "jdoe", transfer, 120, to("files.dropzone.io")),
				ev(h, "jdoe", transfer, 5, to("files.dropzone.io")),
				ev(2*h, "jdoe", transfer, 7, to("other.example")),
				ev(3*h, "asmith", transfer, 9, to("files.dropzone.io")),
				ev(24*h, "jdoe", transfer, 11, to("files.dropzone.io")),
			},
			want: []wantAlert{
				{RuleUnknownRecipient, "jdoe|files.dropzone.io", 0, 120, 1},
				{RuleUnknownRecipient, "jdoe|other.example", 0, 7, 1},
				{RuleUnknownRecipient, "asmith|files.dropzone.io", 0, 9, 1},
				{RuleUnknownRecipient, "jdoe|files.dropzone.io", 24 * h, 11, 1},
			},
		},
		{
			name: "data subject and internal recipients are not third parties",
			events: []*event.Event{
				ev(0, "jdoe", transfer, 1, to("gmail.com"), recipientKind(event.RecipientDataSubject)),
				ev(0, "jdoe", transfer, 1, to("corp.internal"), recipientKind(event.RecipientInternal)),
			},
		},
		{
			name: "no domain: the recipient id decides",
			events: []*event.Event{
				ev(0, "jdoe", transfer, 1, recipientID("acme-analytics")),
				ev(0, "jdoe", transfer, 2, recipientID("mystery-corp")),
			},
			want: []wantAlert{{RuleUnknownRecipient, "jdoe|mystery-corp", 0, 2, 1}},
		},
		{
			name:   "a denied share moved nothing",
			events: []*event.Event{ev(0, "jdoe", transfer, 1, to("files.dropzone.io"), outcome(event.OutcomeDenied))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := run(t, testEngine(t), tt.events)
			checkAlerts(t, got, tt.want)
		})
	}
	_, got := run(t, testEngine(t), []*event.Event{ev(0, "jdoe", transfer, 1200, to("files.dropzone.io"), func(e *event.Event) {
		e.Data.Categories = []string{"user.contact.email", "user.financial"}
		e.Recipient.Country = "US"
		e.Purpose = "marketing.advertising"
	})})
	want := "jdoe (analyst, finance) shared 1,200 records (user.contact.email, user.financial) from crm/customers with " +
		"files.dropzone.io, a domain no entry of the partner registry lists, by sftp (encrypted), to US, for marketing.advertising."
	if got[0].Summary != want || got[0].Recipient != "files.dropzone.io" {
		t.Fatalf("Summary = %q\nwant      %q", got[0].Summary, want)
	}
}

// stream is a deterministic mixed stream: many actors, exports in bursts,
// events out of order within (and sometimes beyond) the lateness, shares
// to known and unknown domains, over two days.
func stream(n int) []*event.Event {
	r := rand.New(rand.NewPCG(1, 2))
	domains := []string{"acme-analytics.com", "sftp.acme-analytics.com", "files.dropzone.io", "leak.example"}
	actions := []event.Action{export, download, transfer, read}
	var out []*event.Event
	at := time.Duration(0)
	for i := range n {
		at += time.Duration(r.IntN(40)) * time.Second
		t := at - time.Duration(r.IntN(12))*time.Minute // up to 12 min out of order
		actor := fmt.Sprintf("u%02d", r.IntN(20))
		out = append(out, ev(t, actor, actions[r.IntN(len(actions))], int64(r.IntN(1500)), to(domains[r.IntN(len(domains))]),
			func(e *event.Event) {
				e.Origin = event.Origin{Topic: "custos.events", Partition: 3, Offset: int64(100 + i)}
			}))
	}
	return out
}

func ids(as []*Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

func TestRebuild(t *testing.T) {
	e := testEngine(t)
	events := stream(6000)
	all, allAlerts := run(t, e, events)
	if len(allAlerts) < 10 || all.Late() == 0 {
		t.Fatalf("stream too quiet: %d alerts, %d late", len(allAlerts), all.Late())
	}
	for _, split := range []int{1, 1500, 3000, 4999} {
		t.Run(fmt.Sprint(split), func(t *testing.T) {
			_, first := run(t, e, events[:split])
			s := e.NewState(3)
			for _, ev := range events[:split] {
				s.Observe(ev)
			}
			var second []*Alert
			for _, ev := range events[split:] {
				s.Evaluate(ev, func(a *Alert) { second = append(second, a) })
			}
			if got, want := append(ids(first), ids(second)...), ids(allAlerts); !slices.Equal(got, want) {
				t.Fatalf("first half + rebuilt second half: %d ids, evaluate-all: %d ids", len(got), len(want))
			}
			if s.Late() != all.Late() {
				t.Fatalf("Late = %d, want %d", s.Late(), all.Late())
			}
		})
	}
}

func TestMarkEmitted(t *testing.T) {
	e := testEngine(t)
	events := stream(3000)
	_, want := run(t, e, events)
	s := e.NewState(3)
	for _, a := range want {
		s.MarkEmitted(a.ID)
	}
	var got []*Alert
	for _, ev := range events {
		s.Evaluate(ev, func(a *Alert) { got = append(got, a) })
	}
	if len(got) != 0 {
		t.Fatalf("%d alerts emitted again", len(got))
	}
	// Re-delivered events (offsets already seen) are skipped: they neither
	// count twice nor raise alerts.
	keys, late := s.Keys(), s.Late()
	for _, ev := range events[1000:] {
		s.Evaluate(ev, func(a *Alert) { got = append(got, a) })
	}
	if len(got) != 0 || s.Skipped() != 2000 || s.Keys() != keys || s.Late() != late {
		t.Fatalf("re-delivery: %d alerts, %d skipped", len(got), s.Skipped())
	}
}

func TestEviction(t *testing.T) {
	e := testEngine(t)
	s := e.NewState(0)
	for i := range 100 {
		s.Evaluate(ev(0, fmt.Sprintf("a%d", i), export, 10), nil)
	}
	if s.Keys() != 100 {
		t.Fatalf("Keys = %d", s.Keys())
	}
	// Still within 2 × window + lateness: kept.
	s.Evaluate(ev(2*time.Hour, "late-riser", export, 10), nil)
	if s.Keys() != 101 {
		t.Fatalf("Keys = %d, want 101", s.Keys())
	}
	s.Evaluate(ev(2*time.Hour+15*time.Minute, "late-riser", export, 10), nil)
	if s.Keys() != 1 {
		t.Fatalf("Keys = %d after idle actors expired, want 1", s.Keys())
	}
	if n := s.Expire(t0.Add(10 * time.Hour)); n != 1 || s.Keys() != 0 {
		t.Fatalf("Expire dropped %d, Keys = %d", n, s.Keys())
	}
}

func TestNew(t *testing.T) {
	if _, err := New(DefaultConfig(), nil); err == nil || !strings.Contains(err.Error(), "needs a partner registry") {
		t.Fatalf("err = %v", err)
	}
	cfg := DefaultConfig()
	cfg.UnknownRecipient.Enabled = false
	if _, err := New(cfg, nil); err != nil {
		t.Fatal(err)
	}
	cfg.AllowedLateness = time.Hour
	if _, err := New(cfg, nil); err == nil {
		t.Fatal("New accepted a lateness of a whole window")
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 60412: "60,412", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestStableID2(t *testing.T) {
	slot := t0.Truncate(24 * time.Hour)
	if got, want := stableID2(RuleUnknownRecipient, "jdoe", "x.example", slot.UnixNano()), StableID(RuleUnknownRecipient, "jdoe|x.example", slot); got != want {
		t.Fatalf("stableID2 = %s, want %s", got, want)
	}
}
