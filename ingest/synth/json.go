package synth

import (
	"slices"
	"strconv"
	"time"
)

// maxSubjects is how many subject ids an event lists at most.
const maxSubjects = 5

// ev is one event before it is written as JSON. Strings point into the
// catalogue, so filling an ev allocates nothing.
type ev struct {
	t          int64 // event time, ns since the epoch
	idHi, idLo uint64
	typ        string
	action     string
	actor      *actor
	ds         *dataset
	staging    bool
	noEnv      bool
	cats       []string // used when catJSON is nil
	catJSON    []byte
	records    int64 // -1: absent
	bytes      int64 // 0: absent
	skind      string
	subj       [maxSubjects]int32
	nSubj      int
	trunc      bool
	rID, rName string
	rDomain    string
	rCountry   string
	rKind      string
	chKind     string
	enc        int8 // -1 absent, 0 false, 1 true
	purpose    string
	legal      string
	outcome    string // "" absent
	schema     bool
	reqID      uint64
	session    uint64 // 0: absent
	ticket     string
	ticketNo   int
	client     bool
	attrs      []byte // "attributes":{...}, nil for none

	trace    uint64 // unknown top-level field trace_id, 0 for none
	pipeline bool   // unknown nested field x_pipeline
}

func sortEvents(es []*ev) {
	slices.SortStableFunc(es, func(a, b *ev) int {
		switch {
		case a.t < b.t:
			return -1
		case a.t > b.t:
			return 1
		}
		return 0
	})
}

const hexdigits = "0123456789abcdef"

func appendHex(b []byte, x uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, hexdigits[(x>>(uint(i)*4))&0xf])
	}
	return b
}

// appendUUID writes a version-4-shaped UUID from 128 bits.
func appendUUID(b []byte, hi, lo uint64) []byte {
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
	b = appendHex(b, hi>>32, 8)
	b = append(b, '-')
	b = appendHex(b, hi>>16, 4)
	b = append(b, '-')
	b = appendHex(b, hi, 4)
	b = append(b, '-')
	b = appendHex(b, lo>>48, 4)
	b = append(b, '-')
	return appendHex(b, lo, 12)
}

// appendTime writes t (ns since the epoch, UTC) as RFC 3339 with
// milliseconds.
func appendTime(b []byte, t int64) []byte {
	const day = int64(24 * time.Hour)
	d := t / day
	ns := t - d*day
	y, m, dd := time.Unix(d*86400, 0).UTC().Date()
	b = appendPad(b, y, 4)
	b = append(b, '-')
	b = appendPad(b, int(m), 2)
	b = append(b, '-')
	b = appendPad(b, dd, 2)
	b = append(b, 'T')
	s := ns / int64(time.Second)
	b = appendPad(b, int(s/3600), 2)
	b = append(b, ':')
	b = appendPad(b, int(s/60%60), 2)
	b = append(b, ':')
	b = appendPad(b, int(s%60), 2)
	b = append(b, '.')
	b = appendPad(b, int(ns/int64(time.Millisecond)%1000), 3)
	return append(b, 'Z')
}

func appendPad(b []byte, v, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendInt(tmp[:0], int64(v), 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func appendStr(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendSubject writes a subject id: prefix and at least 7 digits.
func appendSubject(b []byte, prefix string, n int32) []byte {
	b = append(b, '"')
	b = append(b, prefix...)
	b = appendPad(b, int(n), 7)
	return append(b, '"')
}

// appendEvent writes e as one JSON object, shaped by s (nil: as it is; see
// size.go). Every string it writes comes from the catalogue or is
// generated from digits and hex, so none needs escaping (a test checks the
// catalogue).
func appendEvent(b []byte, e *ev, s *shape) []byte {
	b = append(b, '{')
	if e.schema && !s.drops(dropSchema) {
		b = append(b, `"schema":"custos.event/v1",`...)
	}
	b = append(b, `"event_id":"`...)
	b = appendUUID(b, e.idHi, e.idLo)
	b = append(b, `","time":"`...)
	b = appendTime(b, e.t)
	b = append(b, `","type":"`...)
	b = append(b, e.typ...)
	b = append(b, `","action":"`...)
	b = append(b, e.action...)
	b = append(b, `",`...)
	if s.drops(dropActorDetail) {
		b = appendLeanActor(b, e.actor)
	} else {
		b = append(b, e.actor.actorJSON...)
	}
	b = append(b, ',')
	if e.staging {
		b = append(b, e.ds.stgJSON...)
	} else if e.noEnv || s.drops(dropEnv) {
		b = append(b, e.ds.bareJSON...)
	} else {
		b = append(b, e.ds.srcJSON...)
	}
	b = append(b, `,"data":{"categories":`...)
	if e.catJSON != nil {
		b = append(b, e.catJSON...)
	} else {
		b = append(b, catArray(e.cats)...)
	}
	if e.records >= 0 && !(e.records == 1 && s.drops(dropOneRecord) && singleRecordAction(e.action)) {
		b = append(b, `,"records":`...)
		b = strconv.AppendInt(b, e.records, 10)
	}
	if e.bytes > 0 && !s.drops(dropBytes) {
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, e.bytes, 10)
	}
	if e.nSubj > 0 {
		b = append(b, `,"subjects":[`...)
		n, trunc := e.nSubj, e.trunc
		if n > 1 && s.drops(dropSubjectSample) && !e.statusSubjects() {
			n, trunc = 1, true
		}
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendSubject(b, e.ds.prefix, e.subj[i])
		}
		if s != nil && s.subjects > 0 {
			b = s.appendSubjects(b, e)
			trunc = e.records > int64(e.nSubj+s.subjects)
		}
		b = append(b, ']')
		if trunc {
			b = append(b, `,"subjects_truncated":true`...)
		}
	}
	if !s.drops(dropSubjectKinds) {
		b = append(b, ',')
		b = append(b, e.ds.skJSON...)
	}
	b = append(b, '}')
	if e.typ == "share" {
		b = append(b, `,"recipient":{`...)
		if e.rID != "" {
			b = append(b, `"id":`...)
			b = appendStr(b, e.rID)
			b = append(b, ',')
		}
		if e.rName != "" && !s.drops(dropRecipientName) {
			b = append(b, `"name":`...)
			b = appendStr(b, e.rName)
			b = append(b, ',')
		}
		b = append(b, `"domain":`...)
		b = appendStr(b, e.rDomain)
		if e.rCountry != "" {
			b = append(b, `,"country":`...)
			b = appendStr(b, e.rCountry)
		}
		b = append(b, `,"kind":`...)
		b = appendStr(b, e.rKind)
		b = append(b, '}')
	}
	if e.chKind != "" {
		b = append(b, `,"channel":{"kind":`...)
		b = appendStr(b, e.chKind)
		switch e.enc {
		case 0:
			b = append(b, `,"encrypted":false`...)
		case 1:
			b = append(b, `,"encrypted":true`...)
		}
		b = append(b, '}')
	}
	if e.purpose != "" {
		b = append(b, `,"purpose":`...)
		b = appendStr(b, e.purpose)
	}
	if e.legal != "" && !s.drops(dropLegal) {
		b = append(b, `,"legal_basis":`...)
		b = appendStr(b, e.legal)
	}
	if e.outcome != "" && !(e.outcome == "success" && s.drops(dropOutcome)) {
		b = append(b, `,"outcome":`...)
		b = appendStr(b, e.outcome)
	}
	if !s.drops(dropRequest) {
		b = appendRequest(b, e, s)
	}
	b = appendAttrs(b, e, s)
	if e.trace != 0 && !s.drops(dropUnknown) {
		b = append(b, `,"trace_id":"`...)
		b = appendHex(b, e.trace, 16)
		b = appendHex(b, ^e.trace, 16)
		b = append(b, '"')
	}
	if e.pipeline && !s.drops(dropUnknown) {
		b = append(b, `,"x_pipeline":{"stage":"edge-relay","hops":2,"sampled":false}`...)
	}
	return append(b, '}')
}

// appendRequest writes the request object.
func appendRequest(b []byte, e *ev, s *shape) []byte {
	b = append(b, `,"request":{"id":"req-`...)
	b = appendHex(b, e.reqID, 16)
	b = append(b, '"')
	if e.session != 0 {
		b = append(b, `,"session":"sess-`...)
		b = appendHex(b, e.session, 12)
		b = append(b, '"')
	}
	if e.ticket != "" {
		b = append(b, `,"ticket":"`...)
		b = append(b, e.ticket...)
		b = strconv.AppendInt(b, int64(e.ticketNo), 10)
		b = append(b, '"')
	}
	if e.client && !s.drops(dropClient) || s != nil && s.client {
		b = append(b, `,"client":{"ip":`...)
		b = appendStr(b, e.actor.ip)
		b = append(b, `,"user_agent":`...)
		b = appendStr(b, e.actor.ua)
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendAttrs writes the attributes object: the event's own, then the
// shape's.
func appendAttrs(b []byte, e *ev, s *shape) []byte {
	own := e.attrs
	if s.drops(dropAttrs) {
		own = nil
	}
	var more []byte
	if s != nil {
		more = s.attrs
	}
	switch {
	case len(more) == 0:
		if own != nil {
			b = append(b, ',')
			b = append(b, own...)
		}
		return b
	case own == nil:
		b = append(b, `,"attributes":{`...)
	default:
		b = append(b, ',')
		b = append(b, own[:len(own)-1]...) // without its closing brace
		b = append(b, ',')
	}
	b = append(b, more...)
	return append(b, '}')
}

// appendLeanActor writes the actor object without the department, and
// without the kind when it is the default (user).
func appendLeanActor(b []byte, a *actor) []byte {
	b = append(b, `"actor":{"id":`...)
	b = appendStr(b, a.id)
	if a.service {
		b = append(b, `,"kind":"service"`...)
	}
	if a.role != nil && a.role.name != "" {
		b = append(b, `,"role":`...)
		b = appendStr(b, a.role.name)
	}
	return append(b, '}')
}

// appendSubjects writes the shape's additional subject ids, drawn from
// the dataset's population (never the subjects of the status stream).
func (s *shape) appendSubjects(b []byte, e *ev) []byte {
	h := mix64(s.seed ^ 0x5ab1ec75)
	for range s.subjects {
		h = mix64(h + 0x9e3779b97f4a7c15)
		b = append(b, ',')
		b = appendSubject(b, e.ds.prefix, int32(h%uint64(e.ds.nSubj)))
	}
	return b
}

// singleRecordAction reports whether an action on one record may leave
// data.records out (moving actions must send it, queries count what
// they matched).
func singleRecordAction(action string) bool {
	return action == "read" || action == "update" || action == "delete"
}

// statusSubjects reports whether e lists subjects of the status stream
// (outside the dataset's population): an incident's, whose sample must
// stay whole.
func (e *ev) statusSubjects() bool {
	for _, x := range e.subj[:e.nSubj] {
		if int(x) >= e.ds.nSubj {
			return true
		}
	}
	return false
}
