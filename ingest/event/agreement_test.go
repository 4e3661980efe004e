package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// The agreement test holds the JSON Schema and the Decoder to the same
// contract: over a corpus of the examples and systematic mutations of them,
// the schema accepts a document exactly when the decoder does. Documents the
// schema cannot judge (message size, depth, repeated keys, bad UTF-8) are
// not in the corpus; the invalid-document table covers them.

type doc = map[string]any

func parseDoc(t testing.TB, b []byte) doc {
	t.Helper()
	var m doc
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func cloneAny(v any) any {
	switch v := v.(type) {
	case doc:
		m := make(doc, len(v))
		for k, x := range v {
			m[k] = cloneAny(x)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, x := range v {
			a[i] = cloneAny(x)
		}
		return a
	}
	return v
}

// path is a location in a document: object keys and array indexes (int).
type path []any

func (p path) String() string {
	var b strings.Builder
	for i, s := range p {
		switch s := s.(type) {
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s)
		case int:
			fmt.Fprintf(&b, "[%d]", s)
		}
	}
	return b.String()
}

// paths lists every location in v, parents before children.
func paths(v any, prefix path, out *[]path) {
	switch v := v.(type) {
	case doc:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := append(append(path{}, prefix...), k)
			*out = append(*out, p)
			paths(v[k], p, out)
		}
	case []any:
		for i, x := range v {
			p := append(append(path{}, prefix...), i)
			*out = append(*out, p)
			paths(x, p, out)
		}
	}
}

func get(v any, p path) any {
	for _, s := range p {
		switch s := s.(type) {
		case string:
			v = v.(doc)[s]
		case int:
			v = v.([]any)[s]
		}
	}
	return v
}

// set returns a copy of root with the value at p replaced (or, with
// del, removed). Missing parent objects are created.
func set(root doc, p path, val any, del bool) doc {
	out := cloneAny(root).(doc)
	var cur any = out
	for i, s := range p {
		last := i == len(p)-1
		switch s := s.(type) {
		case string:
			m := cur.(doc)
			if last {
				if del {
					delete(m, s)
				} else {
					m[s] = val
				}
				return out
			}
			if _, ok := m[s]; !ok {
				m[s] = doc{}
			}
			cur = m[s]
		case int:
			a := cur.([]any)
			if last {
				if del {
					// Arrays: drop the element by rebuilding the parent.
					na := append(append([]any{}, a[:s]...), a[s+1:]...)
					return set(out, p[:len(p)-1], na, false)
				}
				a[s] = val
				return out
			}
			cur = a[s]
		}
	}
	return out
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type corpusDoc struct {
	name string
	b    []byte
}

func strOf(n int, s string) string { return strings.Repeat(s, n) }

func listOf(n int, f func(i int) string) []any {
	a := make([]any, n)
	for i := range a {
		a[i] = f(i)
	}
	return a
}

// corpus builds the agreement corpus.
func corpus(t testing.TB) []corpusDoc {
	var out []corpusDoc
	add := func(name string, v any) { out = append(out, corpusDoc{name, marshal(t, v)}) }
	lim := DefaultLimits()
	wrong := map[string]any{
		"null": nil, "int": json.Number("7"), "neg": json.Number("-1"), "float": json.Number("1.5"),
		"string": "x", "empty": "", "true": true, "array": []any{}, "object": doc{},
		"array_of_int": []any{json.Number("1")},
	}
	for name, b := range exampleFiles(t) {
		base := parseDoc(t, b)
		add(name, base)
		var ps []path
		paths(base, nil, &ps)
		for _, p := range ps {
			add(name+" without "+p.String(), set(base, p, nil, true))
			for wn, w := range wrong {
				add(name+" "+p.String()+"="+wn, set(base, p, w, false))
			}
			if s, ok := get(base, p).(string); ok {
				add(name+" "+p.String()+" upper", set(base, p, strings.ToUpper(s), false))
				add(name+" "+p.String()+" long", set(base, p, strOf(lim.MaxStringLen+1, "a"), false))
				add(name+" "+p.String()+" at limit", set(base, p, strOf(lim.MaxStringLen, "a"), false))
				add(name+" "+p.String()+" multibyte at limit", set(base, p, strOf(lim.MaxStringLen, "é"), false))
				add(name+" "+p.String()+" multibyte over", set(base, p, strOf(lim.MaxStringLen+1, "é"), false))
				add(name+" "+p.String()+" escaped", set(base, p, s+"\u00e9<&>\"\\\n\u2028", false))
				add(name+" "+p.String()+" dotted", set(base, p, "a.b_c.d9", false))
				add(name+" "+p.String()+" bad dots", set(base, p, "a..b", false))
			}
			// Unknown fields at every object.
			if _, ok := get(base, p).(doc); ok {
				add(name+" "+p.String()+" unknown", set(base, append(append(path{}, p...), "zz_unknown"), doc{"n": []any{json.Number("1"), nil, "x", doc{}}}, false))
			}
		}
		add(name+" unknown top", set(base, path{"x_tenant"}, "t1", false))
		add(name+" unknown null", set(base, path{"x_null"}, nil, false))
		add(name+" unknown deep", set(base, path{"x_deep"}, doc{"a": doc{"b": doc{"c": []any{[]any{doc{"d": true}}}}}}, false))
		for _, typ := range []string{"access", "share", "other"} {
			for _, act := range []string{"read", "query", "export", "download", "update", "delete", "transfer", "copy"} {
				m := set(base, path{"type"}, typ, false)
				add(name+" "+typ+"/"+act, set(m, path{"action"}, act, false))
				m = set(m, path{"action"}, act, false)
				add(name+" "+typ+"/"+act+" no data", set(m, path{"data"}, nil, true))
				add(name+" "+typ+"/"+act+" no records", set(m, path{"data", "records"}, nil, true))
				add(name+" "+typ+"/"+act+" no recipient", set(m, path{"recipient"}, nil, true))
				add(name+" "+typ+"/"+act+" with recipient", set(m, path{"recipient"}, doc{"id": "p1"}, false))
			}
		}
		for _, k := range []string{"actor.kind", "recipient.kind", "channel.kind", "outcome", "type", "action"} {
			p := path{}
			for _, s := range strings.Split(k, ".") {
				p = append(p, s)
			}
			for _, v := range []string{"user", "service", "partner", "processor", "data_subject", "authority", "affiliate", "internal", "unknown", "api", "https", "sftp", "email", "s3", "http", "ftp", "other", "success", "failure", "denied", "Success", " user", "robot"} {
				add(name+" "+k+"="+v, set(base, p, v, false))
			}
		}
		for _, v := range []string{"2026-03-02T09:14:07Z", "2026-03-02T09:14:07z", "2026-03-02t09:14:07Z", "2026-03-02T09:14:07", "2026-03-02 09:14:07Z",
			"2026-03-02T09:14:07.123456789123Z", "2026-03-02T09:14:07.Z", "2026-03-02T23:59:60Z", "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z",
			"2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-03-02T24:00:00Z", "2026-03-02T09:60:00Z",
			"2026-03-02T09:14:07+24:00", "2026-03-02T09:14:07-23:59", "2026-03-02T09:14:07+0100", "0000-01-01T00:00:00Z", "1900-02-29T00:00:00Z",
			"2000-02-29T00:00:00Z", "2026-3-2T09:14:07Z", "2026-03-02T09:14:07+01:60", "2026-03-02T09:14:07.5+05:30"} {
			add(name+" time="+v, set(base, path{"time"}, v, false))
		}
		for _, v := range []string{"DE", "de", "DEU", "D1", "", "ÄB"} {
			add(name+" country="+v, set(base, path{"recipient", "country"}, v, false))
		}
		for _, v := range []string{"user.contact.email", "user", "user_x.a1", "User.contact", "user..contact", ".user", "user.", "user-contact", "user contact", "ü"} {
			add(name+" category="+v, set(base, path{"data", "categories"}, []any{v}, false))
			add(name+" purpose="+v, set(base, path{"purpose"}, v, false))
			add(name+" subject_kind="+v, set(base, path{"data", "subject_kinds"}, []any{v}, false))
		}
		for _, v := range []string{"0", "-0", "1", "5.0", "5.5", "1e3", "1E+3", "1.5e1", "25e-1", "-1", "-0.0", "0.0e10",
			"9223372036854775807", "9223372036854775808", "1e19", "92233720368547758070e-1", "1e-400", "123456789012345678901234567890",
			"100000000000000000000e-2", "0.000"} {
			add(name+" records="+v, set(base, path{"data", "records"}, json.Number(v), false))
			add(name+" bytes="+v, set(base, path{"data", "bytes"}, json.Number(v), false))
		}
		for _, n := range []int{0, 1, lim.MaxCategories, lim.MaxCategories + 1} {
			add(fmt.Sprintf("%s %d categories", name, n), set(base, path{"data", "categories"}, listOf(n, func(i int) string { return fmt.Sprintf("user.c%d", i) }), false))
		}
		for _, n := range []int{0, lim.MaxSubjects, lim.MaxSubjects + 1} {
			add(fmt.Sprintf("%s %d subjects", name, n), set(base, path{"data", "subjects"}, listOf(n, func(i int) string { return fmt.Sprintf("s%d", i) }), false))
		}
		for _, n := range []int{lim.MaxSubjectKinds, lim.MaxSubjectKinds + 1} {
			add(fmt.Sprintf("%s %d subject kinds", name, n), set(base, path{"data", "subject_kinds"}, listOf(n, func(i int) string { return fmt.Sprintf("k%d", i) }), false))
		}
		for _, n := range []int{0, lim.MaxAttributes, lim.MaxAttributes + 1} {
			m := doc{}
			for i := range n {
				m[fmt.Sprintf("k%02d", i)] = "v"
			}
			add(fmt.Sprintf("%s %d attributes", name, n), set(base, path{"attributes"}, m, false))
		}
		for k, v := range map[string]any{"empty key": doc{"": "v"}, "long key": doc{strOf(lim.MaxStringLen+1, "k"): "v"}, "key at limit": doc{strOf(lim.MaxStringLen, "k"): "v"},
			"int value": doc{"a": json.Number("1")}, "null value": doc{"a": nil}, "empty value": doc{"a": ""}} {
			add(name+" attributes "+k, set(base, path{"attributes"}, v, false))
		}
		for _, v := range []any{"custos.event/v1", "custos.event/v2", "", json.Number("1")} {
			add(fmt.Sprintf("%s schema=%v", name, v), set(base, path{"schema"}, v, false))
		}
		for k, v := range map[string]doc{"empty": {}, "country only": {"country": "DE"}, "kind only": {"kind": "partner"}, "name": {"name": "n"}, "empty id": {"id": ""}, "id+empty domain": {"id": "p", "domain": ""}} {
			add(name+" recipient "+k, set(base, path{"recipient"}, v, false))
		}
	}
	return out
}

func TestSchemaDecoderAgreement(t *testing.T) {
	evSchema, _ := schemas(t)
	d := NewDecoder(DefaultLimits())
	docs := corpus(t)
	accepted := 0
	for _, c := range docs {
		schemaErr := schemaAccepts(evSchema, c.b)
		var ev Event
		decErr := d.Decode(c.b, nil, &ev)
		if (schemaErr == nil) != (decErr == nil) {
			t.Errorf("%s: schema says %v, decoder says %v\n%s", c.name, errString(schemaErr), decErr, shorten(c.b))
			continue
		}
		if decErr == nil {
			accepted++
			checkInvariants(t, &ev)
		} else if ReasonOf(decErr) == "" {
			t.Errorf("%s: error without reason: %v", c.name, decErr)
		}
	}
	t.Logf("%d documents, %d accepted, %d rejected", len(docs), accepted, len(docs)-accepted)
	if accepted < len(docs)/5 || accepted > len(docs)*4/5 {
		t.Errorf("corpus is lopsided: %d of %d accepted", accepted, len(docs))
	}
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return firstLine(err)
}

func shorten(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}
