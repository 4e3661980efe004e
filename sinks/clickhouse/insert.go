package clickhouse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules"
)

// InsertEvents stores events in one INSERT (sent as blocks of
// insertBlockRows rows, which the server squashes into one), retrying
// transient failures with bounded exponential backoff; before each retry it
// drops the events whose Kafka offsets event_offsets already holds, so a
// retry after an insert that did reach the server adds nothing twice. It
// honours ctx between and during attempts.
//
// Atomicity: the server writes one part per partition (calendar month of
// event time), each atomically; a failed call may have stored some months.
// On error the caller retries the whole call (after StoredOffsets, or
// simply again: InsertEvents skips stored offsets itself on its retries,
// and the schema collapses what slips through).
//
// Events must carry their Origin (topic, partition, offset); events is not
// modified.
func (s *Store) InsertEvents(ctx context.Context, events []*event.Event) error {
	if len(events) == 0 {
		return nil
	}
	buf := s.eventBufs.Get().(*eventBuf)
	defer func() { buf.reset(); s.eventBufs.Put(buf) }()
	sql := insertSQL(s.db+".events", eventColumns(featuresOf(s.version)))

	pending := events
	return s.insert(ctx, "events", sql, func() int { return len(pending) },
		func(b driver.Batch) error { return streamEvents(b, buf, pending) },
		func(ctx context.Context) (int, error) {
			rest, err := s.unstored(ctx, pending)
			if err != nil {
				return 0, err
			}
			pending = rest
			return len(pending), nil
		})
}

// insertBlockRows is how many rows InsertEvents encodes into one native
// protocol block before sending it. One INSERT carries its rows in several
// blocks: the client holds the columns of one block only, and reuses them
// (clickhouse-go keeps a block's capacity across Flush), instead of growing
// 42 columns to the size of the whole insert for every insert. The server
// squashes the blocks of an INSERT up to min_insert_block_size_rows
// (1,048,576) and min_insert_block_size_bytes (256 MiB) before it writes a
// part, so the parts and their atomicity are those of a one-block insert.
const insertBlockRows = 8192

// streamEvents appends events to b in blocks of insertBlockRows rows,
// sending each full block, and leaves the last one for Send.
func streamEvents(b driver.Batch, buf *eventBuf, events []*event.Event) error {
	for lo := 0; lo < len(events); lo += insertBlockRows {
		hi := min(lo+insertBlockRows, len(events))
		buf.reset()
		buf.fill(events[lo:hi])
		if err := buf.appendTo(b); err != nil {
			return err
		}
		if hi < len(events) {
			if err := b.Flush(); err != nil {
				return fmt.Errorf("send block: %w", err)
			}
		}
	}
	return nil
}

// InsertAlerts stores alerts (one version each, stamped with the current
// time as stored_at) in one INSERT, retrying transient failures. Storing
// an alert id again adds a newer version that replaces the older on merge;
// the queries here read the newest.
func (s *Store) InsertAlerts(ctx context.Context, alerts []*rules.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	buf := s.alertBufs.Get().(*alertBuf)
	defer func() { buf.reset(); s.alertBufs.Put(buf) }()
	buf.fill(alerts, time.Now())
	sql := insertSQL(s.db+".alerts", alertColumns(featuresOf(s.version)))
	return s.insert(ctx, "alerts", sql, func() int { return len(alerts) }, buf.appendTo, nil)
}

// InsertSubjectStatuses stores subject status changes in one INSERT,
// retrying transient failures. A re-delivered change has the same sorting
// key and is collapsed on merge.
func (s *Store) InsertSubjectStatuses(ctx context.Context, statuses []*event.SubjectStatus) error {
	if len(statuses) == 0 {
		return nil
	}
	buf := s.statusBufs.Get().(*statusBuf)
	defer func() { buf.reset(); s.statusBufs.Put(buf) }()
	buf.fill(statuses)
	sql := insertSQL(s.db+".subject_status", subjectStatusColumns(featuresOf(s.version)))
	return s.insert(ctx, "subject_status", sql, func() int { return len(statuses) }, buf.appendTo, nil)
}

// insert runs one INSERT, retrying. A fresh batch is prepared for every
// attempt: clickhouse-go marks a batch sent even when Send fails, so the
// rows live in our column buffers, not in the batch. beforeRetry, if set,
// may shrink the rows and returns how many are left (0: done).
func (s *Store) insert(ctx context.Context, table, sql string, rows func() int,
	appendTo func(driver.Batch) error, beforeRetry func(context.Context) (int, error)) error {
	backoff := s.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		err := s.sendOnce(ctx, table, sql, attempt, appendTo)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("insert %d rows into %s: %w", rows(), table, cerr)
		}
		if !IsTransient(err) || attempt >= s.cfg.MaxRetries {
			return fmt.Errorf("insert %d rows into %s (attempt %d): %w", rows(), table, attempt+1, err)
		}
		s.log.Warn("clickhouse insert failed, retrying", "table", table, "rows", rows(),
			"attempt", attempt+1, "class", Classify(err), "code", ServerCode(err), "backoff", backoff)
		if err := sleep(ctx, jitter(backoff)); err != nil {
			return fmt.Errorf("insert %d rows into %s: %w", rows(), table, err)
		}
		backoff = min(backoff*2, s.cfg.MaxRetryBackoff)
		if beforeRetry != nil {
			n, err := beforeRetry(ctx)
			if err != nil {
				// Counted as a failed attempt: loop, the next send will
				// tell whether the server is back.
				s.log.Warn("clickhouse stored-offset check before retry failed", "table", table, "error", err)
				continue
			}
			if n == 0 {
				return nil
			}
		}
	}
}

func (s *Store) sendOnce(ctx context.Context, table, sql string, attempt int, appendTo func(driver.Batch) error) (err error) {
	b, err := s.conn.PrepareBatch(ctx, sql)
	if err != nil {
		return fmt.Errorf("prepare batch: %w", err)
	}
	defer func() {
		if !b.IsSent() {
			_ = b.Abort()
		}
	}()
	if err := appendTo(b); err != nil {
		return fmt.Errorf("append columns: %w", err)
	}
	if s.beforeSend != nil {
		if err := s.beforeSend(table, attempt); err != nil {
			return err
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	if s.afterSend != nil {
		return s.afterSend(table, attempt)
	}
	return nil
}

// unstored returns the events whose offsets event_offsets does not hold.
func (s *Store) unstored(ctx context.Context, events []*event.Event) ([]*event.Event, error) {
	type tp struct {
		topic     string
		partition int32
	}
	type span struct{ lo, hi int64 }
	spans := map[tp]span{}
	for _, e := range events {
		k := tp{e.Origin.Topic, e.Origin.Partition}
		sp, ok := spans[k]
		if !ok {
			sp = span{e.Origin.Offset, e.Origin.Offset}
		}
		sp.lo, sp.hi = min(sp.lo, e.Origin.Offset), max(sp.hi, e.Origin.Offset)
		spans[k] = sp
	}
	stored := map[tp]map[int64]bool{}
	for k, sp := range spans {
		offs, err := s.storedOffsets(ctx, k.topic, k.partition, sp.lo, sp.hi)
		if err != nil {
			return nil, err
		}
		m := make(map[int64]bool, len(offs))
		for _, o := range offs {
			m[o] = true
		}
		stored[k] = m
	}
	rest := make([]*event.Event, 0, len(events))
	for _, e := range events {
		if !stored[tp{e.Origin.Topic, e.Origin.Partition}][e.Origin.Offset] {
			rest = append(rest, e)
		}
	}
	return rest, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// jitter returns d ± 20%.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/5 + time.Duration(rand.Int64N(int64(d)/5*2+1))
}

func ms(t time.Time) uint16 { return uint16(t.Nanosecond() / int(time.Millisecond)) }

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// eventBuf holds the columns of one events INSERT; reused across calls.
type eventBuf struct {
	eventID, typ, action, actorID, actorKind, actorRole, actorDept []string
	sourceSystem, sourceDataset, sourceEnv                         []string
	recipientID, recipientName, recipientDomain, recipientCountry  []string
	recipientKind, channelKind, purpose, legalBasis, outcome       []string
	requestID, session, ticket, clientIP, userAgent, extra, schema []string
	topic                                                          []string
	times                                                          []time.Time
	timeMs                                                         []uint16
	records, bytes, offset                                         []int64
	partition                                                      []int32
	hasRecords, truncated, encrypted, encryptedSet                 []uint8
	categories, subjects, subjectKinds, attrKeys, attrValues       [][]string
	flatKeys, flatValues                                           []string
}

func (b *eventBuf) fill(events []*event.Event) {
	for _, e := range events {
		b.eventID = append(b.eventID, e.ID)
		t := e.Time.UTC()
		b.times = append(b.times, t)
		b.timeMs = append(b.timeMs, ms(t))
		b.typ = append(b.typ, string(e.Type))
		b.action = append(b.action, string(e.Action))
		b.actorID = append(b.actorID, e.Actor.ID)
		b.actorKind = append(b.actorKind, string(e.Actor.Kind))
		b.actorRole = append(b.actorRole, e.Actor.Role)
		b.actorDept = append(b.actorDept, e.Actor.Department)
		b.sourceSystem = append(b.sourceSystem, e.Source.System)
		b.sourceDataset = append(b.sourceDataset, e.Source.Dataset)
		b.sourceEnv = append(b.sourceEnv, e.Source.Environment)
		b.categories = append(b.categories, e.Data.Categories)
		b.records = append(b.records, e.Data.Records)
		b.hasRecords = append(b.hasRecords, b2u(e.Data.HasRecords))
		b.bytes = append(b.bytes, e.Data.Bytes)
		b.subjects = append(b.subjects, e.Data.Subjects)
		b.truncated = append(b.truncated, b2u(e.Data.SubjectsTruncated))
		b.subjectKinds = append(b.subjectKinds, e.Data.SubjectKinds)
		b.recipientID = append(b.recipientID, e.Recipient.ID)
		b.recipientName = append(b.recipientName, e.Recipient.Name)
		b.recipientDomain = append(b.recipientDomain, e.Recipient.Domain)
		b.recipientCountry = append(b.recipientCountry, e.Recipient.Country)
		b.recipientKind = append(b.recipientKind, string(e.Recipient.Kind))
		b.channelKind = append(b.channelKind, string(e.Channel.Kind))
		b.encrypted = append(b.encrypted, b2u(e.Channel.Encrypted))
		b.encryptedSet = append(b.encryptedSet, b2u(e.Channel.EncryptedSet))
		b.purpose = append(b.purpose, e.Purpose)
		b.legalBasis = append(b.legalBasis, e.LegalBasis)
		b.outcome = append(b.outcome, string(e.Outcome))
		b.requestID = append(b.requestID, e.Request.ID)
		b.session = append(b.session, e.Request.Session)
		b.ticket = append(b.ticket, e.Request.Ticket)
		b.clientIP = append(b.clientIP, e.Request.ClientIP)
		b.userAgent = append(b.userAgent, e.Request.UserAgent)
		if len(e.Attributes) == 0 {
			b.attrKeys = append(b.attrKeys, nil)
			b.attrValues = append(b.attrValues, nil)
		} else {
			// Sub-slices of flat buffers: an append that grows them leaves
			// the earlier sub-slices on the old array, still valid.
			k0 := len(b.flatKeys)
			for _, a := range e.Attributes {
				b.flatKeys = append(b.flatKeys, a.Key)
				b.flatValues = append(b.flatValues, a.Value)
			}
			b.attrKeys = append(b.attrKeys, b.flatKeys[k0:len(b.flatKeys):len(b.flatKeys)])
			b.attrValues = append(b.attrValues, b.flatValues[k0:len(b.flatValues):len(b.flatValues)])
		}
		b.extra = append(b.extra, string(e.Extra))
		schema := e.Schema
		if schema == "" {
			schema = event.SchemaV1
		}
		b.schema = append(b.schema, schema)
		b.topic = append(b.topic, e.Origin.Topic)
		b.partition = append(b.partition, e.Origin.Partition)
		b.offset = append(b.offset, e.Origin.Offset)
	}
}

// appendTo appends the columns in eventColumns order.
func (b *eventBuf) appendTo(batch driver.Batch) error {
	cols := []any{
		b.eventID, b.times, b.timeMs, b.typ, b.action, b.actorID, b.actorKind,
		b.actorRole, b.actorDept, b.sourceSystem, b.sourceDataset, b.sourceEnv,
		b.categories, b.records, b.hasRecords, b.bytes, b.subjects, b.truncated,
		b.subjectKinds, b.recipientID, b.recipientName, b.recipientDomain,
		b.recipientCountry, b.recipientKind, b.channelKind, b.encrypted,
		b.encryptedSet, b.purpose, b.legalBasis, b.outcome, b.requestID,
		b.session, b.ticket, b.clientIP, b.userAgent, b.attrKeys, b.attrValues,
		b.extra, b.schema, b.topic, b.partition, b.offset,
	}
	return appendColumns(batch, cols)
}

// appendColumns appends whole columns. Array columns ([][]string) go row
// by row: clickhouse-go appends a [][]string through reflection, one
// reflect.Value per element, and a []string row without it.
func appendColumns(batch driver.Batch, cols []any) error {
	for i, c := range cols {
		col := batch.Column(i)
		if rows, ok := c.([][]string); ok && len(rows) > 0 {
			for _, r := range rows {
				if err := col.AppendRow(r); err != nil {
					return fmt.Errorf("column %d: %w", i, err)
				}
			}
			continue
		}
		if err := col.Append(c); err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return nil
}

func (b *eventBuf) reset() {
	for _, p := range []*[]string{
		&b.eventID, &b.typ, &b.action, &b.actorID, &b.actorKind, &b.actorRole, &b.actorDept,
		&b.sourceSystem, &b.sourceDataset, &b.sourceEnv, &b.recipientID, &b.recipientName,
		&b.recipientDomain, &b.recipientCountry, &b.recipientKind, &b.channelKind, &b.purpose,
		&b.legalBasis, &b.outcome, &b.requestID, &b.session, &b.ticket, &b.clientIP,
		&b.userAgent, &b.extra, &b.schema, &b.topic, &b.flatKeys, &b.flatValues,
	} {
		clear(*p)
		*p = (*p)[:0]
	}
	for _, p := range []*[][]string{&b.categories, &b.subjects, &b.subjectKinds, &b.attrKeys, &b.attrValues} {
		clear(*p)
		*p = (*p)[:0]
	}
	b.times, b.timeMs = b.times[:0], b.timeMs[:0]
	b.records, b.bytes, b.offset, b.partition = b.records[:0], b.bytes[:0], b.offset[:0], b.partition[:0]
	b.hasRecords, b.truncated, b.encrypted, b.encryptedSet = b.hasRecords[:0], b.truncated[:0], b.encrypted[:0], b.encryptedSet[:0]
}

// alertBuf holds the columns of one alerts INSERT.
type alertBuf struct {
	id, rule, title, severity, actor, group, summary, recipient []string
	winStart, winEnd, eventTime, storedAt                       []time.Time
	winStartMs, winEndMs, eventTimeMs                           []uint16
	events, records, threshold                                  []int64
	partition                                                   []int32
	evidence                                                    [][]string
}

func (b *alertBuf) fill(alerts []*rules.Alert, now time.Time) {
	now = now.UTC()
	for _, a := range alerts {
		b.id = append(b.id, a.ID)
		b.rule = append(b.rule, a.Rule)
		b.title = append(b.title, a.Title)
		b.severity = append(b.severity, string(a.Severity))
		b.actor = append(b.actor, a.Actor)
		b.group = append(b.group, a.GroupKey)
		b.winStart = append(b.winStart, a.WindowStart.UTC())
		b.winStartMs = append(b.winStartMs, ms(a.WindowStart))
		b.winEnd = append(b.winEnd, a.WindowEnd.UTC())
		b.winEndMs = append(b.winEndMs, ms(a.WindowEnd))
		b.events = append(b.events, a.Events)
		b.records = append(b.records, a.Records)
		b.threshold = append(b.threshold, a.Threshold)
		b.summary = append(b.summary, a.Summary)
		b.evidence = append(b.evidence, a.Evidence)
		b.recipient = append(b.recipient, a.Recipient)
		b.partition = append(b.partition, a.Partition)
		b.eventTime = append(b.eventTime, a.EventTime.UTC())
		b.eventTimeMs = append(b.eventTimeMs, ms(a.EventTime))
		b.storedAt = append(b.storedAt, now)
	}
}

func (b *alertBuf) appendTo(batch driver.Batch) error {
	return appendColumns(batch, []any{
		b.id, b.rule, b.title, b.severity, b.actor, b.group, b.winStart, b.winStartMs,
		b.winEnd, b.winEndMs, b.events, b.records, b.threshold, b.summary, b.evidence,
		b.recipient, b.partition, b.eventTime, b.eventTimeMs, b.storedAt,
	})
}

func (b *alertBuf) reset() {
	clear(b.evidence)
	*b = alertBuf{
		id: b.id[:0], rule: b.rule[:0], title: b.title[:0], severity: b.severity[:0],
		actor: b.actor[:0], group: b.group[:0], summary: b.summary[:0], recipient: b.recipient[:0],
		winStart: b.winStart[:0], winEnd: b.winEnd[:0], eventTime: b.eventTime[:0], storedAt: b.storedAt[:0],
		winStartMs: b.winStartMs[:0], winEndMs: b.winEndMs[:0], eventTimeMs: b.eventTimeMs[:0],
		events: b.events[:0], records: b.records[:0], threshold: b.threshold[:0],
		partition: b.partition[:0], evidence: b.evidence[:0],
	}
}

// statusBuf holds the columns of one subject_status INSERT.
type statusBuf struct {
	subject, status, topic []string
	times                  []time.Time
	timeMs                 []uint16
	uses                   [][]string
	partition              []int32
	offset                 []int64
}

func (b *statusBuf) fill(statuses []*event.SubjectStatus) {
	for _, st := range statuses {
		b.subject = append(b.subject, st.Subject)
		b.times = append(b.times, st.Time.UTC())
		b.timeMs = append(b.timeMs, ms(st.Time))
		b.status = append(b.status, string(st.Status))
		b.uses = append(b.uses, st.Uses)
		b.topic = append(b.topic, st.Origin.Topic)
		b.partition = append(b.partition, st.Origin.Partition)
		b.offset = append(b.offset, st.Origin.Offset)
	}
}

func (b *statusBuf) appendTo(batch driver.Batch) error {
	return appendColumns(batch, []any{b.subject, b.times, b.timeMs, b.status, b.uses, b.topic, b.partition, b.offset})
}

func (b *statusBuf) reset() {
	clear(b.uses)
	*b = statusBuf{
		subject: b.subject[:0], status: b.status[:0], topic: b.topic[:0], times: b.times[:0],
		timeMs: b.timeMs[:0], uses: b.uses[:0], partition: b.partition[:0], offset: b.offset[:0],
	}
}
