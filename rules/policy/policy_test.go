package policy

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/partner"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func load(t testing.TB) (*Policy, *partner.Registry) {
	t.Helper()
	pol, err := Load("testdata/privacy-statement.yml")
	if err != nil {
		t.Fatalf("Load policy: %v", err)
	}
	reg, err := partner.Load("testdata/partners.yml")
	if err != nil {
		t.Fatalf("Load partners: %v", err)
	}
	return pol, reg
}

// share builds a successful, encrypted share on 2026-03-02.
func share(domain string, kind event.RecipientKind, ch event.ChannelKind, country, purpose string, cats ...string) *event.Event {
	return &event.Event{
		ID: "e1", Time: time.Date(2026, 3, 2, 6, 30, 0, 0, time.UTC),
		Type: event.TypeShare, Action: event.ActionTransfer,
		Actor:     event.Actor{ID: "svc-feed", Kind: event.ActorService},
		Data:      event.Data{Categories: cats, Records: 100, HasRecords: true, SubjectKinds: []string{"customer"}},
		Recipient: event.Recipient{Domain: domain, Country: country, Kind: kind},
		Channel:   event.Channel{Kind: ch, Encrypted: true, EncryptedSet: true},
		Purpose:   purpose,
		Outcome:   event.OutcomeSuccess,
	}
}

func TestLoadExamples(t *testing.T) {
	for _, path := range []string{"testdata/privacy-statement.yml", "../../deploy/demo/policy.yml"} {
		pol, err := Load(path)
		if err != nil {
			t.Fatalf("Load(%s): %v", path, err)
		}
		if len(pol.Promises()) < 5 || pol.Title() == "" || pol.URL() == "" || pol.Version() == "" || pol.Source() != path {
			t.Fatalf("%s: %d promises, title %q", path, len(pol.Promises()), pol.Title())
		}
	}
}

func TestCheck(t *testing.T) {
	pol, reg := load(t)
	tests := []struct {
		name string
		ev   *event.Event
		mod  func(*event.Event)
		want string // "promise-id: reason" lines, "" for none
	}{
		{name: "analytics feed within its agreement",
			ev: share("sftp.acme-analytics.com", event.RecipientProcessor, event.ChannelSFTP, "DE", "analytics.reporting", "user.behavior", "user.unique_id")},
		{name: "ad audience within the joint controller agreement",
			ev: share("adnexa.com", event.RecipientPartner, event.ChannelAPI, "DE", "marketing.advertising.third_party", "user.contact.email", "user.unique_id")},
		{name: "precise location to an advertiser",
			ev:   share("adnexa.com", event.RecipientPartner, event.ChannelAPI, "DE", "marketing.advertising.third_party", "user.unique_id", "user.location.precise.gps"),
			want: "no-precise-location-to-advertisers: transfer of user.location.precise.gps for purpose marketing.advertising.third_party to Adnexa Advertising GmbH (adnexa, tagged advertiser)\nadvertising-minimal-data: transfer of user.unique_id, user.location.precise.gps for purpose marketing.advertising.third_party to Adnexa Advertising GmbH (adnexa, tagged advertiser), but category user.location.precise.gps is outside user.unique_id, user.contact.email, user.demographic.age_range, user.behavior.purchase_history"},
		{name: "coarse location to an advertiser is another promise",
			ev:   share("adnexa.com", event.RecipientPartner, event.ChannelAPI, "DE", "marketing.advertising.third_party", "user.location.imprecise"),
			want: "advertising-minimal-data: transfer of user.location.imprecise for purpose marketing.advertising.third_party to Adnexa Advertising GmbH (adnexa, tagged advertiser), but category user.location.imprecise is outside user.unique_id, user.contact.email, user.demographic.age_range, user.behavior.purchase_history"},
		{name: "precise location to the analytics processor",
			ev: share("acme-analytics.com", event.RecipientProcessor, event.ChannelSFTP, "DE", "analytics.reporting", "user.location.precise")},
		{name: "sale by purpose",
			ev:   share("partner-x.example", event.RecipientPartner, event.ChannelHTTPS, "US", "marketing.sale.customer_list", "user.contact"),
			want: "no-sale-of-personal-data: transfer of user.contact for purpose marketing.sale.customer_list to partner-x.example (partner)"},
		{name: "share to a data broker",
			ev:   share("leadmagnet-data.com", event.RecipientPartner, event.ChannelSFTP, "US", "marketing.advertising.third_party", "user.contact.email"),
			want: "no-sale-of-personal-data: transfer of user.contact.email for purpose marketing.advertising.third_party to LeadMagnet Data Solutions (leadmagnet-data, tagged advertiser, data_broker)"},
		{name: "lab results to the lab under its DPA",
			ev: share("helix-labs.de", event.RecipientProcessor, event.ChannelSFTP, "DE", "essential.service", "user.health_and_medical.lab_result", "user.unique_id")},
		{name: "health data to the analytics processor",
			ev:   share("acme-analytics.com", event.RecipientProcessor, event.ChannelSFTP, "DE", "analytics.reporting", "user.health_and_medical", "user.behavior"),
			want: "health-data-only-to-processors: transfer of user.health_and_medical for purpose analytics.reporting to Acme Analytics Ltd (acme-analytics, tagged analytics), but no agreement covers it: category user.health_and_medical is not covered by DPA-2024-017 (covers user.unique_id, user.behavior, user.device)"},
		{name: "health data to the auditor (a partner, not a processor)",
			ev:   share("kessler-roth.de", event.RecipientPartner, event.ChannelSFTP, "DE", "legal.compliance", "user.health_and_medical"),
			want: "health-data-only-to-processors: transfer of user.health_and_medical for purpose legal.compliance to Kessler & Roth Wirtschaftsprüfung (kessler-roth-audit, tagged auditor), but Kessler & Roth Wirtschaftsprüfung is a partner, not a processor"},
		{name: "health data to an unknown recipient",
			ev:   share("files.dropshare.example", event.RecipientUnknown, event.ChannelHTTPS, "DE", "essential.service", "user.health_and_medical"),
			want: "health-data-only-to-processors: transfer of user.health_and_medical for purpose essential.service to files.dropshare.example (unknown), but the recipient is not a registered partner"},
		{name: "lab results to the patient",
			ev: share("patient-portal.northwind-health.example", event.RecipientDataSubject, event.ChannelHTTPS, "", "essential.service", "user.health_and_medical")},
		{name: "lab results to the patient by plain e-mail",
			ev:   share("gmail.com", event.RecipientDataSubject, event.ChannelEmail, "", "essential.service", "user.health_and_medical"),
			mod:  func(e *event.Event) { e.Channel = event.Channel{Kind: event.ChannelEmail} },
			want: "encrypted-channels: transfer of user.health_and_medical for purpose essential.service to gmail.com (data_subject) by email without encryption (channel.encrypted not set)"},
		{name: "export over http, encrypted false",
			ev: &event.Event{Type: event.TypeAccess, Action: event.ActionExport, Data: event.Data{Categories: []string{"user.contact"}},
				Channel: event.Channel{Kind: event.ChannelHTTP, EncryptedSet: true}},
			want: "encrypted-channels: export of user.contact by http without encryption (channel.encrypted is false)"},
		{name: "encrypted e-mail",
			ev: share("gmail.com", event.RecipientDataSubject, event.ChannelEmail, "", "essential.service", "user.contact")},
		{name: "children's data to an affiliate",
			ev:   share("northwind-health.co.uk", event.RecipientAffiliate, event.ChannelAPI, "GB", "essential.service", "user.name"),
			mod:  func(e *event.Event) { e.Data.SubjectKinds = []string{"customer", "child"} },
			want: "no-children-data-to-third-parties: transfer of user.name about child subjects for purpose essential.service to Northwind Health UK Ltd (northwind-group-uk)"},
		{name: "children's data to a processor",
			ev:  share("payflux.eu", event.RecipientProcessor, event.ChannelAPI, "NL", "essential.service.payment_processing", "user.name"),
			mod: func(e *event.Event) { e.Data.SubjectKinds = []string{"child"} }},
		{name: "share to Singapore",
			ev:   share("mailwave.io", event.RecipientProcessor, event.ChannelAPI, "SG", "essential.service.notifications", "user.contact.email"),
			want: "eea-and-adequate-countries: transfer of user.contact.email for purpose essential.service.notifications to Mailwave Inc. (mailwave, tagged marketing), but country SG is not one of AT, BE, BG, CY, CZ, DE, DK, EE, ES, FI, FR, GR, HR, HU, IE, IS, IT, LI, LT, LU, LV, MT, NL, NO, PL, PT, RO, SE, SI, SK, GB, CH, US, CA, JP, KR, NZ, IL, UY, AR"},
		{name: "denied share breaks nothing",
			ev:  share("leadmagnet-data.com", event.RecipientPartner, event.ChannelFTP, "US", "marketing.sale", "user.location.precise"),
			mod: func(e *event.Event) { e.Outcome = event.OutcomeDenied }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mod != nil {
				tt.mod(tt.ev)
			}
			var lines []string
			for _, v := range pol.Check(tt.ev, reg) {
				lines = append(lines, v.PromiseID+": "+v.Reason)
				if v.Text == "" {
					t.Fatalf("violation of %s without the promise text", v.PromiseID)
				}
			}
			if got := strings.Join(lines, "\n"); got != tt.want {
				t.Fatalf("violations:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestCheckNilRegistry(t *testing.T) {
	pol, _ := load(t)
	ev := share("helix-labs.de", event.RecipientProcessor, event.ChannelSFTP, "DE", "essential.service", "user.health_and_medical")
	vs := pol.Check(ev, nil)
	if len(vs) != 1 || vs[0].PromiseID != "health-data-only-to-processors" || !strings.HasSuffix(vs[0].Reason, "the recipient is not a registered partner") {
		t.Fatalf("violations = %+v", vs)
	}
	var nilPol *Policy
	if nilPol.Check(ev, nil) != nil {
		t.Fatal("nil policy")
	}
}

func TestCheckDoesNotAllocateWhenKept(t *testing.T) {
	pol, reg := load(t)
	evs := []*event.Event{
		share("sftp.acme-analytics.com", event.RecipientProcessor, event.ChannelSFTP, "DE", "analytics.reporting", "user.behavior"),
		share("helix-labs.de", event.RecipientProcessor, event.ChannelSFTP, "DE", "essential.service", "user.health_and_medical.lab_result"),
		share("adnexa.com", event.RecipientPartner, event.ChannelAPI, "DE", "marketing.advertising.third_party", "user.contact.email"),
		{Type: event.TypeAccess, Action: event.ActionRead, Data: event.Data{Categories: []string{"user.contact"}}},
	}
	for _, ev := range evs {
		if n := testing.AllocsPerRun(100, func() { pol.Check(ev, reg) }); n != 0 {
			t.Fatalf("Check(%s %s) allocates %v times", ev.Type, ev.Recipient.Domain, n)
		}
	}
}

// TestParseBad checks each bad file's first error: testdata/bad/*.yml,
// with the expected error in the golden file next to it (-update rewrites
// them; review the diff).
func TestParseBad(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yml")
	if len(files) == 0 {
		t.Fatal("no testdata/bad/*.yml")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(path, ".yml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("%v (run with -update)", rerr)
			}
			if got != string(want) {
				t.Fatalf("error:\n%s\nwant:\n%s", got, want)
			}
			if !strings.HasPrefix(got, path+":") {
				t.Fatalf("error without file:line: %s", got)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load("testdata/nope.yml"); err == nil || !strings.Contains(err.Error(), "load policy testdata/nope.yml") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/privacy-statement.yml", "testdata/bad/both.yml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	ev := share("adnexa.com", event.RecipientPartner, event.ChannelEmail, "US", "marketing.sale", "user.location.precise", "user.health_and_medical")
	ev.Data.SubjectKinds = []string{"child"}
	reg, err := partner.Load("testdata/partners.yml")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pol, err := Parse("fuzz.yml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yml:") {
				t.Fatalf("error without file name: %v", err)
			}
			return
		}
		for _, v := range pol.Check(ev, reg) {
			if v.PromiseID == "" || v.Text == "" || v.Reason == "" {
				t.Fatalf("incomplete violation %+v", v)
			}
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	pol, reg := load(b)
	evs := []*event.Event{
		share("sftp.acme-analytics.com", event.RecipientProcessor, event.ChannelSFTP, "DE", "analytics.reporting", "user.behavior", "user.unique_id"),
		share("helix-labs.de", event.RecipientProcessor, event.ChannelSFTP, "DE", "essential.service", "user.health_and_medical.lab_result", "user.unique_id"),
		share("adnexa.com", event.RecipientPartner, event.ChannelAPI, "DE", "marketing.advertising.third_party", "user.contact.email", "user.unique_id"),
		{Type: event.TypeAccess, Action: event.ActionRead, Outcome: event.OutcomeSuccess,
			Data: event.Data{Categories: []string{"user.contact", "user.account"}, SubjectKinds: []string{"customer"}}, Channel: event.Channel{Kind: event.ChannelHTTPS}},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if vs := pol.Check(evs[i&3], reg); vs != nil {
			b.Fatal(fmt.Sprint(vs))
		}
	}
}
