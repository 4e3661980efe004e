package kafka

import (
	"strconv"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/custos-privacy/custos/ingest/event"
)

func TestDeadLetterCarriesReasonAndOrigin(t *testing.T) {
	dec := event.NewDecoder(event.DefaultLimits())
	value := []byte(`{"event_id":"e1","time":"2026-11-23T10:00:00Z","type":"access","action":"export","actor":{"id":"a"},"source":{"system":"crm"},"data":{}}`)
	var ev event.Event
	err := dec.Decode(value, nil, &ev)
	if err == nil {
		t.Fatal("an export without data.records must be invalid")
	}
	m := kafkago.Message{Topic: "custos.events", Partition: 4, Offset: 1234, Key: []byte("a"), Value: value,
		Headers: []kafkago.Header{{Key: "trace", Value: []byte("x")}}}
	dl := deadLetter(&m, err, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
	h := map[string]string{}
	for _, x := range dl.Headers {
		h[x.Key] = string(x.Value)
	}
	want := map[string]string{
		"trace": "x", HeaderReason: "missing", HeaderField: "data.records", HeaderTopic: "custos.events",
		HeaderPartition: "4", HeaderOffset: strconv.Itoa(1234), HeaderTime: "2026-11-24T00:00:00Z",
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("header %s = %q, want %q", k, h[k], v)
		}
	}
	if h[HeaderError] != err.Error() {
		t.Errorf("error header = %q, want %q", h[HeaderError], err.Error())
	}
	if string(dl.Value) != string(value) || string(dl.Key) != "a" {
		t.Error("the dead letter must keep the original key and value")
	}
	if r, _ := reasonOf(errorString("boom")); r != "undecodable" {
		t.Errorf("reason of a foreign error = %q", r)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
