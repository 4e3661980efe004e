package rules

import (
	"bufio"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/consent"
)

// shareTo returns a successful share of jdoe to domain that Acme
// Analytics' DPA-2024-017 covers when domain is one of Acme's.
func shareTo(domain string) *event.Event {
	return &event.Event{
		ID: "e1", Time: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), Type: event.TypeShare, Action: event.ActionTransfer,
		Actor:     event.Actor{ID: "jdoe", Kind: event.ActorUser},
		Source:    event.Source{System: "dwh", Dataset: "web_sessions"},
		Data:      event.Data{Categories: []string{"user.behavior"}, Records: 10, HasRecords: true},
		Recipient: event.Recipient{Domain: domain, Kind: event.RecipientProcessor, Country: "DE"},
		Channel:   event.Channel{Kind: event.ChannelSFTP, Encrypted: true, EncryptedSet: true},
		Purpose:   "analytics.reporting", Outcome: event.OutcomeSuccess,
	}
}

// evalExpr compiles a rule file with one match rule whose condition is
// "true" and returns the value of expr for ev, through a macro.
func evalExpr(t *testing.T, e *Engine, st *State, expr string, ev *event.Event) any {
	t.Helper()
	ast, iss := e.env.Compile(expr)
	if iss.Err() != nil {
		t.Fatalf("%s: %v", expr, iss.Err())
	}
	prg, err := e.env.Program(ast)
	if err != nil {
		t.Fatal(err)
	}
	st.act.reset(ev)
	v, _, err := prg.Eval(&st.act)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v.Value()
}

func TestDerivedFields(t *testing.T) {
	subjects := consent.New()
	e, err := Compile(Builtin(), Options{Registry: testRegistry(t), Policy: testPolicy(t), Consent: subjects})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	subjects.Apply(&event.SubjectStatus{Subject: "s-out", Time: at, Status: event.StatusOptedOut, Uses: []string{"analytics"}})
	subjects.Apply(&event.SubjectStatus{Subject: "s-closed", Time: at, Status: event.StatusClosed})
	subjects.Apply(&event.SubjectStatus{Subject: "s-later", Time: at.AddDate(0, 1, 0), Status: event.StatusOptedOut})

	covered := shareTo("sftp.acme-analytics.com")
	health := shareTo("sftp.acme-analytics.com")
	health.Data.Categories = []string{"user.behavior", "user.health_and_medical"}
	unknown := shareTo("files.dropzone.io")
	clear := shareTo("gmail.com")
	clear.Recipient.Kind, clear.Channel = event.RecipientDataSubject, event.Channel{Kind: event.ChannelEmail}
	location := shareTo("api.adnexa.com")
	location.Data.Categories, location.Purpose = []string{"user.location.precise"}, "marketing.advertising.third_party"
	consented := shareTo("sftp.acme-analytics.com")
	consented.Data.Subjects = []string{"s-out", "s-closed", "s-later", "s-unknown"}
	access := &event.Event{Type: event.TypeAccess, Action: event.ActionRead, Outcome: event.OutcomeSuccess}

	cases := []struct {
		name string
		ev   *event.Event
		expr string
		want any
	}{
		{"covered share has no finding", covered, `event.transfer.finding`, ""},
		{"covered share names partner and agreement", covered, `event.transfer.partner + "/" + event.transfer.partner_name + "/" + event.transfer.agreement`, "acme-analytics/Acme Analytics Ltd/DPA-2024-017"},
		{"category finding", health, `event.transfer.finding`, "agreement_category"},
		{"uncovered values", health, `event.transfer.uncovered`, []string{"user.health_and_medical"}},
		{"reason names the agreement", health, `event.transfer.reason.contains("DPA-2024-017")`, true},
		{"unknown recipient", unknown, `event.transfer.finding == "unknown_recipient" && event.transfer.partner == ""`, true},
		{"no verdict for a non-share", access, `event.transfer.finding + event.transfer.partner`, ""},
		{"clear text to the subject", clear, `event.channel.cleartext`, true},
		{"encrypted sftp is not clear text", covered, `event.channel.cleartext`, false},
		{"promise broken", location, `event.policy.violations`, []string{"no-precise-location-to-advertisers", "advertising-minimal-data"}},
		{"first promise and its text", location, `policy.text(event.policy.promise)`, "Your precise location is never shared with advertisers."},
		{"reason of the first promise", location, `event.policy.reason != ""`, true},
		{"no promise broken", covered, `size(event.policy.violations) == 0 && event.policy.promise == ""`, true},
		{"unknown promise text", covered, `policy.text("no-such-promise")`, ""},
		{"opted out of analytics", consented, `event.consent.opted_out`, int64(1)},
		{"closed account", consented, `event.consent.closed`, int64(1)},
		{"no subjects", covered, `event.consent.opted_out + event.consent.closed`, int64(0)},
	}
	st := e.NewState(0)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := evalExpr(t, e, st, tc.expr, tc.ev)
			if l, ok := tc.want.([]string); ok {
				gl, err := toStrings(got)
				if err != nil || strings.Join(gl, ",") != strings.Join(l, ",") {
					t.Fatalf("%s = %v, want %v", tc.expr, got, tc.want)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("%s = %#v, want %#v", tc.expr, got, tc.want)
			}
		})
	}
}

func toStrings(v any) ([]string, error) {
	switch l := v.(type) {
	case []string:
		return l, nil
	case []any:
		out := make([]string, len(l))
		for i, x := range l {
			out[i], _ = x.(string)
		}
		return out, nil
	}
	return nil, nil
}

// TestDerivedGroupKey checks that a derived field works in group_by: the
// alert key is the partner id, whichever of its domains the data went to.
func TestDerivedGroupKey(t *testing.T) {
	e := builtinEngine(t)
	st := e.NewState(0)
	var got []*Alert
	emit := func(a *Alert) { got = append(got, a) }
	a := shareTo("sftp.acme-analytics.com")
	a.Recipient.Country = "US"
	b := shareTo("api.acme-analytics.com")
	b.ID, b.Recipient.Country, b.Time = "e2", "US", a.Time.Add(time.Minute)
	st.Evaluate(a, emit)
	st.Evaluate(b, emit)
	if len(got) != 1 || got[0].Rule != "agreement_country" || got[0].GroupKey != "jdoe|acme-analytics" {
		t.Fatalf("alerts = %s, want one agreement_country keyed jdoe|acme-analytics", describeAlerts(got))
	}
	for _, want := range []string{"Acme Analytics Ltd (acme-analytics)", "DPA-2024-017", "country US is not allowed"} {
		if !strings.Contains(got[0].Summary, want) {
			t.Errorf("summary %q lacks %q", got[0].Summary, want)
		}
	}
}

// TestGuards checks that the conditions starting with a macro skip their
// evaluation when the macro is false, and still decide when it is true.
func TestGuards(t *testing.T) {
	e := builtinEngine(t)
	guarded := 0
	for _, r := range e.rules {
		if _, ok := r.cond.(*guardedProgram); ok {
			guarded++
		}
	}
	if guarded < 11 {
		t.Fatalf("%d guarded rules, want the 9 third-party and 2 consent rules at least", guarded)
	}
}

// TestGuardsAgree checks that every guarded condition and macro decides
// exactly as its plain CEL program on a spread of events: accesses and
// shares, every action and outcome, approved, unknown and suspended
// recipients, clear-text channels.
func TestGuardsAgree(t *testing.T) {
	subjects := consent.New()
	e, err := Compile(Builtin(), Options{Registry: testRegistry(t), Policy: testPolicy(t), Consent: subjects})
	if err != nil {
		t.Fatal(err)
	}
	subjects.Apply(&event.SubjectStatus{Subject: "s1", Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Status: event.StatusOptedOut})
	var guardedMacros, inGuards, neGuards int
	for _, m := range e.macros {
		if g, ok := m.prg.(*guardedProgram); ok {
			guardedMacros++
			for _, fg := range g.fields {
				inGuards += b2i(fg.op == guardIn)
				neGuards += b2i(fg.op == guardNe)
			}
		}
	}
	for _, r := range e.rules {
		if g, ok := r.cond.(*guardedProgram); ok {
			for _, fg := range g.fields {
				inGuards += b2i(fg.op == guardIn)
				neGuards += b2i(fg.op == guardNe)
			}
		}
	}
	complete := 0
	for _, r := range e.rules {
		if g, ok := r.cond.(*guardedProgram); ok && g.complete {
			complete++
		}
	}
	if complete == 0 {
		t.Errorf("no shipped rule condition is decided by its guards alone")
	}
	if guardedMacros == 0 || inGuards == 0 || neGuards == 0 {
		t.Fatalf("guarded macros %d, in-list guards %d, != guards %d: want each > 0 with the shipped rules", guardedMacros, inGuards, neGuards)
	}

	var evs []*event.Event
	for _, domain := range []string{"sftp.acme-analytics.com", "api.clickharbor.net", "api.adnexa.com", "unknown.example", "gmail.com", ""} {
		for _, action := range []event.Action{event.ActionTransfer, event.ActionExport, event.ActionDownload, event.ActionQuery, event.ActionRead} {
			for _, outcome := range []event.Outcome{event.OutcomeSuccess, event.OutcomeDenied} {
				for _, ch := range []event.Channel{{Kind: event.ChannelSFTP, Encrypted: true, EncryptedSet: true}, {Kind: event.ChannelEmail}} {
					ev := shareTo(domain)
					ev.Action, ev.Outcome, ev.Channel = action, outcome, ch
					if domain == "" {
						ev.Type, ev.Recipient = event.TypeAccess, event.Recipient{}
					}
					ev.Data.Subjects = []string{"s1", "s2"}
					ev.Data.Records = 20000
					ev.Data.Categories = []string{"user.location.precise", "user.contact.email"}
					evs = append(evs, ev)
				}
			}
		}
	}
	st := e.NewState(0)
	decided := map[bool]int{}
	for _, ev := range evs {
		st.act.reset(ev)
		check := func(what string, p cel.Program) {
			g, ok := p.(*guardedProgram)
			if !ok {
				return
			}
			want, _, werr := g.Program.Eval(&st.act)
			got, _, gerr := g.Eval(&st.act)
			if (werr == nil) != (gerr == nil) || werr == nil && want != got {
				t.Errorf("%s on %s %s %s to %q: guarded %v (%v), plain %v (%v)", what, ev.Type, ev.Action, ev.Outcome, ev.Recipient.Domain, got, gerr, want, werr)
			}
			decided[want == types.True]++
		}
		for _, m := range e.macros {
			check("macro "+m.Name, m.prg)
		}
		for _, r := range e.rules {
			check("rule "+r.ID, r.cond)
		}
	}
	if decided[true] == 0 || decided[false] == 0 {
		t.Errorf("guarded programs decided %v: want both outcomes among the events", decided)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestSummaries checks the alert texts name the partner, the agreement
// and the promise involved.
func TestSummaries(t *testing.T) {
	subjects := consent.New()
	e, err := Compile(Builtin(), Options{Registry: testRegistry(t), Policy: testPolicy(t), Consent: subjects})
	if err != nil {
		t.Fatal(err)
	}
	subjects.Apply(&event.SubjectStatus{Subject: "s1", Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Status: event.StatusOptedOut})
	clickharbor := shareTo("api.clickharbor.net")
	clickharbor.Data.Categories = []string{"user.unique_id"} // within what advertisers may receive
	location := shareTo("api.adnexa.com")
	location.Actor.ID = "pwhite"
	location.Data.Categories, location.Purpose = []string{"user.location.precise"}, "marketing.advertising.third_party"
	optedOut := shareTo("sftp.acme-analytics.com")
	optedOut.Actor.ID, optedOut.Data.Subjects = "bkim", []string{"s1", "s2"}
	clear := shareTo("gmail.com")
	clear.Actor.ID, clear.Recipient.Kind, clear.Channel = "mlopez", event.RecipientDataSubject, event.Channel{Kind: event.ChannelEmail}
	want := map[string][]string{
		"recipient_not_approved": {"ClickHarbor Media Ltd (clickharbor)", "suspended, not approved", "unannounced sub-processor"},
		"policy_violation":       {`"Your precise location is never shared with advertisers."`, "no-precise-location-to-advertisers", "Adnexa Advertising GmbH"},
		"subject_opted_out":      {"data of 1 subject who had opted out of analytics.reporting", "2 subjects listed", "Acme Analytics Ltd (acme-analytics)"},
		"cleartext_channel":      {"in clear text", "by email without encryption (channel.encrypted not set)"},
	}
	got := map[string]string{}
	st := e.NewState(0)
	for _, ev := range []*event.Event{clickharbor, location, optedOut, clear} {
		st.Evaluate(ev, func(a *Alert) {
			if _, dup := got[a.Rule]; !dup {
				got[a.Rule] = a.Summary
			}
		})
	}
	for rule, parts := range want {
		s, ok := got[rule]
		if !ok {
			t.Errorf("no %s alert (got %v)", rule, keys(got))
			continue
		}
		for _, p := range parts {
			if !strings.Contains(s, p) {
				t.Errorf("%s summary %q lacks %q", rule, s, p)
			}
		}
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestReplayFixture runs the shipped rules over a small JSON-lines file of
// events, as `custos replay` does, with subject statuses applied first,
// and compares the alerts with the expected rule and key of each.
func TestReplayFixture(t *testing.T) {
	subjects := consent.New()
	e, err := Compile(Builtin(), Options{Registry: testRegistry(t), Policy: testPolicy(t), Consent: subjects})
	if err != nil {
		t.Fatal(err)
	}
	dec := event.NewDecoder(event.Limits{})
	f, err := os.Open("testdata/replay/shares.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st := e.NewState(0)
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if strings.Contains(sc.Text(), `"status"`) {
			var s event.SubjectStatus
			if err := dec.DecodeSubjectStatus(line, nil, &s); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			subjects.Apply(&s)
			continue
		}
		var ev event.Event
		if err := dec.Decode(line, nil, &ev); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		st.Evaluate(&ev, func(a *Alert) { got = append(got, ev.ID+" "+a.Rule+" "+a.GroupKey) })
	}
	want := []string{
		"r02 unknown_recipient jdoe|files.dropzone.io",
		"r04 recipient_not_approved jdoe|leadmagnet-data",
		"r04 policy_violation no-sale-of-personal-data|jdoe",
		"r05 agreement_expired asmith|brightcall",
		"r06 agreement_not_yet_valid asmith|linguaflow",
		"r07 no_agreement asmith|parcelhub",
		"r08 agreement_category jdoe|acme-analytics",
		"r08 policy_violation health-data-only-to-processors|jdoe",
		"r09 agreement_use bkim|acme-analytics",
		"r10 agreement_channel bkim|payrollpro",
		"r11 agreement_country bkim|mailwave",
		"r12 cleartext_channel mlopez|email",
		"r12 policy_violation encrypted-channels|mlopez",
		"r13 agreement_category pwhite|adnexa",
		"r13 policy_violation no-precise-location-to-advertisers|pwhite",
		"r14 subject_opted_out pwhite|api.mailwave.io",
		"r15 subject_closed pwhite|payflux.eu",
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("alerts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestShortDuration checks the window lengths alert texts print.
func TestShortDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{time.Hour, "1h"},
		{24 * time.Hour, "24h"},
		{10 * time.Minute, "10m"},
		{30 * time.Minute, "30m"},
		{90 * time.Minute, "1h30m"},
		{26*time.Hour + 5*time.Minute, "26h5m"},
		{45 * time.Second, "45s"},
		{0, "0s"},
	} {
		if got := shortDuration(tt.d); got != tt.want {
			t.Errorf("shortDuration(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
