package synth

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// PartnerFile is the partner registry: the third parties the company may
// share personal data with, and under which agreements. Its YAML form is
// the one rules/partner loads.
type PartnerFile struct {
	// Partners are the registry entries.
	Partners []Partner `yaml:"partners"`
}

// Partner is one third party.
type Partner struct {
	// ID is the partner id used in events' recipient.id.
	ID string `yaml:"id"`
	// Name is the legal name.
	Name string `yaml:"name"`
	// Kind is partner, processor, affiliate or authority.
	Kind string `yaml:"kind"`
	// Status is approved, under_review, suspended or revoked.
	Status string `yaml:"status"`
	// Tags say what sort of business the partner is (advertiser,
	// data_broker, analytics, ...), for the privacy policy's checks.
	Tags []string `yaml:"tags,omitempty"`
	// Domains are the hosts the partner receives data on; a domain also
	// covers its subdomains.
	Domains []string `yaml:"domains"`
	// RiskNotes records past incidents and concerns.
	RiskNotes string `yaml:"risk_notes"`
	// Agreements are the signed agreements.
	Agreements []Agreement `yaml:"agreements"`
}

// Agreement is one signed agreement with a partner: what may be shared,
// for which uses, over which channels, to which countries, when.
type Agreement struct {
	// Ref is the reference of the signed document.
	Ref string `yaml:"ref"`
	// Categories are the data categories covered (hierarchical).
	Categories []string `yaml:"categories"`
	// Uses are the data uses covered (hierarchical).
	Uses []string `yaml:"uses"`
	// Channels are the channel kinds allowed.
	Channels []string `yaml:"channels"`
	// Countries are the ISO 3166-1 alpha-2 destination countries allowed.
	Countries []string `yaml:"countries"`
	// ValidFrom and ValidTo bound the validity, both days included.
	ValidFrom Date `yaml:"valid_from"`
	ValidTo   Date `yaml:"valid_to"`
}

// Date is a calendar day, written as 2006-01-02.
type Date struct{ time.Time }

// ParseDate parses a day written as 2006-01-02.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("parse date %q: %w", s, err)
	}
	return Date{t}, nil
}

// String returns the day as 2006-01-02.
func (d Date) String() string { return d.Format(time.DateOnly) }

// UnmarshalYAML reads a day written as 2006-01-02.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDate(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the day as 2006-01-02.
func (d Date) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!timestamp", Value: d.String()}, nil
}

// covers reports whether t falls within the agreement's validity.
func (a *Agreement) covers(t time.Time) bool {
	return !t.Before(a.ValidFrom.Time) && t.Before(a.ValidTo.AddDate(0, 0, 1))
}

// WritePartners writes the partner registry the generator's shares are
// consistent with, as YAML.
func (g *Generator) WritePartners(w io.Writer) error { return g.partners.WriteYAML(w) }

// WriteYAML writes the registry in the format rules/partner loads, with
// flow-style lists, one agreement after another.
func (f *PartnerFile) WriteYAML(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# Partner registry of the Custos demo world, written by the synthetic")
	fmt.Fprintln(bw, "# generator (ingest/synth): every share in its normal traffic goes to an")
	fmt.Fprintln(bw, "# approved partner below, within one of its valid agreements.")
	fmt.Fprintln(bw, "partners:")
	for _, p := range f.Partners {
		fmt.Fprintf(bw, "  - id: %s\n", p.ID)
		fmt.Fprintf(bw, "    name: %s\n", yamlString(p.Name))
		fmt.Fprintf(bw, "    kind: %s\n", p.Kind)
		fmt.Fprintf(bw, "    status: %s\n", p.Status)
		if len(p.Tags) > 0 {
			fmt.Fprintf(bw, "    tags: %s\n", flow(p.Tags))
		}
		fmt.Fprintf(bw, "    domains: %s\n", flow(p.Domains))
		fmt.Fprintf(bw, "    risk_notes: %s\n", yamlString(p.RiskNotes))
		fmt.Fprintln(bw, "    agreements:")
		for _, a := range p.Agreements {
			fmt.Fprintf(bw, "      - ref: %s\n", a.Ref)
			fmt.Fprintf(bw, "        categories: %s\n", flow(a.Categories))
			fmt.Fprintf(bw, "        uses: %s\n", flow(a.Uses))
			fmt.Fprintf(bw, "        channels: %s\n", flow(a.Channels))
			fmt.Fprintf(bw, "        countries: %s\n", flow(a.Countries))
			fmt.Fprintf(bw, "        valid_from: %s\n", a.ValidFrom)
			fmt.Fprintf(bw, "        valid_to: %s\n", a.ValidTo)
		}
	}
	return bw.Flush()
}

func flow(xs []string) string { return "[" + strings.Join(xs, ", ") + "]" }

func yamlString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// partnerSpecs is the demo world's registry.
var partnerSpecs = []Partner{
	{ID: "acme-analytics", Name: "Acme Analytics Ltd", Kind: "processor", Status: "approved", Tags: []string{"analytics"},
		Domains: []string{"acme-analytics.com"},
		Agreements: []Agreement{
			agreement("DPA-2021-004", "2021-03-01", "2023-12-31", []string{"user.behavior"}, []string{"analytics.reporting"}, []string{"sftp"}, []string{"IE"}),
			agreement("DPA-2024-017", "2024-01-01", "2027-12-31", []string{"user.unique_id", "user.behavior", "user.device"}, []string{"analytics.reporting"}, []string{"sftp", "api"}, []string{"DE", "IE"}),
		}},
	{ID: "payflux", Name: "PayFlux B.V.", Kind: "processor", Status: "approved", Tags: []string{"payment"},
		Domains: []string{"payflux.eu", "payflux.com"},
		Agreements: []Agreement{
			agreement("DPA-2023-031", "2023-05-01", "2028-04-30", []string{"user.name", "user.financial", "user.contact.address"}, []string{"essential.service.payment_processing"}, []string{"api"}, []string{"NL", "IE", "BE"}),
		}},
	{ID: "mailwave", Name: "Mailwave Inc.", Kind: "processor", Status: "approved", Tags: []string{"marketing"},
		Domains:   []string{"mailwave.io"},
		RiskNotes: "US processor under the EU-US Data Privacy Framework; SCCs signed as fallback.",
		Agreements: []Agreement{
			agreement("DPA-2024-002", "2024-02-01", "2027-01-31", []string{"user.contact.email", "user.contact.phone_number", "user.name"}, []string{"essential.service.notifications", "marketing.communications.email"}, []string{"api"}, []string{"IE", "US"}),
		}},
	{ID: "adnexa", Name: "Adnexa Advertising GmbH", Kind: "partner", Status: "approved", Tags: []string{"advertiser"},
		Domains:   []string{"adnexa.com"},
		RiskNotes: "Joint controller for audience matching; hashed e-mail only, consented customers only. The 2025 JCA also lists precise location (signed by marketing without privacy review); the privacy statement forbids sharing it with advertisers.",
		Agreements: []Agreement{
			agreement("JCA-2025-006", "2025-02-01", "2026-12-31", []string{"user.contact.email", "user.demographic.age_range", "user.behavior.purchase_history", "user.unique_id", "user.location.precise"}, []string{"marketing.advertising.third_party"}, []string{"api"}, []string{"DE", "IE"}),
		}},
	{ID: "shipright-logistics", Name: "ShipRight Logistik GmbH", Kind: "processor", Status: "approved", Tags: []string{"logistics"},
		Domains: []string{"shipright.de"},
		Agreements: []Agreement{
			agreement("DPA-2022-044", "2022-06-01", "2026-05-31", []string{"user.name", "user.contact.address", "user.contact.phone_number"}, []string{"essential.service.operations"}, []string{"sftp", "api"}, []string{"DE", "PL"}),
		}},
	{ID: "helix-labs", Name: "Helix Labordiagnostik GmbH", Kind: "processor", Status: "approved", Tags: []string{"health"},
		Domains:   []string{"helix-labs.de"},
		RiskNotes: "Health data: transfers over SFTP only, encrypted at rest; annual audit.",
		Agreements: []Agreement{
			agreement("DPA-2023-012", "2023-01-01", "2027-12-31", []string{"user.unique_id", "user.health_and_medical", "user.name"}, []string{"essential.service"}, []string{"sftp"}, []string{"DE"}),
		}},
	{ID: "payrollpro", Name: "PayrollPro Services GmbH", Kind: "processor", Status: "approved", Tags: []string{"payroll"},
		Domains: []string{"payrollpro.de"},
		Agreements: []Agreement{
			agreement("DPA-2021-019", "2021-01-01", "2027-12-31", []string{"user.name", "user.financial.bank_account", "user.government_id"}, []string{"employment.payroll"}, []string{"sftp"}, []string{"DE"}),
		}},
	{ID: "kessler-roth-audit", Name: "Kessler & Roth Wirtschaftsprüfung", Kind: "partner", Status: "approved", Tags: []string{"auditor"},
		Domains: []string{"kessler-roth.de"},
		Agreements: []Agreement{
			agreement("ENG-2025-003", "2025-01-01", "2026-06-30", []string{"user.name", "user.financial", "user.behavior.purchase_history"}, []string{"legal.compliance"}, []string{"sftp", "https"}, []string{"DE"}),
		}},
	{ID: "northwind-group-uk", Name: "Northwind Health UK Ltd", Kind: "affiliate", Status: "approved",
		Domains: []string{"northwind-health.co.uk"},
		Agreements: []Agreement{
			agreement("IGA-2023-001", "2023-07-01", "2028-06-30", []string{"user.name", "user.contact.email", "user.account", "user.financial.credit_card"}, []string{"essential.service"}, []string{"api"}, []string{"GB"}),
		}},
	{ID: "lda-berlin", Name: "Berliner Beauftragte für Datenschutz und Informationsfreiheit", Kind: "authority", Status: "approved", Tags: []string{"supervisory"},
		Domains:   []string{"datenschutz-berlin.de"},
		RiskNotes: "Supervisory authority: disclosures on request under Art. 58 GDPR, logged by the privacy office.",
		Agreements: []Agreement{
			agreement("GDPR-ART58", "2018-05-25", "2099-12-31", []string{"user"}, []string{"legal.compliance"}, []string{"https", "email"}, []string{"DE"}),
		}},
	{ID: "surveyly", Name: "Surveyly Inc.", Kind: "processor", Status: "under_review", Tags: []string{"research"},
		Domains:   []string{"surveyly.com"},
		RiskNotes: "Vendor assessment open (VA-2026-011); no transfers before approval.",
		Agreements: []Agreement{
			agreement("DPA-2026-DRAFT-03", "2026-04-01", "2027-03-31", []string{"user.demographic", "user.contact.email"}, []string{"analytics.reporting"}, []string{"api"}, []string{"US"}),
		}},
	{ID: "clickharbor", Name: "ClickHarbor Media Ltd", Kind: "partner", Status: "suspended", Tags: []string{"advertiser"},
		Domains:   []string{"clickharbor.net"},
		RiskNotes: "Suspended 2025-10: audit found an unannounced sub-processor outside the EEA.",
		Agreements: []Agreement{
			agreement("JCA-2024-010", "2024-03-01", "2027-02-28", []string{"user.unique_id", "user.behavior"}, []string{"marketing.advertising.third_party"}, []string{"api"}, []string{"IE"}),
		}},
	{ID: "leadmagnet-data", Name: "LeadMagnet Data Solutions", Kind: "partner", Status: "revoked", Tags: []string{"advertiser", "data_broker"},
		Domains:   []string{"leadmagnet-data.com"},
		RiskNotes: "Resold customer lists to data brokers (incident INC-2024-117); contract terminated 2024-11-30.",
		Agreements: []Agreement{
			agreement("DSA-2023-022", "2023-02-01", "2024-11-30", []string{"user.contact", "user.name"}, []string{"marketing.advertising.third_party"}, []string{"sftp"}, []string{"US"}),
		}},
	{ID: "brightcall", Name: "BrightCall Contact Services, Lda.", Kind: "processor", Status: "approved",
		Domains:   []string{"brightcall.pt"},
		RiskNotes: "Overflow call centre for customer care; the DPA expired on 2025-12-31 and its renewal is with procurement (PRC-2026-007): no transfers until it is signed.",
		Agreements: []Agreement{
			agreement("DPA-2022-008", "2022-04-01", "2025-12-31", []string{"user.name", "user.contact", "user.account"}, []string{"essential.service.operations.support"}, []string{"sftp"}, []string{"PT"}),
		}},
	{ID: "linguaflow", Name: "LinguaFlow Übersetzungen GmbH", Kind: "processor", Status: "approved",
		Domains:   []string{"linguaflow.de"},
		RiskNotes: "Translation of support tickets; DPA signed 2026-02-10, effective 2027-07-01 after the pilot: no personal data before then.",
		Agreements: []Agreement{
			agreement("DPA-2026-044", "2027-07-01", "2030-06-30", []string{"user.name", "user.contact.email", "user.account"}, []string{"essential.service.operations.support"}, []string{"https", "sftp"}, []string{"DE"}),
		}},
	{ID: "parcelhub", Name: "ParcelHub Couriers Ltd", Kind: "processor", Status: "approved", Tags: []string{"logistics"},
		Domains:   []string{"parcelhub.example"},
		RiskNotes: "Approved by procurement; the DPA is still being negotiated: no personal data until it is signed."},
}

// reservedCountries lists, per agreement ref, destination countries the
// agreement allows but normal traffic never uses, so that a first share to
// such a country is a new term (the first_seen_country scenario).
var reservedCountries = map[string][]string{
	"DPA-2023-031": {"BE"}, // PayFlux's Brussels data centre, added by amendment
}

func agreement(ref, from, to string, cats, uses, channels, countries []string) Agreement {
	f, err := ParseDate(from)
	if err != nil {
		panic(err)
	}
	t, err := ParseDate(to)
	if err != nil {
		panic(err)
	}
	return Agreement{Ref: ref, Categories: cats, Uses: uses, Channels: channels, Countries: countries, ValidFrom: f, ValidTo: t}
}
