package rules

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// Contribution is what one event gives the shared rules (see Shared)
// whose groups one partition of the shared stage owns: the unit of work
// the partition stage hands to the stage that owns those groups.
//
// It carries, for each such rule, the rule, its kind and the group key
// computed where the event was read (Rules), and once the part of the
// event the rules' state and alerts need, not the whole event: the event
// time, id (evidence), volumes (records, bytes), the fields terms, peers
// and distinct values are read from, and what alert texts name (actor,
// source, recipient, channel, purpose, categories...), plus where the
// event was read (Origin: topic, partition, offset), by which duplicates
// are recognised (Marks): one event gives at most one contribution to a
// partition, so a contribution is applied whole or not at all. Subject
// ids, the request context, the attributes and unknown fields are left
// out unless one of the rules' exceptions, steps, grouping fields or
// alert text reads them (ContextParts): the alert text of a shared rule
// renders event.consent.* figures as zero unless it keeps the subjects.
// Conditions are not re-evaluated where the contribution is applied: a
// rule is listed only if the event satisfied its condition.
//
// A hint (Hint true) is not an event's contribution: it tells every
// partition of the shared stage that the first_seen rules it lists saw an
// event at Event.Time, so that each partition starts the rules' learning
// period where their first event was (the earliest hint), not where its
// own first group shows up.
//
// A progress mark (Progress true) carries no rule: it says that every
// contribution of the events partition Event.Origin names, up to
// Event.Origin.Offset, was produced before it (Marks.Advance), so that
// the marks of a partition of the shared stage keep up with events
// partitions that contribute nothing to it.
//
// Encode with AppendBinary or MarshalBinary, decode with UnmarshalBinary
// (version 1 of the record format; docs/operations.md).
type Contribution struct {
	// Rules are the rules the event counts for, with their groups.
	Rules []RuleKey
	// Hint marks learning-start hints of first_seen rules (no keys).
	Hint bool
	// Progress marks a progress mark (no rules).
	Progress bool
	// Parts are the optional parts of the event the contribution keeps.
	Parts ContextParts
	// Event is the event, or after decoding the part of it the
	// contribution keeps. Event.Origin says where it was read.
	Event *event.Event
}

// RuleKey is a shared rule and the group an event counts in.
type RuleKey struct {
	// Rule is the rule id.
	Rule string
	// Kind is the rule's kind, checked when applied (a reload may have
	// changed the rule).
	Kind Kind
	// Key is the group key.
	Key string
}

// ContextParts are the optional parts of an event a contribution keeps.
type ContextParts uint8

// The optional parts.
const (
	// PartSubjects keeps data.subjects (pseudonymised ids).
	PartSubjects ContextParts = 1 << iota
	// PartRequest keeps the request context.
	PartRequest
	// PartAttributes keeps the producer's attributes.
	PartAttributes
	// PartExtra keeps the fields the contract does not know.
	PartExtra
	// allParts is every optional part.
	allParts = PartSubjects | PartRequest | PartAttributes | PartExtra
)

// contributionVersion is the version of the record format.
const contributionVersion = 1

const (
	flagHint     = 1 << 7
	flagProgress = 1 << 6
)

var kindCodes = []Kind{KindMatch, KindThreshold, KindFirstSeen, KindSequence, KindBaseline}

func kindCode(k Kind) (byte, bool) {
	for i, c := range kindCodes {
		if c == k {
			return byte(i), true
		}
	}
	return 0, false
}

// MarshalBinary encodes the contribution (see AppendBinary).
func (c *Contribution) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil) }

// AppendBinary appends the binary form of the contribution to b: a
// version byte, a flags byte, the rules (kind, id, group key), then the
// origin, the time and the kept event fields, strings as uvarint-prefixed
// bytes and numbers as varints. A typical share's contribution is 250 to
// 400 bytes, before the topic's compression.
func (c *Contribution) AppendBinary(b []byte) ([]byte, error) {
	ev := c.Event
	if ev == nil {
		return b, errors.New("contribution without an event")
	}
	flags := byte(c.Parts & allParts)
	if c.Hint {
		flags |= flagHint
	}
	if c.Progress {
		flags |= flagProgress
	}
	b = append(b, contributionVersion, flags)
	b = binary.AppendUvarint(b, uint64(len(c.Rules)))
	for _, rk := range c.Rules {
		kc, ok := kindCode(rk.Kind)
		if !ok {
			return b, fmt.Errorf("contribution to rule %s: unknown kind %q", rk.Rule, rk.Kind)
		}
		b = append(b, kc)
		b = appendString(b, rk.Rule)
		b = appendString(b, rk.Key)
	}
	b = appendString(b, ev.Origin.Topic)
	b = binary.AppendVarint(b, int64(ev.Origin.Partition))
	b = binary.AppendVarint(b, ev.Origin.Offset)
	b = binary.AppendVarint(b, ev.Time.UnixNano())
	if c.Hint || c.Progress {
		return b, nil
	}
	b = appendString(b, ev.ID)
	b = appendString(b, string(ev.Type))
	b = appendString(b, string(ev.Action))
	b = appendString(b, ev.Actor.ID)
	b = appendString(b, string(ev.Actor.Kind))
	b = appendString(b, ev.Actor.Role)
	b = appendString(b, ev.Actor.Department)
	b = appendString(b, ev.Source.System)
	b = appendString(b, ev.Source.Dataset)
	b = appendString(b, ev.Source.Environment)
	b = appendStrings(b, ev.Data.Categories)
	b = binary.AppendVarint(b, ev.Data.Records)
	b = binary.AppendVarint(b, ev.Data.Bytes)
	var bits byte
	for i, set := range []bool{ev.Data.HasRecords, ev.Data.SubjectsTruncated, ev.Channel.Encrypted, ev.Channel.EncryptedSet} {
		if set {
			bits |= 1 << i
		}
	}
	b = append(b, bits)
	b = appendStrings(b, ev.Data.SubjectKinds)
	b = appendString(b, ev.Recipient.ID)
	b = appendString(b, ev.Recipient.Name)
	b = appendString(b, ev.Recipient.Domain)
	b = appendString(b, ev.Recipient.Country)
	b = appendString(b, string(ev.Recipient.Kind))
	b = appendString(b, string(ev.Channel.Kind))
	b = appendString(b, ev.Purpose)
	b = appendString(b, ev.LegalBasis)
	b = appendString(b, string(ev.Outcome))
	if c.Parts&PartSubjects != 0 {
		b = appendStrings(b, ev.Data.Subjects)
	}
	if c.Parts&PartRequest != 0 {
		r := &ev.Request
		for _, s := range []string{r.ID, r.Session, r.Ticket, r.ClientIP, r.UserAgent} {
			b = appendString(b, s)
		}
	}
	if c.Parts&PartAttributes != 0 {
		b = binary.AppendUvarint(b, uint64(len(ev.Attributes)))
		for _, a := range ev.Attributes {
			b = appendString(b, a.Key)
			b = appendString(b, a.Value)
		}
	}
	if c.Parts&PartExtra != 0 {
		b = binary.AppendUvarint(b, uint64(len(ev.Extra)))
		b = append(b, ev.Extra...)
	}
	return b, nil
}

// UnmarshalBinary decodes a contribution encoded by AppendBinary into c,
// with a fresh Event. It refuses unknown versions and truncated or
// malformed input.
func (c *Contribution) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	if v := d.byte(); d.err == nil && v != contributionVersion {
		return fmt.Errorf("contribution: unknown version %d", v)
	}
	flags := d.byte()
	if d.err != nil {
		return d.err
	}
	ev := &event.Event{Schema: event.SchemaV1}
	*c = Contribution{Hint: flags&flagHint != 0, Progress: flags&flagProgress != 0, Parts: ContextParts(flags) & allParts, Event: ev}
	n := d.count()
	if n > 0 {
		c.Rules = make([]RuleKey, n)
		for i := range c.Rules {
			kc := d.byte()
			if d.err == nil && int(kc) >= len(kindCodes) {
				return fmt.Errorf("contribution: unknown kind code %d", kc)
			}
			c.Rules[i] = RuleKey{Kind: kindCodes[kc%byte(len(kindCodes))], Rule: d.string(), Key: d.string()}
		}
	}
	ev.Origin.Topic = d.string()
	ev.Origin.Partition = int32(d.varint())
	ev.Origin.Offset = d.varint()
	ev.Time = time.Unix(0, d.varint()).UTC()
	if c.Hint || c.Progress {
		return d.end()
	}
	ev.ID = d.string()
	ev.Type = event.Type(d.enum())
	ev.Action = event.Action(d.enum())
	ev.Actor.ID = d.string()
	ev.Actor.Kind = event.ActorKind(d.enum())
	ev.Actor.Role = d.string()
	ev.Actor.Department = d.string()
	ev.Source.System = d.string()
	ev.Source.Dataset = d.string()
	ev.Source.Environment = d.string()
	ev.Data.Categories = d.strings()
	ev.Data.Records = d.varint()
	ev.Data.Bytes = d.varint()
	bits := d.byte()
	ev.Data.HasRecords, ev.Data.SubjectsTruncated = bits&1 != 0, bits&2 != 0
	ev.Channel.Encrypted, ev.Channel.EncryptedSet = bits&4 != 0, bits&8 != 0
	ev.Data.SubjectKinds = d.strings()
	ev.Recipient.ID = d.string()
	ev.Recipient.Name = d.string()
	ev.Recipient.Domain = d.string()
	ev.Recipient.Country = d.string()
	ev.Recipient.Kind = event.RecipientKind(d.enum())
	ev.Channel.Kind = event.ChannelKind(d.enum())
	ev.Purpose = d.string()
	ev.LegalBasis = d.string()
	ev.Outcome = event.Outcome(d.enum())
	if c.Parts&PartSubjects != 0 {
		ev.Data.Subjects = d.strings()
	}
	if c.Parts&PartRequest != 0 {
		r := &ev.Request
		r.ID, r.Session, r.Ticket, r.ClientIP, r.UserAgent = d.string(), d.string(), d.string(), d.string(), d.string()
	}
	if c.Parts&PartAttributes != 0 {
		n := d.count()
		if n > 0 {
			ev.Attributes = make([]event.Attribute, n)
			for i := range ev.Attributes {
				ev.Attributes[i] = event.Attribute{Key: d.string(), Value: d.string()}
			}
		}
	}
	if c.Parts&PartExtra != 0 {
		if n := d.count(); n > 0 && d.err == nil {
			ev.Extra = append([]byte(nil), d.take(n)...)
		}
	}
	return d.end()
}

// OriginOf reads only the origin of an encoded contribution (for a scan
// that needs no more), and whether it is a hint (which names no source
// offset covered).
func OriginOf(data []byte) (event.Origin, bool, error) {
	d := decoder{b: data}
	if v := d.byte(); d.err == nil && v != contributionVersion {
		return event.Origin{}, false, fmt.Errorf("contribution: unknown version %d", v)
	}
	flags := d.byte()
	for n := d.count(); n > 0 && d.err == nil; n-- {
		d.byte()
		d.skipString() // rule
		d.skipString() // key
	}
	o := event.Origin{Topic: d.string(), Partition: int32(d.varint()), Offset: d.varint()}
	return o, flags&flagHint != 0, d.err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

var errTruncated = errors.New("contribution: truncated")

// decoder reads the binary form; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail(errTruncated)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length, refusing one longer than what is left.
func (d *decoder) count() int {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.b = d.b[n:]
	if v > uint64(len(d.b)) {
		d.fail(errTruncated)
		return 0
	}
	return int(v)
}

func (d *decoder) take(n int) []byte {
	if n > len(d.b) {
		d.fail(errTruncated)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.take(d.count())) }

func (d *decoder) skipString() { d.take(d.count()) }

// enum reads a string that is usually one of the contract's enumeration
// values, without allocating for those.
func (d *decoder) enum() string {
	b := d.take(d.count())
	if s, ok := enums[string(b)]; ok {
		return s
	}
	return string(b)
}

func (d *decoder) strings() []string {
	n := d.count()
	if n == 0 || d.err != nil {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.string()
	}
	return out
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		return fmt.Errorf("contribution: %d bytes left over", len(d.b))
	}
	return d.err
}

// enums are the enumeration values of the contract, interned.
var enums = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		string(event.TypeAccess), string(event.TypeShare),
		string(event.ActionRead), string(event.ActionQuery), string(event.ActionExport), string(event.ActionDownload),
		string(event.ActionUpdate), string(event.ActionDelete), string(event.ActionTransfer),
		string(event.ActorUser), string(event.ActorService),
		string(event.RecipientPartner), string(event.RecipientProcessor), string(event.RecipientDataSubject),
		string(event.RecipientAuthority), string(event.RecipientAffiliate), string(event.RecipientInternal), string(event.RecipientUnknown),
		string(event.ChannelAPI), string(event.ChannelHTTPS), string(event.ChannelSFTP), string(event.ChannelEmail),
		string(event.ChannelS3), string(event.ChannelHTTP), string(event.ChannelFTP), string(event.ChannelOther),
		string(event.OutcomeSuccess), string(event.OutcomeFailure), string(event.OutcomeDenied),
	} {
		m[s] = s
	}
	return m
}()

// ---- duplicates ----

// SourcePartition names a partition contributions come from (the events topic
// partition their events were read from).
type SourcePartition struct {
	Topic     string
	Partition int32
}

// Marks recognise duplicate contributions: for each source partition, the
// highest source offset applied. One producer at a time writes a source
// partition's contributions, in source-offset order, and a contribution
// is produced again only by re-processing its event after a crash or a
// rebalance, after everything it had produced before: so a contribution
// whose source offset is at or below its source's mark was applied
// already (or its effect was rebuilt from storage, see the shared stage)
// and is skipped. Marks are committed with the repartition partition's
// offset (MarshalText: "topic:partition=offset,..."), so that the state
// rebuilt after a takeover knows exactly which source events the
// committed part of the partition covered.
//
// The zero Marks is empty and ready to use; Marks is not safe for
// concurrent use.
type Marks struct {
	m map[SourcePartition]int64
}

// Admit reports whether the contribution of the event read at o is to be
// applied, and if so raises o's source mark to o.Offset. An origin without
// a topic (an event not read from Kafka) is always admitted.
func (m *Marks) Admit(o event.Origin) bool {
	if o.Topic == "" {
		return true
	}
	k := SourcePartition{o.Topic, o.Partition}
	if last, ok := m.m[k]; ok && o.Offset <= last {
		return false
	}
	m.Set(k, o.Offset)
	return true
}

// Advance raises o's source mark to o.Offset if it is lower (a progress
// mark: see Contribution).
func (m *Marks) Advance(o event.Origin) {
	k := SourcePartition{o.Topic, o.Partition}
	if last, ok := m.m[k]; !ok || o.Offset > last {
		m.Set(k, o.Offset)
	}
}

// Get returns the mark of src, and false when src has none (nothing of it
// applied: every offset is admitted).
func (m *Marks) Get(src SourcePartition) (int64, bool) {
	v, ok := m.m[src]
	return v, ok
}

// Set sets the mark of src: offsets at or below offset are duplicates.
func (m *Marks) Set(src SourcePartition, offset int64) {
	if m.m == nil {
		m.m = map[SourcePartition]int64{}
	}
	m.m[src] = offset
}

// Len is the number of sources with a mark.
func (m *Marks) Len() int { return len(m.m) }

// Clone returns a copy.
func (m *Marks) Clone() *Marks {
	c := &Marks{m: make(map[SourcePartition]int64, len(m.m))}
	for k, v := range m.m {
		c.m[k] = v
	}
	return c
}

// MarshalText encodes the marks as "topic:partition=offset,..." lines, one
// per topic, sorted.
func (m *Marks) MarshalText() ([]byte, error) {
	byTopic := map[string][]SourcePartition{}
	for k := range m.m {
		byTopic[k.Topic] = append(byTopic[k.Topic], k)
	}
	topics := make([]string, 0, len(byTopic))
	for t := range byTopic {
		if strings.ContainsAny(t, ":\n") {
			return nil, fmt.Errorf("marks: topic %q cannot be encoded", t)
		}
		topics = append(topics, t)
	}
	sort.Strings(topics)
	var b []byte
	for i, t := range topics {
		if i > 0 {
			b = append(b, '\n')
		}
		srcs := byTopic[t]
		sort.Slice(srcs, func(i, j int) bool { return srcs[i].Partition < srcs[j].Partition })
		b = append(b, t...)
		b = append(b, ':')
		for j, s := range srcs {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(s.Partition), 10)
			b = append(b, '=')
			b = strconv.AppendInt(b, m.m[s], 10)
		}
	}
	return b, nil
}

// UnmarshalText decodes marks encoded by MarshalText, replacing m's.
func (m *Marks) UnmarshalText(b []byte) error {
	m.m = map[SourcePartition]int64{}
	if len(b) == 0 {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		topic, list, ok := strings.Cut(line, ":")
		if !ok || topic == "" {
			return fmt.Errorf("marks: malformed line %q", line)
		}
		if list == "" {
			continue
		}
		for _, kv := range strings.Split(list, ",") {
			ps, os, ok := strings.Cut(kv, "=")
			p, err1 := strconv.ParseInt(ps, 10, 32)
			o, err2 := strconv.ParseInt(os, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return fmt.Errorf("marks: malformed entry %q", kv)
			}
			m.m[SourcePartition{topic, int32(p)}] = o
		}
	}
	return nil
}
