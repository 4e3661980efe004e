package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/custos-privacy/custos/ingest/event"
)

// recorder is a driver.Batch that records the columns appended to it.
type recorder struct {
	driver.Batch
	cols *[]any
}

func (r recorder) Column(i int) driver.BatchColumn { return recCol{r, i} }

type recCol struct {
	recorder
	i int
}

func (r recCol) Append(v any) error { *r.cols = append(*r.cols, v); return nil }

// AppendRow gathers the rows of an array column into one [][]string.
func (r recCol) AppendRow(v any) error {
	if len(*r.cols) == r.i+1 {
		(*r.cols)[r.i] = append((*r.cols)[r.i].([][]string), v.([]string))
		return nil
	}
	*r.cols = append(*r.cols, [][]string{v.([]string)})
	return nil
}

func errCanceled() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx.Err()
}

// subjectID is a pseudonym-shaped subject id (32 hex chars).
func subjectID(i int) string { return fmt.Sprintf("%032x", 0xabc000+i) }

var baseTime = time.Date(2026, 3, 31, 23, 59, 50, 123_000_000, time.UTC)

// sampleEvent is a realistic share event; every field set.
func sampleEvent(i int) *event.Event {
	return &event.Event{
		Schema: event.SchemaV1,
		ID:     fmt.Sprintf("evt-%08d", i),
		Time:   baseTime.Add(time.Duration(i) * time.Second),
		Type:   event.TypeShare,
		Action: event.ActionTransfer,
		Actor:  event.Actor{ID: fmt.Sprintf("user-%03d", i%7), Kind: event.ActorUser, Role: "support_agent", Department: "customer_care"},
		Source: event.Source{System: "crm", Dataset: "customers", Environment: "production"},
		Data: event.Data{
			Categories:        []string{"user.contact.email", "user.name"},
			Records:           int64(10 * i),
			HasRecords:        true,
			Bytes:             int64(1000 * i),
			Subjects:          []string{subjectID(i % 5), subjectID(i%5 + 1)},
			SubjectsTruncated: i%3 == 0,
			SubjectKinds:      []string{"customer"},
		},
		Recipient:  event.Recipient{ID: "p-adnet", Name: "AdNet Ltd", Domain: "api.adnet.example", Country: "IE", Kind: event.RecipientPartner},
		Channel:    event.Channel{Kind: event.ChannelHTTPS, Encrypted: true, EncryptedSet: true},
		Purpose:    "marketing.advertising.third_party",
		LegalBasis: "consent",
		Outcome:    event.OutcomeSuccess,
		Request:    event.Request{ID: fmt.Sprintf("req-%d", i), Session: "sess-1", Ticket: "CASE-42", ClientIP: "10.1.2.3", UserAgent: "curl/8.5"},
		Attributes: []event.Attribute{{Key: "region", Value: "eu"}, {Key: "team", Value: "blue"}},
		Extra:      []byte(`{"x_trace":"abc"}`),
		Origin:     event.Origin{Topic: "custos.events", Partition: 2, Offset: int64(1000 + i)},
	}
}
