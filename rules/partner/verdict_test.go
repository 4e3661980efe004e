package partner

import (
	"strings"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

const demoRegistry = "../../deploy/demo/partners.yml"

func loadDemo(t testing.TB) *Registry {
	t.Helper()
	reg, err := Load(demoRegistry)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return reg
}

// share builds a successful share event to domain on 2026-03-02.
func share(domain string, kind event.RecipientKind, ch event.ChannelKind, country, purpose string, cats ...string) *event.Event {
	return &event.Event{
		ID: "e1", Time: time.Date(2026, 3, 2, 6, 30, 0, 0, time.UTC),
		Type: event.TypeShare, Action: event.ActionTransfer,
		Actor:     event.Actor{ID: "svc-feed", Kind: event.ActorService},
		Data:      event.Data{Categories: cats, Records: 100, HasRecords: true},
		Recipient: event.Recipient{Domain: domain, Country: country, Kind: kind},
		Channel:   event.Channel{Kind: ch, Encrypted: true, EncryptedSet: true},
		Purpose:   purpose,
		Outcome:   event.OutcomeSuccess,
	}
}

func TestJudge(t *testing.T) {
	reg := loadDemo(t)
	tests := []struct {
		name      string
		ev        *event.Event
		mod       func(*event.Event)
		finding   Finding
		ref       string
		uncovered string
		reason    string
	}{
		{name: "analytics feed within DPA-2024-017",
			ev:  share("sftp.acme-analytics.com", event.RecipientProcessor, event.ChannelSFTP, "DE", "analytics.reporting.weekly", "user.behavior.browsing_history", "user.unique_id"),
			ref: "DPA-2024-017"},
		{name: "health data to the analytics processor",
			ev:      share("acme-analytics.com", event.RecipientProcessor, event.ChannelSFTP, "DE", "analytics.reporting", "user.behavior", "user.health_and_medical.condition"),
			finding: FindingAgreementCategory, ref: "DPA-2024-017", uncovered: "user.health_and_medical.condition",
			reason: "category user.health_and_medical.condition is not covered by DPA-2024-017 (covers user.unique_id, user.behavior, user.device)"},
		{name: "payment data used for marketing",
			ev:      share("api.payflux.eu", event.RecipientProcessor, event.ChannelAPI, "NL", "marketing.advertising", "user.financial"),
			finding: FindingAgreementUse, ref: "DPA-2023-031", uncovered: "marketing.advertising",
			reason: "use marketing.advertising is not covered by DPA-2023-031 (covers essential.service.payment_processing)"},
		{name: "share without purpose",
			ev:      share("payflux.com", event.RecipientProcessor, event.ChannelAPI, "NL", "", "user.financial"),
			finding: FindingAgreementUse, ref: "DPA-2023-031", uncovered: "",
			reason: "the share declares no purpose; DPA-2023-031 covers only essential.service.payment_processing"},
		{name: "lab results by e-mail",
			ev:      share("helix-labs.de", event.RecipientProcessor, event.ChannelEmail, "DE", "essential.service", "user.health_and_medical"),
			finding: FindingAgreementChannel, ref: "DPA-2023-012", uncovered: "email",
			reason: "channel email is not allowed by DPA-2023-012 (allows sftp)"},
		{name: "mailwave to Singapore",
			ev:      share("mailwave.io", event.RecipientProcessor, event.ChannelAPI, "SG", "essential.service.notifications", "user.contact.email"),
			finding: FindingAgreementCountry, ref: "DPA-2024-002", uncovered: "SG",
			reason: "country SG is not allowed by DPA-2024-002 (allows IE, US)"},
		{name: "auditor after the engagement ended",
			ev:      share("kessler-roth.de", event.RecipientPartner, event.ChannelSFTP, "DE", "legal.compliance", "user.financial"),
			mod:     func(e *event.Event) { e.Time = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC) },
			finding: FindingAgreementExpired, ref: "ENG-2025-003",
			reason: "agreement ENG-2025-003 with Kessler & Roth Wirtschaftsprüfung expired on 2026-06-30; the share was on 2026-07-01"},
		{name: "auditor on the last day",
			ev:  share("kessler-roth.de", event.RecipientPartner, event.ChannelSFTP, "DE", "legal.compliance", "user.financial"),
			mod: func(e *event.Event) { e.Time = time.Date(2026, 6, 30, 23, 59, 0, 0, time.UTC) },
			ref: "ENG-2025-003"},
		{name: "adnexa before its agreement",
			ev:      share("adnexa.com", event.RecipientPartner, event.ChannelAPI, "DE", "marketing.advertising.third_party", "user.contact.email"),
			mod:     func(e *event.Event) { e.Time = time.Date(2025, 1, 15, 0, 0, 0, 0, time.UTC) },
			finding: FindingAgreementNotYetValid, ref: "JCA-2025-006",
			reason: "agreement JCA-2025-006 with Adnexa Advertising GmbH applies only from 2025-02-01; the share was on 2025-01-15"},
		{name: "in-force agreement preferred over an expired one on a tie",
			ev:      share("acme-analytics.com", event.RecipientProcessor, event.ChannelSFTP, "IE", "analytics.reporting", "user.contact.email"),
			finding: FindingAgreementCategory, ref: "DPA-2024-017", uncovered: "user.contact.email"},
		{name: "old agreement's scope after it expired",
			ev:  share("acme-analytics.com", event.RecipientProcessor, event.ChannelSFTP, "IE", "analytics.reporting", "user.behavior"),
			mod: func(e *event.Event) { e.Time = time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC) },
			ref: "DPA-2021-004"},
		{name: "suspended ad partner",
			ev:      share("clickharbor.net", event.RecipientPartner, event.ChannelAPI, "IE", "marketing.advertising.third_party", "user.behavior"),
			finding: FindingRecipientNotApproved,
			reason:  "partner ClickHarbor Media Ltd (clickharbor, partner, suspended) is suspended, not approved (Suspended 2025-10: audit found an unannounced sub-processor outside the EEA.)"},
		{name: "revoked list buyer",
			ev:      share("upload.leadmagnet-data.com", event.RecipientPartner, event.ChannelSFTP, "US", "marketing.advertising.third_party", "user.contact"),
			finding: FindingRecipientNotApproved},
		{name: "survey vendor under review",
			ev:      share("surveyly.com", event.RecipientProcessor, event.ChannelAPI, "US", "analytics.reporting", "user.demographic"),
			finding: FindingRecipientNotApproved},
		{name: "unknown domain",
			ev:      share("files.dropshare.example", event.RecipientPartner, event.ChannelHTTPS, "US", "analytics", "user.contact"),
			finding: FindingUnknownRecipient, reason: "recipient files.dropshare.example is not in the partner registry"},
		{name: "domain decides over a claimed id",
			ev:      share("evil.example", event.RecipientProcessor, event.ChannelSFTP, "DE", "analytics.reporting", "user.behavior"),
			mod:     func(e *event.Event) { e.Recipient.ID = "acme-analytics" },
			finding: FindingUnknownRecipient},
		{name: "id without domain",
			ev:  share("", event.RecipientProcessor, event.ChannelSFTP, "DE", "analytics.reporting", "user.behavior"),
			mod: func(e *event.Event) { e.Recipient.ID = "acme-analytics" },
			ref: "DPA-2024-017"},
		{name: "supervisory authority on request",
			ev:  share("datenschutz-berlin.de", event.RecipientAuthority, event.ChannelHTTPS, "DE", "legal.compliance.request", "user.contact", "user.account"),
			ref: "GDPR-ART58"},
		{name: "data subject needs no agreement",
			ev: share("gmail.com", event.RecipientDataSubject, event.ChannelEmail, "", "essential.service.support", "user.contact")},
		{name: "internal needs no agreement",
			ev: share("", event.RecipientInternal, event.ChannelS3, "", "analytics", "user.behavior")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mod != nil {
				tt.mod(tt.ev)
			}
			v := reg.Judge(tt.ev)
			if v.Finding != tt.finding {
				t.Fatalf("Finding = %q (%s), want %q", v.Finding, v.Reason(), tt.finding)
			}
			if v.OK() != (tt.finding == "") {
				t.Fatalf("OK = %v", v.OK())
			}
			ref := ""
			if v.Agreement != nil {
				ref = v.Agreement.Ref
			}
			if tt.ref != "" && ref != tt.ref {
				t.Fatalf("agreement = %q, want %q", ref, tt.ref)
			}
			if got := strings.Join(v.Uncovered, ","); got != tt.uncovered {
				t.Fatalf("Uncovered = %q, want %q", got, tt.uncovered)
			}
			if tt.reason != "" && v.Reason() != tt.reason {
				t.Fatalf("Reason = %q\nwant     %q", v.Reason(), tt.reason)
			}
			if tt.finding != "" && v.Reason() == "" {
				t.Fatal("empty Reason for a finding")
			}
			skip := tt.ev.Recipient.Kind == event.RecipientDataSubject || tt.ev.Recipient.Kind == event.RecipientInternal
			if v.Skipped != skip {
				t.Fatalf("Skipped = %v, want %v", v.Skipped, skip)
			}
		})
	}
	access := share("acme-analytics.com", event.RecipientProcessor, event.ChannelSFTP, "DE", "x", "user")
	access.Type = event.TypeAccess
	if v := reg.Judge(access); !v.Skipped || !v.OK() {
		t.Fatalf("access event judged: %+v", v)
	}
}

func TestClearText(t *testing.T) {
	base := share("mailwave.io", event.RecipientProcessor, event.ChannelAPI, "IE", "x", "user.contact.email")
	tests := []struct {
		name   string
		mod    func(*event.Event)
		want   bool
		reason string
	}{
		{"api", func(*event.Event) {}, false, ""},
		{"encrypted e-mail", func(e *event.Event) { e.Channel.Kind = event.ChannelEmail }, false, ""},
		{"e-mail, encrypted unset", func(e *event.Event) { e.Channel = event.Channel{Kind: event.ChannelEmail} }, true,
			"personal data (user.contact.email) sent by email without encryption (channel.encrypted not set)"},
		{"ftp, encrypted false", func(e *event.Event) { e.Channel = event.Channel{Kind: event.ChannelFTP, EncryptedSet: true} }, true,
			"personal data (user.contact.email) sent by ftp without encryption (channel.encrypted is false)"},
		{"http to the customer", func(e *event.Event) {
			e.Channel = event.Channel{Kind: event.ChannelHTTP}
			e.Recipient.Kind = event.RecipientDataSubject
		}, true, ""},
		{"https", func(e *event.Event) { e.Channel = event.Channel{Kind: event.ChannelHTTPS} }, false, ""},
		{"sftp", func(e *event.Event) { e.Channel = event.Channel{Kind: event.ChannelSFTP, EncryptedSet: true} }, false, ""},
		{"no personal data", func(e *event.Event) { e.Channel = event.Channel{Kind: event.ChannelHTTP}; e.Data.Categories = nil }, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := *base
			tt.mod(&ev)
			if got := ClearText(&ev); got != tt.want {
				t.Fatalf("ClearText = %v, want %v", got, tt.want)
			}
			r := ClearTextReason(&ev)
			if (r != "") != tt.want || tt.reason != "" && r != tt.reason {
				t.Fatalf("ClearTextReason = %q, want %q", r, tt.reason)
			}
		})
	}
}

func TestTags(t *testing.T) {
	reg, err := Parse("tags.yml", []byte(`partners:
  - id: adco
    name: Ad Co
    kind: partner
    status: approved
    tags: [advertiser, data_broker]
`))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := reg.ByID("adco")
	if !p.HasTag(TagAdvertiser) || !p.HasTag(TagDataBroker) || p.HasTag(TagAnalytics) {
		t.Fatalf("tags = %v", p.Tags)
	}
	_, err = Load("testdata/registry.bad.tag.yml")
	if err == nil || !strings.HasPrefix(err.Error(), "testdata/registry.bad.tag.yml:6:24: invalid tag \"advertizer\"") {
		t.Fatalf("err = %v", err)
	}
	_, err = Parse("dup.yml", []byte("partners:\n  - {id: a, name: A, kind: partner, status: approved, tags: [analytics, analytics]}\n"))
	if err == nil || !strings.Contains(err.Error(), `tag "analytics" listed twice`) {
		t.Fatalf("err = %v", err)
	}
}

func TestJudgeDoesNotAllocateWhenCovered(t *testing.T) {
	reg := loadDemo(t)
	ok := share("sftp.acme-analytics.com", event.RecipientProcessor, event.ChannelSFTP, "DE", "analytics.reporting", "user.behavior", "user.unique_id")
	unknown := share("files.dropshare.example", event.RecipientPartner, event.ChannelHTTPS, "US", "analytics", "user.contact")
	for _, ev := range []*event.Event{ok, unknown} {
		if n := testing.AllocsPerRun(100, func() { reg.Judge(ev) }); n != 0 {
			t.Fatalf("Judge(%s) allocates %v times", ev.Recipient.Domain, n)
		}
	}
}

func BenchmarkJudge(b *testing.B) {
	reg := loadDemo(b)
	evs := []*event.Event{
		share("sftp.acme-analytics.com", event.RecipientProcessor, event.ChannelSFTP, "DE", "analytics.reporting", "user.behavior", "user.unique_id"),
		share("api.payflux.eu", event.RecipientProcessor, event.ChannelAPI, "NL", "essential.service.payment_processing", "user.name", "user.financial.card"),
		share("mailwave.io", event.RecipientProcessor, event.ChannelAPI, "IE", "essential.service.notifications", "user.contact.email"),
		share("gmail.com", event.RecipientDataSubject, event.ChannelEmail, "", "essential.service.support", "user.contact"),
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if v := reg.Judge(evs[i&3]); !v.OK() {
			b.Fatal(v.Reason())
		}
	}
}
