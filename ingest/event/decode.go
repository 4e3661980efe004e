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
// those buffers nor the message: every string and slice of a decoded Event
// is a fresh copy that stays valid after the next Decode and after the
// message buffer is reused.
type Decoder struct {
	lim   Limits
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

// intern copies b into the event's arena and returns it as a string. The
// arena is sized to the message, which bounds the total of its (unescaped)
// strings, so it is allocated once per event.
func (d *Decoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(d.arena)-len(d.arena) < len(b) {
		d.arena = make([]byte, 0, max(len(d.s.buf), len(b)))
	}
	start := len(d.arena)
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[start], len(b))
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

// members iterates over an object's members. For each key it calls field,
// which must consume the value; it returns false for keys it does not know,
// which are then kept as unknown members of obj. seen catches repeated keys.
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
	var seen uint32
	first := true
	for {
		more, err := d.s.next(first, '}')
		first = false
		if err != nil {
			return 0, err
		}
		if !more {
			break
		}
		key, ks2, err := d.s.key()
		if err != nil {
			return 0, err
		}
		var bit uint32
		switch string(key) {
		case "schema":
			bit = fSchema
			b, err := d.bytesVal("schema")
			if err != nil {
				return 0, err
			}
			if string(b) != SchemaV1 {
				return 0, newErr("schema", ReasonVersion, "unsupported schema %s (this decoder reads %q)", quote(string(b)), SchemaV1)
			}
		case "event_id":
			bit = fEventID
			if ev.ID, err = d.idVal("event_id"); err != nil {
				return 0, err
			}
		case "time":
			bit = fTime
			if ev.Time, err = d.timeVal("time"); err != nil {
				return 0, err
			}
		case "type":
			bit = fType
			b, err := d.bytesVal("type")
			if err != nil {
				return 0, err
			}
			if ev.Type = parseType(b); ev.Type == "" {
				return 0, newErr("type", ReasonValue, "%s is not one of access, share", quote(string(b)))
			}
		case "action":
			bit = fAction
			b, err := d.bytesVal("action")
			if err != nil {
				return 0, err
			}
			if ev.Action = parseAction(b); ev.Action == "" {
				return 0, newErr("action", ReasonValue, "%s is not one of read, query, export, download, update, delete, transfer", quote(string(b)))
			}
		case "actor":
			bit = fActor
			err = d.actor(&ev.Actor, depth+1)
		case "source":
			bit = fSource
			err = d.source(&ev.Source, depth+1)
		case "data":
			bit = fData
			err = d.data(&ev.Data, depth+1)
		case "recipient":
			bit = fRecipient
			err = d.recipient(&ev.Recipient, depth+1)
		case "channel":
			bit = fChannel
			err = d.channel(&ev.Channel, depth+1)
		case "purpose":
			bit = fPurpose
			ev.Purpose, err = d.dottedVal("purpose")
		case "legal_basis":
			bit = fLegalBasis
			ev.LegalBasis, err = d.stringVal("legal_basis")
		case "outcome":
			bit = fOutcome
			b, err := d.bytesVal("outcome")
			if err != nil {
				return 0, err
			}
			if ev.Outcome = parseOutcome(b); ev.Outcome == "" {
				return 0, newErr("outcome", ReasonValue, "%s is not one of success, failure, denied", quote(string(b)))
			}
		case "request":
			bit = fRequest
			err = d.request(&ev.Request, depth+1)
		case "attributes":
			bit = fAttributes
			err = d.attributes(ev, depth+1)
		case "specversion":
			if sniff {
				return 0, errStructured
			}
			err = d.keepUnknown(objTop, ks2, depth+1)
		default:
			err = d.keepUnknown(objTop, ks2, depth+1)
		}
		if err != nil {
			return 0, err
		}
		if seen&bit != 0 {
			return 0, dupErr("", key)
		}
		seen |= bit
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

func (d *Decoder) actor(a *Actor, depth int) (err *Error) {
	if err := d.objectStart("actor"); err != nil {
		return err
	}
	var seen uint32
	for first := true; ; first = false {
		more, err := d.s.next(first, '}')
		if err != nil || !more {
			if err == nil && seen&aID == 0 {
				return missing("actor.id")
			}
			return err
		}
		key, ks, err := d.s.key()
		if err != nil {
			return err
		}
		var bit uint32
		switch string(key) {
		case "id":
			bit = aID
			a.ID, err = d.idVal("actor.id")
		case "kind":
			bit = aKind
			var b []byte
			if b, err = d.bytesVal("actor.kind"); err == nil {
				switch string(b) {
				case "user":
					a.Kind = ActorUser
				case "service":
					a.Kind = ActorService
				default:
					err = newErr("actor.kind", ReasonValue, "%s is not one of user, service", quote(string(b)))
				}
			}
		case "role":
			bit = aRole
			a.Role, err = d.stringVal("actor.role")
		case "department":
			bit = aDepartment
			a.Department, err = d.stringVal("actor.department")
		default:
			err = d.keepUnknown(objActor, ks, depth+1)
		}
		if err != nil {
			return err
		}
		if seen&bit != 0 {
			return dupErr("actor", key)
		}
		seen |= bit
	}
}

func (d *Decoder) source(s *Source, depth int) (err *Error) {
	if err := d.objectStart("source"); err != nil {
		return err
	}
	var seen uint32
	for first := true; ; first = false {
		more, err := d.s.next(first, '}')
		if err != nil || !more {
			if err == nil && seen&1 == 0 {
				return missing("source.system")
			}
			return err
		}
		key, ks, err := d.s.key()
		if err != nil {
			return err
		}
		var bit uint32
		switch string(key) {
		case "system":
			bit = 1
			s.System, err = d.idVal("source.system")
		case "dataset":
			bit = 2
			s.Dataset, err = d.stringVal("source.dataset")
		case "environment":
			bit = 4
			s.Environment, err = d.stringVal("source.environment")
		default:
			err = d.keepUnknown(objSource, ks, depth+1)
		}
		if err != nil {
			return err
		}
		if seen&bit != 0 {
			return dupErr("source", key)
		}
		seen |= bit
	}
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

func (d *Decoder) data(x *Data, depth int) (err *Error) {
	if err := d.objectStart("data"); err != nil {
		return err
	}
	var seen uint32
	for first := true; ; first = false {
		more, err := d.s.next(first, '}')
		if err != nil || !more {
			return err
		}
		key, ks, err := d.s.key()
		if err != nil {
			return err
		}
		var bit uint32
		switch string(key) {
		case "categories":
			bit = dCategories
			x.Categories, err = d.strArray("data.categories", d.lim.MaxCategories, itemDotted, depth+1)
		case "records":
			bit = dRecords
			x.Records, err = d.countVal("data.records")
			x.HasRecords = true
		case "bytes":
			bit = dBytes
			x.Bytes, err = d.countVal("data.bytes")
		case "subjects":
			bit = dSubjects
			x.Subjects, err = d.strArray("data.subjects", d.lim.MaxSubjects, itemID, depth+1)
		case "subjects_truncated":
			bit = dTruncated
			x.SubjectsTruncated, err = d.boolVal("data.subjects_truncated")
		case "subject_kinds":
			bit = dSubjectKinds
			x.SubjectKinds, err = d.strArray("data.subject_kinds", d.lim.MaxSubjectKinds, itemName, depth+1)
		default:
			err = d.keepUnknown(objData, ks, depth+1)
		}
		if err != nil {
			return err
		}
		if seen&bit != 0 {
			return dupErr("data", key)
		}
		seen |= bit
	}
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

func (d *Decoder) recipient(r *Recipient, depth int) (err *Error) {
	if err := d.objectStart("recipient"); err != nil {
		return err
	}
	var seen uint32
	for first := true; ; first = false {
		more, err := d.s.next(first, '}')
		if err != nil || !more {
			if err == nil {
				if seen&(rID|rName|rDomain) == 0 {
					return newErr("recipient", ReasonMissing, "needs at least one of id, name, domain")
				}
				if r.Kind == "" {
					r.Kind = RecipientUnknown
				}
			}
			return err
		}
		key, ks, err := d.s.key()
		if err != nil {
			return err
		}
		var bit uint32
		switch string(key) {
		case "id":
			bit = rID
			r.ID, err = d.idVal("recipient.id")
		case "name":
			bit = rName
			r.Name, err = d.idVal("recipient.name")
		case "domain":
			bit = rDomain
			r.Domain, err = d.idVal("recipient.domain")
		case "country":
			bit = rCountry
			var b []byte
			if b, err = d.bytesVal("recipient.country"); err == nil {
				if len(b) != 2 || b[0] < 'A' || b[0] > 'Z' || b[1] < 'A' || b[1] > 'Z' {
					err = newErr("recipient.country", ReasonValue, "%s is not an ISO 3166-1 alpha-2 code like \"DE\"", quote(string(b)))
				} else {
					r.Country = d.intern(b)
				}
			}
		case "kind":
			bit = rKind
			var b []byte
			if b, err = d.bytesVal("recipient.kind"); err == nil {
				if r.Kind = parseRecipientKind(b); r.Kind == "" {
					err = newErr("recipient.kind", ReasonValue, "%s is not one of partner, processor, data_subject, authority, affiliate, internal, unknown", quote(string(b)))
				}
			}
		default:
			err = d.keepUnknown(objRecipient, ks, depth+1)
		}
		if err != nil {
			return err
		}
		if seen&bit != 0 {
			return dupErr("recipient", key)
		}
		seen |= bit
	}
}

func (d *Decoder) channel(c *Channel, depth int) (err *Error) {
	if err := d.objectStart("channel"); err != nil {
		return err
	}
	var seen uint32
	for first := true; ; first = false {
		more, err := d.s.next(first, '}')
		if err != nil || !more {
			return err
		}
		key, ks, err := d.s.key()
		if err != nil {
			return err
		}
		var bit uint32
		switch string(key) {
		case "kind":
			bit = 1
			var b []byte
			if b, err = d.bytesVal("channel.kind"); err == nil {
				if c.Kind = parseChannelKind(b); c.Kind == "" {
					err = newErr("channel.kind", ReasonValue, "%s is not one of api, https, sftp, email, s3, http, ftp, other", quote(string(b)))
				}
			}
		case "encrypted":
			bit = 2
			c.Encrypted, err = d.boolVal("channel.encrypted")
			c.EncryptedSet = true
		default:
			err = d.keepUnknown(objChannel, ks, depth+1)
		}
		if err != nil {
			return err
		}
		if seen&bit != 0 {
			return dupErr("channel", key)
		}
		seen |= bit
	}
}

func (d *Decoder) request(r *Request, depth int) (err *Error) {
	if err := d.objectStart("request"); err != nil {
		return err
	}
	var seen uint32
	for first := true; ; first = false {
		more, err := d.s.next(first, '}')
		if err != nil || !more {
			return err
		}
		key, ks, err := d.s.key()
		if err != nil {
			return err
		}
		var bit uint32
		switch string(key) {
		case "id":
			bit = 1
			r.ID, err = d.stringVal("request.id")
		case "session":
			bit = 2
			r.Session, err = d.stringVal("request.session")
		case "ticket":
			bit = 4
			r.Ticket, err = d.stringVal("request.ticket")
		case "client":
			bit = 8
			err = d.client(r, depth+1)
		default:
			err = d.keepUnknown(objRequest, ks, depth+1)
		}
		if err != nil {
			return err
		}
		if seen&bit != 0 {
			return dupErr("request", key)
		}
		seen |= bit
	}
}

func (d *Decoder) client(r *Request, depth int) (err *Error) {
	if err := d.objectStart("request.client"); err != nil {
		return err
	}
	if depth > d.lim.MaxDepth {
		return newErr("request.client", ReasonLimit, "nesting deeper than %d", d.lim.MaxDepth)
	}
	var seen uint32
	for first := true; ; first = false {
		more, err := d.s.next(first, '}')
		if err != nil || !more {
			return err
		}
		key, ks, err := d.s.key()
		if err != nil {
			return err
		}
		var bit uint32
		switch string(key) {
		case "ip":
			bit = 1
			r.ClientIP, err = d.stringVal("request.client.ip")
		case "user_agent":
			bit = 2
			r.UserAgent, err = d.stringVal("request.client.user_agent")
		default:
			err = d.keepUnknown(objClient, ks, depth+1)
		}
		if err != nil {
			return err
		}
		if seen&bit != 0 {
			return dupErr("request.client", key)
		}
		seen |= bit
	}
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
