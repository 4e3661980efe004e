package partner

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

func loadGood(t testing.TB) *Registry {
	t.Helper()
	reg, err := Load("testdata/registry.good.yml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return reg
}

func TestLoadGood(t *testing.T) {
	reg := loadGood(t)
	if reg.Len() != 4 {
		t.Fatalf("Len = %d, want 4", reg.Len())
	}
	p, ok := reg.ByID("acme-analytics")
	if !ok {
		t.Fatal("ByID(acme-analytics) not found")
	}
	if p.Kind != KindProcessor || p.Status != StatusApproved || p.Name != "Acme Analytics Ltd" {
		t.Fatalf("partner = %+v", p)
	}
	a := p.Agreements[0]
	want := Agreement{
		Ref: "DPA-2024-017", Categories: []string{"user.contact", "user.behavior"},
		Uses: []string{"analytics.reporting"}, Channels: []event.ChannelKind{"sftp", "api"},
		Countries: []string{"DE", "IE"},
		ValidFrom: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		ValidTo:   time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC),
	}
	if a.Ref != want.Ref || strings.Join(a.Categories, ",") != strings.Join(want.Categories, ",") ||
		!a.ValidFrom.Equal(want.ValidFrom) || !a.ValidTo.Equal(want.ValidTo) || len(a.Channels) != 2 || len(a.Countries) != 2 {
		t.Fatalf("agreement = %+v, want %+v", a, want)
	}
	m, _ := reg.ByID("mailer")
	if !m.Agreements[0].ValidTo.IsZero() {
		t.Fatalf("mailer agreement should be open-ended: %+v", m.Agreements[0])
	}
	if _, ok := reg.ByID("nobody"); ok {
		t.Fatal("ByID(nobody) found")
	}
}

func TestByDomain(t *testing.T) {
	reg := loadGood(t)
	tests := []struct {
		host string
		want string // partner id, "" for no match
	}{
		{"acme-analytics.com", "acme-analytics"},
		{"sftp.acme-analytics.com", "acme-analytics"},
		{"a.b.c.acme-analytics.com", "acme-analytics"},
		{"SFTP.Acme-Analytics.COM", "acme-analytics"},
		{"acme-analytics.com.", "acme-analytics"},
		{"secure.acme-analytics.com", "sub-acme"}, // the most specific entry wins
		{"x.secure.acme-analytics.com", "sub-acme"},
		{"eu.mailer-cdn.net", "mailer"},
		{"mailer-cdn.net", ""}, // a parent of a listed domain is not covered
		{"notacme-analytics.com", ""},
		{"acme-analytics.com.evil.io", ""},
		{"com", ""},
		{"", ""},
		{".", ""},
		{"listbroker.example", "listbroker"},
		{strings.Repeat("a.", 150) + "mailer.de", "mailer"}, // longer than 253 bytes
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			p, ok := reg.ByDomain(tt.host)
			got := ""
			if ok {
				got = p.ID
			}
			if got != tt.want {
				t.Fatalf("ByDomain(%q) = %q, want %q", tt.host, got, tt.want)
			}
		})
	}
	var nilReg *Registry
	if _, ok := nilReg.ByDomain("acme-analytics.com"); ok {
		t.Fatal("nil registry matched")
	}
}

func TestByDomainDoesNotAllocate(t *testing.T) {
	reg := loadGood(t)
	for _, host := range []string{"sftp.acme-analytics.com", "SFTP.ACME-analytics.com.", "files.unknown.example.org"} {
		if n := testing.AllocsPerRun(100, func() { reg.ByDomain(host) }); n != 0 {
			t.Fatalf("ByDomain(%q) allocates %v times", host, n)
		}
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		file  string
		line  int
		cause string
	}{
		{"registry.bad.unknown_key.yml", 6, `unknown key "domain"`},
		{"registry.bad.kind.yml", 4, `invalid kind "vendor"`},
		{"registry.bad.status.yml", 5, `invalid status "ok"`},
		{"registry.bad.dup_id.yml", 6, `duplicate partner id "acme" (first at line 2)`},
		{"registry.bad.dup_domain.yml", 11, `domain "acme.com" of partner "other" is already listed by partner "acme" (line 6)`},
		{"registry.bad.date.yml", 10, `valid_from must be a date YYYY-MM-DD, not "2024-13-01"`},
		{"registry.bad.valid_to.yml", 11, `valid_to 2024-05-31 is before valid_from 2024-06-01 (line 10)`},
		{"registry.bad.channel.yml", 10, `invalid channel "carrier-pigeon"`},
		{"registry.bad.country.yml", 10, `invalid country "Germany"`},
		{"registry.bad.domain.yml", 6, `invalid domain "localhost"`},
		{"registry.bad.missing.yml", 2, `missing required key "name"`},
		{"registry.bad.category.yml", 8, `invalid data category "User.Contact"`},
		{"registry.bad.no_uses.yml", 9, `must list at least one data use`},
		{"registry.bad.syntax.yml", 4, `invalid YAML: mapping values are not allowed`},
		{"registry.bad.dup_ref.yml", 11, `duplicate agreement ref "A-1" (first at line 7)`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			prefix := fmt.Sprintf("%s:%d:", path, tt.line)
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.cause) {
				t.Fatalf("error = %q\nwant prefix %q and cause %q", err, prefix, tt.cause)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/nope.yml")
	if err == nil || !strings.Contains(err.Error(), "load partner registry testdata/nope.yml") {
		t.Fatalf("err = %v", err)
	}
}

func TestEmptyFile(t *testing.T) {
	_, err := Parse("empty.yml", []byte("# nothing\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "empty.yml:1: file is empty") {
		t.Fatalf("err = %v", err)
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		granted, value string
		want           bool
	}{
		{"user.contact", "user.contact", true},
		{"user.contact", "user.contact.email", true},
		{"user", "user.contact.email", true},
		{"user.contact", "user.contactless", false},
		{"user.contact.email", "user.contact", false},
		{"user.contact", "user", false},
		{"user.contact", "system.contact", false},
	}
	for _, tt := range tests {
		if got := Covers(tt.granted, tt.value); got != tt.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tt.granted, tt.value, got, tt.want)
		}
	}
}

func TestAgreementCheck(t *testing.T) {
	reg := loadGood(t)
	acme, _ := reg.ByID("acme-analytics")
	a := &acme.Agreements[0]
	at := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	ok := Transfer{Categories: []string{"user.contact.email", "user.behavior.browsing_history"},
		Use: "analytics.reporting.dashboards", Channel: event.ChannelSFTP, Country: "de", Time: at}
	tests := []struct {
		name string
		mod  func(*Transfer)
		want Gap
	}{
		{"covered", func(*Transfer) {}, 0},
		{"category", func(tr *Transfer) { tr.Categories = append(tr.Categories, "user.financial") }, GapCategory},
		{"use", func(tr *Transfer) { tr.Use = "marketing.advertising" }, GapUse},
		{"no use", func(tr *Transfer) { tr.Use = "" }, GapUse},
		{"channel", func(tr *Transfer) { tr.Channel = event.ChannelEmail }, GapChannel},
		{"country", func(tr *Transfer) { tr.Country = "US" }, GapCountry},
		{"not yet valid", func(tr *Transfer) { tr.Time = time.Date(2023, 12, 31, 23, 59, 59, 0, time.UTC) }, GapNotYetValid},
		{"first day", func(tr *Transfer) { tr.Time = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }, 0},
		{"last day", func(tr *Transfer) { tr.Time = time.Date(2027, 12, 31, 23, 59, 59, 0, time.UTC) }, 0},
		{"expired", func(tr *Transfer) { tr.Time = time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC) }, GapExpired},
		{"several", func(tr *Transfer) { tr.Country = "US"; tr.Channel = event.ChannelFTP }, GapChannel | GapCountry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := ok
			tr.Categories = append([]string(nil), ok.Categories...)
			tt.mod(&tr)
			if got := a.Check(tr); got != tt.want {
				t.Fatalf("Check = %q, want %q", got, tt.want)
			}
			if got := a.ValidAt(tr.Time); got != (tt.want&(GapExpired|GapNotYetValid) == 0) {
				t.Fatalf("ValidAt = %v", got)
			}
		})
	}
	if _, g := acme.Check(ok); g != 0 {
		t.Fatalf("Partner.Check = %v", g)
	}
	lb, _ := reg.ByID("listbroker")
	if a, g := lb.Check(ok); a != nil || g != GapNoAgreement {
		t.Fatalf("no agreements: %v %v", a, g)
	}
	if got := (GapCategory | GapExpired).String(); got != "category,expired" {
		t.Fatalf("Gap.String = %q", got)
	}
	mailer, _ := reg.ByID("mailer")
	open := &mailer.Agreements[0]
	if !open.CoversChannel(event.ChannelFTP) || !open.CoversCountry("US") || !open.ValidAt(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatal("an agreement without channels, countries or valid_to restricts none")
	}
	if got := a.UncoveredCategories([]string{"user.contact.phone", "user.health", "user.financial.iban"}); strings.Join(got, ",") != "user.health,user.financial.iban" {
		t.Fatalf("UncoveredCategories = %v", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"registry.good.yml", "registry.bad.dup_domain.yml", "registry.bad.valid_to.yml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		reg, err := Parse("fuzz.yml", data)
		if err == nil {
			for _, p := range reg.Partners() {
				for _, d := range p.Domains {
					if got, ok := reg.ByDomain(d); !ok || got != p {
						t.Fatalf("domain %q does not find its partner", d)
					}
				}
			}
		} else if !strings.HasPrefix(err.Error(), "fuzz.yml:") {
			t.Fatalf("error without file name: %v", err)
		}
	})
}

func BenchmarkByDomain(b *testing.B) {
	reg := loadGood(b)
	hosts := []string{"sftp.acme-analytics.com", "files.unknown-corp.io", "eu.mailer-cdn.net", "Upload.Mailer.DE"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		reg.ByDomain(hosts[i&3])
	}
}
