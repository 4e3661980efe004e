package event

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestInvalidEvents(t *testing.T) {
	base := parseDoc(t, exampleFiles(t)["support-read.json"])
	share := parseDoc(t, exampleFiles(t)["partner-sftp.json"])
	mut := func(m doc, p string, v any) []byte {
		var pp path
		for _, s := range strings.Split(p, ".") {
			pp = append(pp, s)
		}
		return marshal(t, set(m, pp, v, false))
	}
	del := func(m doc, p string) []byte {
		var pp path
		for _, s := range strings.Split(p, ".") {
			pp = append(pp, s)
		}
		return marshal(t, set(m, pp, nil, true))
	}
	cases := []struct {
		name   string
		in     []byte
		field  string
		reason Reason
		msg    string // substring of Error(), optional
	}{
		{"not JSON", []byte(`{"event_id":`), "", ReasonSyntax, "unexpected end"},
		{"array", []byte(`[1]`), "", ReasonSyntax, "must be a JSON object"},
		{"trailing data", append(marshal(t, base), " {}"...), "", ReasonSyntax, "data after"},
		{"empty", nil, "", ReasonSyntax, ""},
		{"bad UTF-8", []byte("{\"event_id\":\"\xff\"}"), "", ReasonSyntax, "UTF-8"},
		{"control char", []byte("{\"event_id\":\"a\tb\"}"), "", ReasonSyntax, "control"},
		{"duplicate key", []byte(`{"event_id":"a","event_id":"b"}`), "", ReasonSyntax, `duplicate key "event_id"`},
		{"duplicate escaped key", []byte(`{"type":"access","typ\u0065":"share"}`), "", ReasonSyntax, "duplicate"},
		{"duplicate unknown key", []byte(`{"x":1,"x":2}`), "", ReasonSyntax, "duplicate"},
		{"duplicate attribute", []byte(`{"attributes":{"a":"1","a":"2"}}`), "attributes", ReasonSyntax, "duplicate"},
		{"duplicate nested key", []byte(`{"actor":{"id":"a","id":"b"}}`), "actor", ReasonSyntax, "duplicate"},
		{"too large", []byte(`{"x":"` + strings.Repeat("a", 70000) + `"}`), "", ReasonTooLarge, "larger than the limit of 65536"},
		{"too deep", []byte(`{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`), "", ReasonLimit, "nesting deeper than 32"},
		{"missing event_id", del(base, "event_id"), "event_id", ReasonMissing, "event_id: required"},
		{"empty event_id", mut(base, "event_id", ""), "event_id", ReasonValue, "must not be empty"},
		{"missing time", del(base, "time"), "time", ReasonMissing, ""},
		{"missing type", del(base, "type"), "type", ReasonMissing, ""},
		{"missing action", del(base, "action"), "action", ReasonMissing, ""},
		{"missing actor", del(base, "actor"), "actor", ReasonMissing, ""},
		{"missing actor.id", del(base, "actor.id"), "actor.id", ReasonMissing, ""},
		{"missing source.system", del(base, "source.system"), "source.system", ReasonMissing, ""},
		{"bad type", mut(base, "type", "copy"), "type", ReasonValue, `"copy" is not one of access, share`},
		{"type null", mut(base, "type", nil), "type", ReasonType, "must be a string, got null"},
		{"bad action", mut(base, "action", "print"), "action", ReasonValue, ""},
		{"transfer on access", mut(base, "action", "transfer"), "action", ReasonValue, `"transfer" is not allowed for type "access"`},
		{"read on share", mut(share, "action", "read"), "action", ReasonValue, `not allowed for type "share" (want transfer)`},
		{"records missing on export", del(mut2(t, base, "action", "export"), "data.records"), "data.records", ReasonMissing, `data.records: required for action "export"`},
		{"records missing on transfer", del(share, "data.records"), "data.records", ReasonMissing, `required for action "transfer"`},
		{"records negative", mut(base, "data.records", json.Number("-3")), "data.records", ReasonValue, "must be >= 0"},
		{"records fractional", mut(base, "data.records", json.Number("2.5")), "data.records", ReasonType, "must be an integer"},
		{"records string", mut(base, "data.records", "5"), "data.records", ReasonType, "must be an integer, got string"},
		{"records overflow", mut(base, "data.records", json.Number("9223372036854775808")), "data.records", ReasonValue, "at most"},
		{"recipient missing on share", del(share, "recipient"), "recipient", ReasonMissing, `recipient: required for type "share"`},
		{"recipient without id, name, domain", mut(share, "recipient", doc{"country": "DE"}), "recipient", ReasonMissing, "at least one of"},
		{"actor kind", mut(base, "actor.kind", "robot"), "actor.kind", ReasonValue, `"robot" is not one of user, service`},
		{"recipient kind", mut(share, "recipient.kind", "friend"), "recipient.kind", ReasonValue, ""},
		{"channel kind", mut(share, "channel.kind", "pigeon"), "channel.kind", ReasonValue, ""},
		{"channel encrypted", mut(share, "channel.encrypted", "yes"), "channel.encrypted", ReasonType, "must be true or false"},
		{"outcome", mut(base, "outcome", "ok"), "outcome", ReasonValue, ""},
		{"time no zone", mut(base, "time", "2026-03-02T09:14:07"), "time", ReasonValue, "RFC 3339"},
		{"time bad day", mut(base, "time", "2026-02-30T09:14:07Z"), "time", ReasonValue, ""},
		{"time number", mut(base, "time", json.Number("1772442847")), "time", ReasonType, ""},
		{"country lower", mut(share, "recipient.country", "de"), "recipient.country", ReasonValue, "ISO 3166-1 alpha-2"},
		{"country alpha-3", mut(share, "recipient.country", "DEU"), "recipient.country", ReasonValue, ""},
		{"category pattern", mut(base, "data.categories", []any{"user.contact", "User.Contact"}), "data.categories[1]", ReasonValue, "dotted"},
		{"category not string", mut(base, "data.categories", []any{json.Number("1")}), "data.categories[0]", ReasonType, ""},
		{"categories not array", mut(base, "data.categories", "user.contact"), "data.categories", ReasonType, "must be an array of strings"},
		{"purpose pattern", mut(base, "purpose", "Marketing"), "purpose", ReasonValue, ""},
		{"subject kind pattern", mut(base, "data.subject_kinds", []any{"customer.vip"}), "data.subject_kinds[0]", ReasonValue, ""},
		{"empty subject", mut(base, "data.subjects", []any{"s1", ""}), "data.subjects[1]", ReasonValue, "must not be empty"},
		{"too many subjects", mut(base, "data.subjects", listOf(1001, func(i int) string { return "s" })), "data.subjects", ReasonLimit, "send a sample and set data.subjects_truncated"},
		{"too many categories", mut(base, "data.categories", listOf(65, func(i int) string { return "user" })), "data.categories", ReasonLimit, "more than 64"},
		{"too many subject kinds", mut(base, "data.subject_kinds", listOf(17, func(i int) string { return "customer" })), "data.subject_kinds", ReasonLimit, ""},
		{"string too long", mut(base, "actor.role", strings.Repeat("é", 1025)), "actor.role", ReasonLimit, "longer than 1024 characters"},
		{"attribute not string", mut(base, "attributes", doc{"n": json.Number("1")}), "attributes", ReasonType, `value of "n" must be a string`},
		{"attribute empty key", mut(base, "attributes", doc{"": "v"}), "attributes", ReasonValue, ""},
		{"schema v2", mut(base, "schema", "custos.event/v2"), "schema", ReasonVersion, `unsupported schema "custos.event/v2"`},
		{"actor not object", mut(base, "actor", "u-1"), "actor", ReasonType, "must be an object, got string"},
		{"request.client not object", mut(base, "request.client", []any{}), "request.client", ReasonType, ""},
		{"bytes negative", mut(base, "data.bytes", json.Number("-1")), "data.bytes", ReasonValue, ""},
	}
	d := NewDecoder(DefaultLimits())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			err := d.Decode(tc.in, nil, &ev)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if e.Field != tc.field || e.Reason != tc.reason || !strings.Contains(e.Error(), tc.msg) {
				t.Fatalf("got field %q reason %q: %v\nwant field %q reason %q containing %q", e.Field, e.Reason, e, tc.field, tc.reason, tc.msg)
			}
			if strings.Contains(e.Message, "cust-") {
				t.Fatalf("message leaks a subject id: %v", e)
			}
		})
	}
}

func mut2(t testing.TB, m doc, p string, v any) doc {
	var pp path
	for _, s := range strings.Split(p, ".") {
		pp = append(pp, s)
	}
	return set(m, pp, v, false)
}

func TestDecodeFields(t *testing.T) {
	d := NewDecoder(DefaultLimits())
	var ev Event
	if err := d.Decode(exampleFiles(t)["partner-sftp.json"], nil, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Recipient != (Recipient{ID: "p-dhl", Name: "DHL Parcel Germany", Domain: "sftp.dhl-partner.example", Country: "DE", Kind: RecipientProcessor}) ||
		ev.Channel != (Channel{Kind: ChannelSFTP, Encrypted: true, EncryptedSet: true}) ||
		ev.Data.Records != 1873 || !ev.Data.HasRecords || ev.Data.Bytes != 412060 || !ev.Data.SubjectsTruncated ||
		strings.Join(ev.Data.Subjects, ",") != "cust-40012,cust-40877,cust-41230" || ev.Actor.Kind != ActorService ||
		ev.Outcome != OutcomeSuccess || ev.Schema != SchemaV1 || ev.Extra != nil || ev.Time.String() != "2026-03-02 06:30:00 +0000 UTC" {
		t.Fatalf("%+v", ev)
	}
	// Defaults and the time zone.
	if err := d.Decode(exampleFiles(t)["analyst-export.json"], nil, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Actor.Kind != ActorUser || ev.Time.String() != "2026-03-02 14:42:10 +0000 UTC" || ev.Channel.EncryptedSet ||
		len(ev.Attributes) != 2 || ev.Attributes[0] != (Attribute{"format", "csv"}) {
		t.Fatalf("%+v", ev)
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	d := NewDecoder(DefaultLimits())
	in := compact(t, exampleFiles(t)["analyst-export.json"])
	var first Event
	if err := d.Decode(in, nil, &first); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(first)
	for i := range in { // scribble over the message, then decode others
		in[i] = ' '
	}
	var ev Event
	for _, b := range exampleFiles(t) {
		_ = d.Decode(b, nil, &ev)
	}
	if got, _ := json.Marshal(first); string(got) != string(want) {
		t.Fatalf("decoded event changed:\n%s\n%s", got, want)
	}
}

func TestDecodeResetsEvent(t *testing.T) {
	d := NewDecoder(DefaultLimits())
	var ev Event
	if err := d.Decode(exampleFiles(t)["partner-sftp.json"], nil, &ev); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode(exampleFiles(t)["support-read.json"], nil, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Recipient != (Recipient{}) || ev.Channel != (Channel{}) || ev.Data.SubjectsTruncated {
		t.Fatalf("left over from the previous event: %+v", ev)
	}
}

func TestLimits(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Limits{}).Validate(); err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]Limits{"negative": {MaxSubjects: -1}, "shallow": {MaxDepth: 2}, "tiny message": {MaxMessageBytes: 10}} {
		if err := l.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, l)
		}
	}
	d := NewDecoder(Limits{MaxSubjects: 2})
	if got := d.Limits(); got.MaxSubjects != 2 || got.MaxCategories != DefaultLimits().MaxCategories {
		t.Fatalf("limits %+v", got)
	}
	var ev Event
	err := d.Decode(exampleFiles(t)["analyst-export.json"], nil, &ev)
	if ReasonOf(err) != ReasonLimit {
		t.Fatalf("got %v", err)
	}
}

// TestSchemaStatesDefaultLimits keeps the schema's numbers in step with
// DefaultLimits.
func TestSchemaStatesDefaultLimits(t *testing.T) {
	var s struct {
		Properties struct {
			Data struct {
				Properties map[string]struct {
					MaxItems int `json:"maxItems"`
				} `json:"properties"`
			} `json:"data"`
			Attributes struct {
				MaxProperties int `json:"maxProperties"`
			} `json:"attributes"`
			EventID struct {
				MaxLength int `json:"maxLength"`
			} `json:"event_id"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(SchemaJSON(), &s); err != nil {
		t.Fatal(err)
	}
	l := DefaultLimits()
	p := s.Properties
	if p.Data.Properties["subjects"].MaxItems != l.MaxSubjects || p.Data.Properties["categories"].MaxItems != l.MaxCategories ||
		p.Data.Properties["subject_kinds"].MaxItems != l.MaxSubjectKinds || p.Attributes.MaxProperties != l.MaxAttributes ||
		p.EventID.MaxLength != l.MaxStringLen {
		t.Fatalf("schema limits %+v differ from %+v", p, l)
	}
}

func TestSchemaCopiesIdentical(t *testing.T) {
	for _, f := range []struct {
		doc      string
		embedded []byte
	}{{"../../docs/schema/event.v1.json", SchemaJSON()}, {"../../docs/schema/subject-status.v1.json", SubjectStatusSchemaJSON()}} {
		b, err := os.ReadFile(f.doc)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(f.embedded) {
			t.Errorf("%s differs from the embedded copy in ingest/event/schema: copy it over", f.doc)
		}
	}
}

func TestContractDocEmbedsExamples(t *testing.T) {
	page, err := os.ReadFile("../../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range exampleFiles(t) {
		if !strings.Contains(string(page), "```json\n"+string(b)+"```\n") {
			t.Errorf("docs/contract.md does not include testdata/examples/%s verbatim in a json block", name)
		}
	}
}
