package event

import (
	"strings"
	"time"
)

// CloudEvents 1.0 support.
//
// Structured mode: the message is a JSON object with specversion "1.0", id,
// source, type and data (the event, a JSON object); time, datacontenttype,
// dataschema, subject and extension attributes are optional. A top-level
// "specversion" key is what marks a message as an envelope.
//
// Binary mode: the Kafka headers carry the attributes (ce_specversion,
// ce_id, ce_source, ce_type, ce_time, ...; content-type for
// datacontenttype) and the message value is the event.
//
// In both modes the envelope's id fills event_id and its time fills time
// when the event lacks them; the event's own fields win when both are set.
// Nothing else maps: source, type, subject, dataschema and extensions are
// checked for well-formedness and then dropped (CloudEvents' source and type
// name the producer and the kind of message, not the contract's
// source.system and type). data_base64 and non-JSON content types are
// rejected.

// envelope is what the event takes from a CloudEvents envelope.
type envelope struct {
	id      string
	time    time.Time
	hasTime bool
}

// isJSONContentType accepts application/json, text/json and any +json type,
// with parameters.
func isJSONContentType(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.ToLower(strings.TrimSpace(ct))
	return ct == "application/json" || ct == "text/json" || strings.HasSuffix(ct, "+json")
}

// binaryEnvelope reads a binary-mode envelope from the headers; it returns
// nil when there is no ce_specversion header.
func (d *Decoder) binaryEnvelope(headers []Header) (*envelope, *Error) {
	var spec, id, source, typ, tm, ct []byte
	var hasSpec, hasID, hasSource, hasType, hasTime, hasCT bool
	for _, h := range headers {
		switch h.Key {
		case "ce_specversion":
			spec, hasSpec = h.Value, true
		case "ce_id":
			id, hasID = h.Value, true
		case "ce_source":
			source, hasSource = h.Value, true
		case "ce_type":
			typ, hasType = h.Value, true
		case "ce_time":
			tm, hasTime = h.Value, true
		case "content-type":
			ct, hasCT = h.Value, true
		}
	}
	if !hasSpec {
		return nil, nil
	}
	if string(spec) != "1.0" {
		return nil, newErr("ce_specversion", ReasonVersion, "unsupported CloudEvents version %s (want \"1.0\")", quote(string(spec)))
	}
	switch {
	case !hasID || len(id) == 0:
		return nil, missing("ce_id")
	case !hasSource || len(source) == 0:
		return nil, missing("ce_source")
	case !hasType || len(typ) == 0:
		return nil, missing("ce_type")
	}
	if hasCT && !isJSONContentType(string(ct)) {
		return nil, newErr("content-type", ReasonValue, "%s is not JSON", quote(string(ct)))
	}
	if len(id) > d.lim.MaxStringLen {
		return nil, newErr("ce_id", ReasonLimit, "longer than %d characters", d.lim.MaxStringLen)
	}
	env := &envelope{id: d.intern(id)}
	if hasTime {
		t, ok := parseTime(tm)
		if !ok {
			return nil, newErr("ce_time", ReasonValue, "%s is not an RFC 3339 time like \"2026-03-01T09:30:00Z\"", quote(string(tm)))
		}
		env.time, env.hasTime = t, true
	}
	return env, nil
}

// structured decodes a structured-mode envelope whose data is the event.
func (d *Decoder) structured(ev *Event) *Error {
	env, dataAt, err := d.envelopeObject()
	if err != nil {
		return err
	}
	d.s.pos = dataAt
	d.pre = "data."
	return d.eventAt(ev, env, 2, false)
}

// Envelope attributes, as bits of the seen mask.
const (
	ceSpec uint32 = 1 << iota
	ceID
	ceSource
	ceType
	ceTime
	ceData
	ceContentType
	ceSchema
	ceSubject
)

// envelopeObject reads the envelope's attributes, checks the end of the
// message and returns the offset of data.
func (d *Decoder) envelopeObject() (*envelope, int, *Error) {
	env := &envelope{}
	dataAt := -1
	var seen uint32
	for first := true; ; first = false {
		more, err := d.s.next(first, '}')
		if err != nil {
			return nil, 0, err
		}
		if !more {
			break
		}
		key, _, err := d.s.key()
		if err != nil {
			return nil, 0, err
		}
		var bit uint32
		switch string(key) {
		case "specversion":
			bit = ceSpec
			b, err := d.bytesVal("specversion")
			if err != nil {
				return nil, 0, err
			}
			if string(b) != "1.0" {
				return nil, 0, newErr("specversion", ReasonVersion, "unsupported CloudEvents version %s (want \"1.0\")", quote(string(b)))
			}
		case "id":
			bit = ceID
			if env.id, err = d.idVal("id"); err != nil {
				return nil, 0, err
			}
		case "source", "type":
			bit = ceSource
			if string(key) == "type" {
				bit = ceType
			}
			if _, err = d.idVal(string(key)); err != nil {
				return nil, 0, err
			}
		case "time":
			bit = ceTime
			if env.time, err = d.timeVal("time"); err != nil {
				return nil, 0, err
			}
			env.hasTime = true
		case "datacontenttype":
			bit = ceContentType
			b, err := d.bytesVal("datacontenttype")
			if err != nil {
				return nil, 0, err
			}
			if !isJSONContentType(string(b)) {
				return nil, 0, newErr("datacontenttype", ReasonValue, "%s is not JSON", quote(string(b)))
			}
		case "dataschema", "subject":
			bit = ceSchema
			if string(key) == "subject" {
				bit = ceSubject
			}
			if _, err = d.bytesVal(string(key)); err != nil {
				return nil, 0, err
			}
		case "data_base64":
			return nil, 0, newErr("data_base64", ReasonValue, "binary data is not supported: send the event as a JSON object in data")
		case "data":
			bit = ceData
			d.s.ws()
			dataAt = d.s.pos
			if k := d.s.peek(); k != kindObject {
				if k == kindInvalid {
					return nil, 0, d.typeErr("data", "", k)
				}
				return nil, 0, newErr("data", ReasonType, "must be the event as a JSON object, got %s", k)
			}
			if err := d.s.skip(2, d.lim.MaxDepth); err != nil {
				if err.Reason == ReasonLimit && err.Field == "" {
					err.Field = "data"
				}
				return nil, 0, err
			}
		default: // extension attributes
			if err := d.s.skip(2, d.lim.MaxDepth); err != nil {
				return nil, 0, err
			}
		}
		if seen&bit != 0 {
			return nil, 0, dupErr("", key)
		}
		seen |= bit
	}
	if err := d.s.end(); err != nil {
		return nil, 0, err
	}
	switch {
	case seen&ceID == 0:
		return nil, 0, missing("id")
	case seen&ceSource == 0:
		return nil, 0, missing("source")
	case seen&ceType == 0:
		return nil, 0, missing("type")
	case seen&ceData == 0:
		return nil, 0, missing("data")
	}
	return env, dataAt, nil
}
