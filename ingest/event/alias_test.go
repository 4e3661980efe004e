package event

import (
	"bytes"
	"reflect"
	"testing"
)

// With aliasing the decoder returns the same events as without; the
// strings it takes verbatim point into the message (overwriting the
// message changes them) and the ones it unescapes are still copies.
func TestAliasing(t *testing.T) {
	msgs := map[string][]byte{}
	for name, b := range exampleFiles(t) {
		msgs[name] = compact(t, b)
	}
	// An escaped recipient name, and a subject with a unicode escape.
	msgs["escapes"] = []byte(`{"event_id":"e-esc-1","time":"2026-03-02T09:14:07Z","type":"share","action":"transfer",` +
		`"actor":{"id":"svc-crm","kind":"service"},"source":{"system":"crm"},` +
		`"data":{"categories":["user.contact.email"],"records":3,"subjects":["cust-\u0031"]},` +
		`"recipient":{"id":"acme","name":"Acme \"Labs\"","domain":"acme.example","country":"DE"},"purpose":"essential.service"}`)
	for _, name := range sortedKeys(msgs) {
		t.Run(name, func(t *testing.T) {
			var want, got Event
			if err := NewDecoder(DefaultLimits()).Decode(bytes.Clone(msgs[name]), nil, &want); err != nil {
				t.Fatal(err)
			}
			d := NewDecoder(DefaultLimits())
			d.SetAliasing(true)
			buf := bytes.Clone(msgs[name])
			if err := d.Decode(buf, nil, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("aliasing changes the event:\n got %+v\nwant %+v", got, want)
			}
			for i := range buf {
				buf[i] = 'X'
			}
			if got.ID == want.ID {
				t.Errorf("event id %q survived overwriting the message: not aliased", got.ID)
			}
			if name == "escapes" {
				if got.Recipient.Name != `Acme "Labs"` || got.Data.Subjects[0] != "cust-1" {
					t.Errorf("unescaped strings changed with the message: name %q, subject %q", got.Recipient.Name, got.Data.Subjects[0])
				}
			}
		})
	}
}
