package event

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCloudEventsStructured(t *testing.T) {
	payload := string(exampleFiles(t)["support-read.json"])
	noID := `{"time":"2026-03-02T09:14:07Z","type":"access","action":"read","actor":{"id":"u1"},"source":{"system":"crm"}}`
	noIDTime := `{"type":"access","action":"read","actor":{"id":"u1"},"source":{"system":"crm"},"x":1}`
	wrap := func(attrs, data string) []byte {
		return []byte(`{"type":"com.acme.custos.access",` + attrs + `"source":"//crm.acme.example","data":` + data + `}`)
	}
	cases := []struct {
		name   string
		in     []byte
		id     string
		time   string
		field  string
		reason Reason
	}{
		{"payload wins", wrap(`"specversion":"1.0","id":"ce-1","time":"2020-01-01T00:00:00Z",`, payload), "01JNQ8W3M2X7K9T4R6YB5C1D0E", "2026-03-02T09:14:07.25Z", "", ""},
		{"envelope id fills event_id", wrap(`"specversion":"1.0","id":"ce-1",`, noID), "ce-1", "2026-03-02T09:14:07Z", "", ""},
		{"envelope id and time fill", wrap(`"id":"ce-2","time":"2026-03-02T10:00:00+02:00","specversion":"1.0","datacontenttype":"application/json; charset=utf-8","ext1":{"a":[1]},`, noIDTime), "ce-2", "2026-03-02T08:00:00Z", "", ""},
		{"no time anywhere", wrap(`"specversion":"1.0","id":"ce-3",`, noIDTime), "", "", "data.time", ReasonMissing},
		{"payload error under data.", wrap(`"specversion":"1.0","id":"ce-4",`, `{"time":"2026-03-02T09:14:07Z","type":"access","action":"export","actor":{"id":"u1"},"source":{"system":"crm"}}`), "", "", "data.data.records", ReasonMissing},
		{"specversion 0.3", wrap(`"specversion":"0.3","id":"ce-5",`, payload), "", "", "specversion", ReasonVersion},
		{"missing id", wrap(`"specversion":"1.0",`, payload), "", "", "id", ReasonMissing},
		{"missing data", []byte(`{"specversion":"1.0","id":"x","type":"t","source":"s"}`), "", "", "data", ReasonMissing},
		{"data not object", wrap(`"specversion":"1.0","id":"ce-6",`, `"hello"`), "", "", "data", ReasonType},
		{"data_base64", []byte(`{"specversion":"1.0","id":"x","type":"t","source":"s","data_base64":"e30="}`), "", "", "data_base64", ReasonValue},
		{"xml content", wrap(`"specversion":"1.0","id":"ce-7","datacontenttype":"application/xml",`, payload), "", "", "datacontenttype", ReasonValue},
		{"bad envelope time", wrap(`"specversion":"1.0","id":"ce-8","time":"yesterday",`, payload), "", "", "time", ReasonValue},
		{"specversion last", []byte(`{"id":"ce-9","type":"t","source":"s","data":` + noID + `,"specversion":"1.0"}`), "ce-9", "2026-03-02T09:14:07Z", "", ""},
	}
	d := NewDecoder(DefaultLimits())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			err := d.Decode(tc.in, nil, &ev)
			if tc.reason != "" {
				e := asError(t, err)
				if e.Field != tc.field || e.Reason != tc.reason {
					t.Fatalf("got %q %q (%v), want %q %q", e.Field, e.Reason, e, tc.field, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.ID != tc.id || ev.Time.Format(time.RFC3339Nano) != tc.time {
				t.Fatalf("id %q time %s, want %q %s", ev.ID, ev.Time.Format(time.RFC3339Nano), tc.id, tc.time)
			}
			checkInvariants(t, &ev)
		})
	}
}

func TestCloudEventsBinary(t *testing.T) {
	noIDTime := []byte(`{"type":"access","action":"read","actor":{"id":"u1"},"source":{"system":"crm"},"specversion":"kept as unknown"}`)
	h := func(kv ...string) []Header {
		var hs []Header
		for i := 0; i < len(kv); i += 2 {
			hs = append(hs, Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return hs
	}
	ok := []string{"ce_specversion", "1.0", "ce_id", "ce-b1", "ce_source", "//crm", "ce_type", "com.acme.access", "ce_time", "2026-03-02T09:00:00Z", "content-type", "application/cloudevents+json"}
	d := NewDecoder(DefaultLimits())
	var ev Event
	if err := d.Decode(noIDTime, h(ok...), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ID != "ce-b1" || !ev.Time.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) || string(ev.Extra) != `{"specversion":"kept as unknown"}` {
		t.Fatalf("%+v", ev)
	}
	// Headers other than ce_* do not make an envelope.
	plain := []byte(`{"type":"access","action":"read","actor":{"id":"u1"},"source":{"system":"crm"}}`)
	if err := d.Decode(plain, h("traceparent", "00-abc"), &ev); asError(t, err).Field != "event_id" {
		t.Fatalf("got %v", err)
	}
	for _, tc := range []struct {
		name   string
		hs     []Header
		field  string
		reason Reason
	}{
		{"version", h("ce_specversion", "2.0", "ce_id", "x", "ce_source", "s", "ce_type", "t"), "ce_specversion", ReasonVersion},
		{"no id", h("ce_specversion", "1.0", "ce_source", "s", "ce_type", "t"), "ce_id", ReasonMissing},
		{"no source", h("ce_specversion", "1.0", "ce_id", "x", "ce_type", "t"), "ce_source", ReasonMissing},
		{"bad time", h("ce_specversion", "1.0", "ce_id", "x", "ce_source", "s", "ce_type", "t", "ce_time", "now"), "ce_time", ReasonValue},
		{"avro", h("ce_specversion", "1.0", "ce_id", "x", "ce_source", "s", "ce_type", "t", "content-type", "avro/binary"), "content-type", ReasonValue},
		{"no time", h("ce_specversion", "1.0", "ce_id", "x", "ce_source", "s", "ce_type", "t"), "time", ReasonMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := asError(t, d.Decode(noIDTime, tc.hs, &ev))
			if e.Field != tc.field || e.Reason != tc.reason {
				t.Fatalf("got %q %q (%v), want %q %q", e.Field, e.Reason, e, tc.field, tc.reason)
			}
		})
	}
}

func asError(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v (%T), want *Error", err, err)
	}
	return e
}

func TestSubjectStatus(t *testing.T) {
	_, sch := schemas(t)
	d := NewDecoder(DefaultLimits())
	cases := []struct {
		name   string
		in     string
		field  string
		reason Reason
	}{
		{"opt out", `{"subject":"cust-1","time":"2026-03-02T09:00:00Z","status":"opted_out","uses":["marketing.advertising.third_party"]}`, "", ""},
		{"closed, unknown field", `{"subject":"cust-1","time":"2026-03-02T09:00:00+01:00","status":"closed","source":"crm"}`, "", ""},
		{"opt in, empty uses", `{"subject":"cust-1","time":"2026-03-02T09:00:00Z","status":"opted_in","uses":[]}`, "", ""},
		{"missing subject", `{"time":"2026-03-02T09:00:00Z","status":"closed"}`, "subject", ReasonMissing},
		{"empty subject", `{"subject":"","time":"2026-03-02T09:00:00Z","status":"closed"}`, "subject", ReasonValue},
		{"missing time", `{"subject":"c","status":"closed"}`, "time", ReasonMissing},
		{"missing status", `{"subject":"c","time":"2026-03-02T09:00:00Z"}`, "status", ReasonMissing},
		{"bad status", `{"subject":"c","time":"2026-03-02T09:00:00Z","status":"deleted"}`, "status", ReasonValue},
		{"bad use", `{"subject":"c","time":"2026-03-02T09:00:00Z","status":"opted_out","uses":["Marketing"]}`, "uses[0]", ReasonValue},
		{"uses not array", `{"subject":"c","time":"2026-03-02T09:00:00Z","status":"opted_out","uses":"marketing"}`, "uses", ReasonType},
		{"too many uses", `{"subject":"c","time":"2026-03-02T09:00:00Z","status":"opted_out","uses":[` + strings.TrimSuffix(strings.Repeat(`"m",`, 65), ",") + `]}`, "uses", ReasonLimit},
		{"subject number", `{"subject":7,"time":"2026-03-02T09:00:00Z","status":"closed"}`, "subject", ReasonType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s SubjectStatus
			err := d.DecodeSubjectStatus([]byte(tc.in), nil, &s)
			if schemaOK := schemaAccepts(sch, []byte(tc.in)) == nil; schemaOK != (err == nil) {
				t.Fatalf("schema accepts: %v, decoder: %v", schemaOK, err)
			}
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s.Subject != "cust-1" || s.Time.Location() != time.UTC || s.Time.Hour() != 8 && s.Time.Hour() != 9 {
					t.Fatalf("%+v", s)
				}
				return
			}
			e := asError(t, err)
			if e.Field != tc.field || e.Reason != tc.reason {
				t.Fatalf("got %q %q (%v), want %q %q", e.Field, e.Reason, e, tc.field, tc.reason)
			}
		})
	}
	// CloudEvents, both modes.
	var s SubjectStatus
	in := `{"specversion":"1.0","id":"x","source":"crm","type":"t","time":"2026-03-02T09:00:00Z","data":{"subject":"cust-1","status":"opted_out"}}`
	if err := d.DecodeSubjectStatus([]byte(in), nil, &s); err != nil || s.Status != StatusOptedOut || s.Time.IsZero() {
		t.Fatalf("%v %+v", err, s)
	}
	hs := []Header{{"ce_specversion", []byte("1.0")}, {"ce_id", []byte("x")}, {"ce_source", []byte("s")}, {"ce_type", []byte("t")}, {"ce_time", []byte("2026-03-02T09:00:00Z")}}
	if err := d.DecodeSubjectStatus([]byte(`{"subject":"cust-1","status":"closed"}`), hs, &s); err != nil || s.Status != StatusClosed || s.Time.IsZero() {
		t.Fatalf("%v %+v", err, s)
	}
}
