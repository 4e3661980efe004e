package event

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Header is one Kafka message header. CloudEvents binary mode puts the
// envelope in ce_* headers.
type Header struct {
	// Key is the header name, e.g. "ce_id".
	Key string
	// Value is the header value as sent.
	Value []byte
}

// Decoder decodes and validates messages of the events and subjects topics.
// It is a hand-written single-pass scanner: no reflection, no intermediate
// tree, and per accepted event one allocation for all its strings, one for
// its string slices, plus one each for attributes and unknown fields when
// present.
//
// A Decoder is not safe for concurrent use: it reuses scratch buffers
// between calls, so run one per goroutine. What it returns never aliases
// those buffers, and by default not the message either: every string and
// slice of a decoded Event is a fresh copy that stays valid after the next
// Decode and after the message buffer is reused. SetAliasing trades that
// for one allocation and copy less per event.
type Decoder struct {
	lim   Limits
	alias bool // strings may point into the message (SetAliasing)
	s     scanner
	arena []byte      // string storage of the current event (fresh per event)
	strs  []string    // scratch: categories, subjects, subject kinds, uses
	attrs []Attribute // scratch: attributes before sorting
	unk   []unknown   // scratch: unknown members, in input order
	extra []byte      // scratch: Extra before copying
	pre   string      // error path prefix ("data." in structured mode)
}

// NewDecoder returns a Decoder enforcing lim; zero fields of lim take their
// defaults (see DefaultLimits). Check lim with Limits.Validate first:
// negative values are treated as defaults here.
func NewDecoder(lim Limits) *Decoder {
	lim = lim.withDefaults()
	d := DefaultLimits()
	for _, p := range []struct {
		v   *int
		def int
	}{
		{&lim.MaxMessageBytes, d.MaxMessageBytes}, {&lim.MaxSubjects, d.MaxSubjects},
		{&lim.MaxCategories, d.MaxCategories}, {&lim.MaxSubjectKinds, d.MaxSubjectKinds},
		{&lim.MaxStringLen, d.MaxStringLen}, {&lim.MaxAttributes, d.MaxAttributes},
		{&lim.MaxUses, d.MaxUses}, {&lim.MaxDepth, d.MaxDepth},
	} {
		if *p.v < 0 {
			*p.v = p.def
		}
	}
	return &Decoder{lim: lim}
}

// SetAliasing makes the strings of what the Decoder returns point into the
// message where it holds them verbatim (no escape sequence), instead of
// copying them: one allocation and one copy of ~400 bytes less per event.
// The caller must then leave each message buffer untouched for as long as
// what was decoded from it is in use (the Kafka consumer's message values
// are allocated per message and never reused). Header values and unescaped
// strings are still copied. A string that outlives its event keeps the
// whole message alive, as it keeps the event's copy arena alive without
// aliasing.
func (d *Decoder) SetAliasing(on bool) { d.alias = on }

// Limits returns the limits the Decoder enforces, defaults filled in.
func (d *Decoder) Limits() Limits { return d.lim }

// unknown is a member the contract does not know, kept for Event.Extra.
type unknown struct {
	parent     object
	key0, key1 int // raw key, quotes included
	val0, val1 int // raw value
}

// object names the contract's objects that can hold unknown members.
type object uint8

const (
	objTop object = iota
	objActor
	objSource
	objData
	objRecipient
	objChannel
	objRequest
	objClient
	numObjects
)

var objectNames = [numObjects]string{"", "actor", "source", "data", "recipient", "channel", "request", "client"}

var objectPaths = [numObjects]string{"", "actor", "source", "data", "recipient", "channel", "request", "request.client"}

func objectParent(o object) object {
	if o == objClient {
		return objRequest
	}
	return objTop
}

// Decode decodes one message of the events topic into ev and validates it
// against the contract. It resets *ev first, then fills it, defaults
// included (Schema SchemaV1, actor kind user, outcome success, recipient kind
// unknown when a recipient has none); Time is in UTC. Origin is left zero
// for the caller.
//
// value is a plain JSON event or a CloudEvents 1.0 structured-mode envelope;
// headers may carry a CloudEvents binary-mode envelope (ce_* headers). On
// failure the error is an *Error saying which field and why, and ev holds
// whatever was decoded so far (do not use it).
func (d *Decoder) Decode(value []byte, headers []Header, ev *Event) error {
	*ev = Event{}
	if err := d.decode(value, headers, ev); err != nil {
		return err
	}
	return nil
}

func (d *Decoder) decode(value []byte, headers []Header, ev *Event) *Error {
	if len(value) > d.lim.MaxMessageBytes {
		return newErr("", ReasonTooLarge, "message of %d bytes is larger than the limit of %d", len(value), d.lim.MaxMessageBytes)
	}
	d.reset(value)
	env, err := d.binaryEnvelope(headers)
	if err != nil {
		return err
	}
	if env != nil {
		return d.eventAt(ev, env, 1, false)
	}
	err = d.eventAt(ev, nil, 1, true)
	if err == nil || !hasTopKey(value, "specversion") {
		return err
	}
	// A CloudEvents structured-mode envelope.
	*ev = Event{}
	d.reset(value)
	return d.structured(ev)
}

func (d *Decoder) reset(value []byte) {
	d.s.buf, d.s.pos = value, 0
	d.arena = nil
	d.strs = d.strs[:0]
	d.attrs = d.attrs[:0]
	d.unk = d.unk[:0]
	d.pre = ""
}

// errAt prefixes a field path with the current envelope prefix.
func (d *Decoder) errAt(e *Error) *Error {
	if d.pre != "" && e.Reason != ReasonSyntax && e.Reason != ReasonTooLarge {
		if e.Field == "" {
			e.Field = strings.TrimSuffix(d.pre, ".")
		} else {
			e.Field = d.pre + e.Field
		}
	}
	return e
}

// intern returns b as a string: b itself when aliasing and b lies in the
// message, else a copy in the event's arena. The arena is sized to the
// message, which bounds the total of its (unescaped) strings, so it is
// allocated at most once per event.
func (d *Decoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if d.alias && within(b, d.s.buf) {
		return unsafe.String(&b[0], len(b))
	}
	if cap(d.arena)-len(d.arena) < len(b) {
		d.arena = make([]byte, 0, max(len(d.s.buf), len(b)))
	}
	start := len(d.arena)
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[start], len(b))
}

// within reports whether b (non-empty) lies inside buf.
func within(b, buf []byte) bool {
	if len(buf) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&buf[0]))
	return p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(buf))
}

// typeErr reports a value of the wrong kind (or a syntax error).
func (d *Decoder) typeErr(path, want string, got kind) *Error {
	if got == kindInvalid {
		if d.s.pos >= len(d.s.buf) {
			return d.s.syntaxErr("unexpected end of input")
		}
		return d.s.syntaxErr("unexpected character %q", d.s.buf[d.s.pos])
	}
	return &Error{Field: path, Reason: ReasonType, Message: "must be " + want + ", got " + got.String()}
}

// bytesVal reads a string value, unescaped; the bytes are valid until the
// next read.
func (d *Decoder) bytesVal(path string) ([]byte, *Error) {
	if k := d.s.peek(); k != kindString {
		return nil, d.typeErr(path, "a string", k)
	}
	raw, escaped, err := d.s.str()
	if err != nil {
		return nil, err
	}
	if escaped {
		d.s.esc = unescape(d.s.esc[:0], raw)
		raw = d.s.esc
	}
	if len(raw) > d.lim.MaxStringLen && utf8.RuneCount(raw) > d.lim.MaxStringLen {
		return nil, newErr(path, ReasonLimit, "longer than %d characters", d.lim.MaxStringLen)
	}
	return raw, nil
}

// stringVal reads a string value and keeps it.
func (d *Decoder) stringVal(path string) (string, *Error) {
	b, err := d.bytesVal(path)
	if err != nil {
		return "", err
	}
	return d.intern(b), nil
}

// idVal reads a string value that must not be empty.
func (d *Decoder) idVal(path string) (string, *Error) {
	b, err := d.bytesVal(path)
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", newErr(path, ReasonValue, "must not be empty")
	}
	return d.intern(b), nil
}

// dottedVal reads a dotted name such as a data category or purpose.
func (d *Decoder) dottedVal(path string) (string, *Error) {
	b, err := d.bytesVal(path)
	if err != nil {
		return "", err
	}
	if !isDotted(b) {
		return "", newErr(path, ReasonValue, "%s is not a dotted lower-case name like \"user.contact.email\"", quote(string(b)))
	}
	return d.intern(b), nil
}

func (d *Decoder) boolVal(path string) (bool, *Error) {
	if k := d.s.peek(); k != kindBool {
		return false, d.typeErr(path, "true or false", k)
	}
	_, v, err := d.s.literal()
	return v, err
}

// countVal reads an integer >= 0 (JSON Schema's integer: any number with no
// fractional part, so 5.0 and 5e2 are integers).
func (d *Decoder) countVal(path string) (int64, *Error) {
	if k := d.s.peek(); k != kindNumber {
		return 0, d.typeErr(path, "an integer", k)
	}
	raw, err := d.s.number()
	if err != nil {
		return 0, err
	}
	n, res := parseCount(raw)
	switch res {
	case countNotInteger:
		return 0, newErr(path, ReasonType, "must be an integer, got %s", raw)
	case countNegative:
		return 0, newErr(path, ReasonValue, "must be >= 0, got %s", raw)
	case countTooLarge:
		return 0, newErr(path, ReasonValue, "must be at most %d", int64(1<<63-1))
	}
	return n, nil
}

// memberFunc decodes the value of an object's member whose key is at the
// cursor (its raw span starts at keyStart) and returns the member's bit in
// the object's seen mask, 0 for a member without one (an unknown key,
// kept with keepUnknown).
type memberFunc func(key []byte, keyStart int) (uint32, *Error)

// members walks the members of the object at the cursor (path names it in
// errors), calling member for each, and returns the mask of the members
// seen; a key seen twice is refused. member is called, not kept, so a
// closure passed here stays on the stack.
func (d *Decoder) members(path string, member memberFunc) (uint32, *Error) {
	if err := d.objectStart(path); err != nil {
		return 0, err
	}
	var seen uint32
	for first := true; ; first = false {
		more, err := d.s.next(first, '}')
		if err != nil || !more {
			return seen, err
		}
		key, ks, err := d.s.key()
		if err != nil {
			return seen, err
		}
		bit, err := member(key, ks)
		if err != nil {
			return seen, err
		}
		if seen&bit != 0 {
			return seen, dupErr(path, key)
		}
		seen |= bit
	}
}

// enumVal reads a string member and maps it with parse; a value parse does
// not know (it returns "") is refused with "... is not one of " + allowed.
func enumVal[T ~string](d *Decoder, path string, parse func([]byte) T, allowed string) (T, *Error) {
	b, err := d.bytesVal(path)
	if err != nil {
		return "", err
	}
	v := parse(b)
	if v == "" {
		return "", newErr(path, ReasonValue, "%s is not one of %s", quote(string(b)), allowed)
	}
	return v, nil
}

func (d *Decoder) objectStart(path string) *Error {
	if k := d.s.peek(); k != kindObject {
		return d.typeErr(path, "an object", k)
	}
	return nil
}

// keepUnknown skips the value at the cursor and records it for Extra.
func (d *Decoder) keepUnknown(obj object, keyStart, depth int) *Error {
	keyEnd := d.s.pos
	// The key's raw span ends at its closing quote; back up over ':' and
	// white space.
	for keyEnd > keyStart && d.s.buf[keyEnd-1] != '"' {
		keyEnd--
	}
	d.s.ws()
	v0 := d.s.pos
	if err := d.s.skip(depth, d.lim.MaxDepth); err != nil {
		if err.Reason == ReasonLimit && err.Field == "" {
			err.Field = objectPaths[obj]
		}
		return err
	}
	d.unk = append(d.unk, unknown{parent: obj, key0: keyStart, key1: keyEnd, val0: v0, val1: d.s.pos})
	return nil
}

func dupErr(path string, key []byte) *Error {
	return &Error{Field: path, Reason: ReasonSyntax, Message: "duplicate key " + quote(string(key))}
}

// Top-level members, as bits of the seen mask.
const (
	fSchema uint32 = 1 << iota
	fEventID
	fTime
	fType
	fAction
	fActor
	fSource
	fData
	fRecipient
	fChannel
	fPurpose
	fLegalBasis
	fOutcome
	fRequest
	fAttributes
)

// eventAt decodes the event object at the cursor. depth is its nesting depth
// in the message; env, when set, fills event_id and time. In plain mode
// (sniff) a top-level "specversion" stops decoding: the message is a
// structured-mode envelope.
func (d *Decoder) eventAt(ev *Event, env *envelope, depth int, sniff bool) *Error {
	seen, err := d.event(ev, depth, sniff)
	if err == nil {
		err = d.finish(ev, env, seen)
	}
	if err != nil {
		return d.errAt(err)
	}
	return nil
}

func (d *Decoder) event(ev *Event, depth int, sniff bool) (uint32, *Error) {
	if err := d.objectStart(""); err != nil {
		if err.Reason == ReasonType {
			err.Message = "the message must be a JSON object, got " + d.s.peek().String()
			err.Reason = ReasonSyntax
		}
		return 0, err
	}
	seen, err := d.members("", func(key []byte, ks int) (bit uint32, err *Error) {
		switch string(key) {
		case "schema":
			b, err := d.bytesVal("schema")
			if err == nil && string(b) != SchemaV1 {
				err = newErr("schema", ReasonVersion, "unsupported schema %s (this decoder reads %q)", quote(string(b)), SchemaV1)
			}
			return fSchema, err
		case "event_id":
			ev.ID, err = d.idVal("event_id")
			return fEventID, err
		case "time":
			ev.Time, err = d.timeVal("time")
			return fTime, err
		case "type":
			ev.Type, err = enumVal(d, "type", parseType, "access, share")
			return fType, err
		case "action":
			ev.Action, err = enumVal(d, "action", parseAction, "read, query, export, download, update, delete, transfer")
			return fAction, err
		case "actor":
			return fActor, d.actor(&ev.Actor, depth+1)
		case "source":
			return fSource, d.source(&ev.Source, depth+1)
		case "data":
			return fData, d.data(&ev.Data, depth+1)
		case "recipient":
			return fRecipient, d.recipient(&ev.Recipient, depth+1)
		case "channel":
			return fChannel, d.channel(&ev.Channel, depth+1)
		case "purpose":
			ev.Purpose, err = d.dottedVal("purpose")
			return fPurpose, err
		case "legal_basis":
			ev.LegalBasis, err = d.stringVal("legal_basis")
			return fLegalBasis, err
		case "outcome":
			ev.Outcome, err = enumVal(d, "outcome", parseOutcome, "success, failure, denied")
			return fOutcome, err
		case "request":
			return fRequest, d.request(&ev.Request, depth+1)
		case "attributes":
			return fAttributes, d.attributes(ev, depth+1)
		case "specversion":
			if sniff {
				return 0, errStructured
			}
		}
		return 0, d.keepUnknown(objTop, ks, depth+1)
	})
	if err != nil {
		return 0, err
	}
	if depth == 1 {
		if err := d.s.end(); err != nil {
			return 0, err
		}
	}
	return seen, nil
}

// errStructured stops a plain-mode decode at a top-level "specversion".
var errStructured = &Error{Reason: ReasonSyntax, Message: "CloudEvents structured mode"}

const (
	aID uint32 = 1 << iota
	aKind
	aRole
	aDepartment
)

func (d *Decoder) actor(a *Actor, depth int) *Error {
	seen, err := d.members("actor", func(key []byte, ks int) (bit uint32, err *Error) {
		switch string(key) {
		case "id":
			a.ID, err = d.idVal("actor.id")
			return aID, err
		case "kind":
			a.Kind, err = enumVal(d, "actor.kind", parseActorKind, "user, service")
			return aKind, err
		case "role":
			a.Role, err = d.stringVal("actor.role")
			return aRole, err
		case "department":
			a.Department, err = d.stringVal("actor.department")
			return aDepartment, err
		}
		return 0, d.keepUnknown(objActor, ks, depth+1)
	})
	if err == nil && seen&aID == 0 {
		return missing("actor.id")
	}
	return err
}

func (d *Decoder) source(s *Source, depth int) *Error {
	seen, err := d.members("source", func(key []byte, ks int) (bit uint32, err *Error) {
		switch string(key) {
		case "system":
			s.System, err = d.idVal("source.system")
			return 1, err
		case "dataset":
			s.Dataset, err = d.stringVal("source.dataset")
			return 2, err
		case "environment":
			s.Environment, err = d.stringVal("source.environment")
			return 4, err
		}
		return 0, d.keepUnknown(objSource, ks, depth+1)
	})
	if err == nil && seen&1 == 0 {
		return missing("source.system")
	}
	return err
}

// Data members, as bits of the seen mask.
const (
	dCategories uint32 = 1 << iota
	dRecords
	dBytes
	dSubjects
	dTruncated
	dSubjectKinds
)

func (d *Decoder) data(x *Data, depth int) *Error {
	_, err := d.members("data", func(key []byte, ks int) (bit uint32, err *Error) {
		switch string(key) {
		case "categories":
			x.Categories, err = d.strArray("data.categories", d.lim.MaxCategories, itemDotted, depth+1)
			return dCategories, err
		case "records":
			x.Records, err = d.countVal("data.records")
			x.HasRecords = true
			return dRecords, err
		case "bytes":
			x.Bytes, err = d.countVal("data.bytes")
			return dBytes, err
		case "subjects":
			x.Subjects, err = d.strArray("data.subjects", d.lim.MaxSubjects, itemID, depth+1)
			return dSubjects, err
		case "subjects_truncated":
			x.SubjectsTruncated, err = d.boolVal("data.subjects_truncated")
			return dTruncated, err
		case "subject_kinds":
			x.SubjectKinds, err = d.strArray("data.subject_kinds", d.lim.MaxSubjectKinds, itemName, depth+1)
			return dSubjectKinds, err
		}
		return 0, d.keepUnknown(objData, ks, depth+1)
	})
	return err
}

// itemCheck says what an array's strings must look like.
type itemCheck uint8

const (
	itemID     itemCheck = iota // non-empty
	itemDotted                  // dotted lower-case name
	itemName                    // one lower-case segment
)

// strArray reads an array of strings. The returned slice points into the
// decoder's scratch (d.strs) until finish copies it out; it is nil when the
// array is empty.
func (d *Decoder) strArray(path string, maxItems int, check itemCheck, depth int) ([]string, *Error) {
	if k := d.s.peek(); k != kindArray {
		return nil, d.typeErr(path, "an array of strings", k)
	}
	if depth > d.lim.MaxDepth {
		return nil, newErr(path, ReasonLimit, "nesting deeper than %d", d.lim.MaxDepth)
	}
	lo := len(d.strs)
	n := 0
	for first := true; ; first = false {
		more, err := d.s.next(first, ']')
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		if n == maxItems {
			if path == "data.subjects" {
				return nil, newErr(path, ReasonLimit, "more than %d subjects: send a sample and set data.subjects_truncated", maxItems)
			}
			return nil, newErr(path, ReasonLimit, "more than %d items", maxItems)
		}
		b, err := d.bytesVal(path)
		if err != nil {
			if err.Reason != ReasonSyntax {
				err.Field = fmt.Sprintf("%s[%d]", path, n)
			}
			return nil, err
		}
		switch check {
		case itemID:
			if len(b) == 0 {
				return nil, newErr(fmt.Sprintf("%s[%d]", path, n), ReasonValue, "must not be empty")
			}
		case itemDotted:
			if !isDotted(b) {
				return nil, newErr(fmt.Sprintf("%s[%d]", path, n), ReasonValue, "%s is not a dotted lower-case name like \"user.contact.email\"", quote(string(b)))
			}
		case itemName:
			if !isName(b) {
				return nil, newErr(fmt.Sprintf("%s[%d]", path, n), ReasonValue, "%s is not a lower-case name like \"customer\"", quote(string(b)))
			}
		}
		d.strs = append(d.strs, d.intern(b))
		n++
	}
	if n == 0 {
		return nil, nil
	}
	// Mark the range; finish replaces it with a copy.
	return d.strs[lo:len(d.strs):len(d.strs)], nil
}

// Recipient members, as bits of the seen mask.
const (
	rID uint32 = 1 << iota
	rName
	rDomain
	rCountry
	rKind
)

func (d *Decoder) recipient(r *Recipient, depth int) *Error {
	seen, err := d.members("recipient", func(key []byte, ks int) (bit uint32, err *Error) {
		switch string(key) {
		case "id":
			r.ID, err = d.idVal("recipient.id")
			return rID, err
		case "name":
			r.Name, err = d.idVal("recipient.name")
			return rName, err
		case "domain":
			r.Domain, err = d.idVal("recipient.domain")
			return rDomain, err
		case "country":
			b, err := d.bytesVal("recipient.country")
			if err == nil {
				if len(b) != 2 || b[0] < 'A' || b[0] > 'Z' || b[1] < 'A' || b[1] > 'Z' {
					err = newErr("recipient.country", ReasonValue, "%s is not an ISO 3166-1 alpha-2 code like \"DE\"", quote(string(b)))
				} else {
					r.Country = d.intern(b)
				}
			}
			return rCountry, err
		case "kind":
			r.Kind, err = enumVal(d, "recipient.kind", parseRecipientKind, "partner, processor, data_subject, authority, affiliate, internal, unknown")
			return rKind, err
		}
		return 0, d.keepUnknown(objRecipient, ks, depth+1)
	})
	if err != nil {
		return err
	}
	if seen&(rID|rName|rDomain) == 0 {
		return newErr("recipient", ReasonMissing, "needs at least one of id, name, domain")
	}
	if r.Kind == "" {
		r.Kind = RecipientUnknown
	}
	return nil
}

func (d *Decoder) channel(c *Channel, depth int) *Error {
	_, err := d.members("channel", func(key []byte, ks int) (bit uint32, err *Error) {
		switch string(key) {
		case "kind":
			c.Kind, err = enumVal(d, "channel.kind", parseChannelKind, "api, https, sftp, email, s3, http, ftp, other")
			return 1, err
		case "encrypted":
			c.Encrypted, err = d.boolVal("channel.encrypted")
			c.EncryptedSet = true
			return 2, err
		}
		return 0, d.keepUnknown(objChannel, ks, depth+1)
	})
	return err
}

func (d *Decoder) request(r *Request, depth int) *Error {
	_, err := d.members("request", func(key []byte, ks int) (bit uint32, err *Error) {
		switch string(key) {
		case "id":
			r.ID, err = d.stringVal("request.id")
			return 1, err
		case "session":
			r.Session, err = d.stringVal("request.session")
			return 2, err
		case "ticket":
			r.Ticket, err = d.stringVal("request.ticket")
			return 4, err
		case "client":
			return 8, d.client(r, depth+1)
		}
		return 0, d.keepUnknown(objRequest, ks, depth+1)
	})
	return err
}

func (d *Decoder) client(r *Request, depth int) *Error {
	if err := d.objectStart("request.client"); err != nil {
		return err
	}
	if depth > d.lim.MaxDepth {
		return newErr("request.client", ReasonLimit, "nesting deeper than %d", d.lim.MaxDepth)
	}
	_, err := d.members("request.client", func(key []byte, ks int) (bit uint32, err *Error) {
		switch string(key) {
		case "ip":
			r.ClientIP, err = d.stringVal("request.client.ip")
			return 1, err
		case "user_agent":
			r.UserAgent, err = d.stringVal("request.client.user_agent")
			return 2, err
		}
		return 0, d.keepUnknown(objClient, ks, depth+1)
	})
	return err
}

// attributes reads the free string map into d.attrs; finish sorts and
// copies it.
func (d *Decoder) attributes(ev *Event, depth int) *Error {
	if err := d.objectStart("attributes"); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := d.s.next(first, '}')
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
		key, _, err := d.s.key()
		if err != nil {
			return err
		}
		if len(d.attrs) == d.lim.MaxAttributes {
			return newErr("attributes", ReasonLimit, "more than %d attributes", d.lim.MaxAttributes)
		}
		if len(key) == 0 {
			return newErr("attributes", ReasonValue, "keys must not be empty")
		}
		if len(key) > d.lim.MaxStringLen && utf8.RuneCount(key) > d.lim.MaxStringLen {
			return newErr("attributes", ReasonLimit, "key longer than %d characters", d.lim.MaxStringLen)
		}
		k := d.intern(key)
		v, err := d.stringVal("attributes")
		if err != nil {
			if err.Reason == ReasonType || err.Reason == ReasonLimit {
				err.Message = "value of " + quote(k) + " " + err.Message
			}
			return err
		}
		d.attrs = append(d.attrs, Attribute{Key: k, Value: v})
	}
}

// finish applies the envelope fallbacks and defaults, copies the scratch
// slices out and builds Extra.
func (d *Decoder) finish(ev *Event, env *envelope, seen uint32) *Error {
	if env != nil {
		if seen&fEventID == 0 && env.id != "" {
			ev.ID = env.id
			seen |= fEventID
		}
		if seen&fTime == 0 && env.hasTime {
			ev.Time = env.time
			seen |= fTime
		}
	}
	ev.Schema = SchemaV1
	if ev.Actor.Kind == "" {
		ev.Actor.Kind = ActorUser
	}
	if ev.Outcome == "" {
		ev.Outcome = OutcomeSuccess
	}
	// One allocation for the three string slices.
	if n := len(ev.Data.Categories) + len(ev.Data.Subjects) + len(ev.Data.SubjectKinds); n > 0 {
		all := make([]string, 0, n)
		take := func(s []string) []string {
			if len(s) == 0 {
				return nil
			}
			lo := len(all)
			all = append(all, s...)
			return all[lo:len(all):len(all)]
		}
		ev.Data.Categories = take(ev.Data.Categories)
		ev.Data.Subjects = take(ev.Data.Subjects)
		ev.Data.SubjectKinds = take(ev.Data.SubjectKinds)
	}
	if len(d.attrs) > 0 {
		slices.SortFunc(d.attrs, func(a, b Attribute) int { return strings.Compare(a.Key, b.Key) })
		for i := 1; i < len(d.attrs); i++ {
			if d.attrs[i].Key == d.attrs[i-1].Key {
				return dupErr("attributes", []byte(d.attrs[i].Key))
			}
		}
		ev.Attributes = slices.Clone(d.attrs)
	}
	if len(d.unk) > 0 {
		if err := d.buildExtra(ev); err != nil {
			return err
		}
	}
	if err := check(ev, seen); err != nil {
		return err
	}
	return nil
}

// buildExtra writes the unknown members as one JSON object that mirrors the
// event's shape: top-level unknown fields by name, unknown fields of a known
// object under that object's name (e.g. {"tenant":"t1","actor":{"team":"x"},
// "request":{"client":{"os":"linux"}}}). Values are copied verbatim.
func (d *Decoder) buildExtra(ev *Event) *Error {
	var has [numObjects]bool
	for _, u := range d.unk {
		for o := u.parent; ; o = objectParent(o) {
			has[o] = true
			if o == objTop {
				break
			}
		}
	}
	for o := objTop; o < numObjects; o++ {
		if err := d.checkDupUnknown(o); err != nil {
			return err
		}
	}
	d.extra = d.writeObject(d.extra[:0], objTop, &has)
	ev.Extra = slices.Clone(d.extra)
	return nil
}

func (d *Decoder) writeObject(b []byte, o object, has *[numObjects]bool) []byte {
	b = append(b, '{')
	n := 0
	for _, u := range d.unk {
		if u.parent != o {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, d.s.buf[u.key0:u.key1]...)
		b = append(b, ':')
		b = append(b, d.s.buf[u.val0:u.val1]...)
		n++
	}
	for c := objActor; c < numObjects; c++ {
		if !has[c] || objectParent(c) != o {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, objectNames[c]...)
		b = append(b, '"', ':')
		b = d.writeObject(b, c, has)
		n++
	}
	return append(b, '}')
}

// checkDupUnknown rejects an unknown key repeated within one object.
func (d *Decoder) checkDupUnknown(o object) *Error {
	var keys map[string]struct{}
	n := 0
	for i, u := range d.unk {
		if u.parent != o {
			continue
		}
		k := d.unknownKey(u)
		n++
		if n <= 16 {
			for _, v := range d.unk[:i] {
				if v.parent == o && d.unknownKey(v) == k {
					return dupErr(objectPaths[o], []byte(k))
				}
			}
			continue
		}
		if keys == nil {
			keys = make(map[string]struct{})
			for _, v := range d.unk[:i] {
				if v.parent == o {
					keys[d.unknownKey(v)] = struct{}{}
				}
			}
		}
		if _, ok := keys[k]; ok {
			return dupErr(objectPaths[o], []byte(k))
		}
		keys[k] = struct{}{}
	}
	return nil
}

// unknownKey returns an unknown member's key, unescaped.
func (d *Decoder) unknownKey(u unknown) string {
	raw := d.s.buf[u.key0+1 : u.key1-1]
	for _, c := range raw {
		if c == '\\' {
			return string(unescape(nil, raw))
		}
	}
	return unsafe.String(unsafe.SliceData(raw), len(raw))
}

// hasTopKey reports whether the JSON object in b has the top-level key k.
func hasTopKey(b []byte, k string) bool {
	s := scanner{buf: b}
	if s.peek() != kindObject {
		return false
	}
	for first := true; ; first = false {
		more, err := s.next(first, '}')
		if err != nil || !more {
			return false
		}
		key, _, err := s.key()
		if err != nil {
			return false
		}
		if string(key) == k {
			return true
		}
		if s.skip(2, 1<<30) != nil {
			return false
		}
	}
}

// timeVal reads an RFC 3339 time.
func (d *Decoder) timeVal(path string) (time.Time, *Error) {
	b, err := d.bytesVal(path)
	if err != nil {
		return time.Time{}, err
	}
	t, ok := parseTime(b)
	if !ok {
		return time.Time{}, newErr(path, ReasonValue, "%s is not an RFC 3339 time like \"2026-03-01T09:30:00Z\"", quote(string(b)))
	}
	return t, nil
}
