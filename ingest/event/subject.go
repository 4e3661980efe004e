package event

// DecodeSubjectStatus decodes one message of the subjects topic into s and
// validates it: subject (non-empty string), time (RFC 3339) and status
// (opted_out, opted_in or closed) are required; uses, when present, is an
// array of dotted data uses (empty or absent means all sharing). Unknown
// fields are accepted and dropped: SubjectStatus has nowhere to keep them.
//
// CloudEvents envelopes are accepted as by Decode; the envelope's time fills
// time when the payload lacks it (its id has no counterpart and is dropped).
// It resets *s first; Time is in UTC; Origin is left zero for the caller.
func (d *Decoder) DecodeSubjectStatus(value []byte, headers []Header, s *SubjectStatus) error {
	*s = SubjectStatus{}
	if err := d.decodeStatus(value, headers, s); err != nil {
		return err
	}
	return nil
}

func (d *Decoder) decodeStatus(value []byte, headers []Header, s *SubjectStatus) *Error {
	if len(value) > d.lim.MaxMessageBytes {
		return newErr("", ReasonTooLarge, "message of %d bytes is larger than the limit of %d", len(value), d.lim.MaxMessageBytes)
	}
	d.reset(value)
	env, err := d.binaryEnvelope(headers)
	if err != nil {
		return err
	}
	if env != nil {
		return d.statusAt(s, env, 1, false)
	}
	err = d.statusAt(s, nil, 1, true)
	if err == nil || !hasTopKey(value, "specversion") {
		return err
	}
	*s = SubjectStatus{}
	d.reset(value)
	env, dataAt, err := d.envelopeObject()
	if err != nil {
		return err
	}
	d.s.pos = dataAt
	d.pre = "data."
	return d.statusAt(s, env, 2, false)
}

// Subject status members, as bits of the seen mask.
const (
	sSubject uint32 = 1 << iota
	sTime
	sStatus
	sUses
)

func (d *Decoder) statusAt(s *SubjectStatus, env *envelope, depth int, sniff bool) *Error {
	err := d.status(s, env, depth, sniff)
	if err != nil {
		return d.errAt(err)
	}
	return nil
}

func (d *Decoder) status(s *SubjectStatus, env *envelope, depth int, sniff bool) *Error {
	if k := d.s.peek(); k != kindObject {
		err := d.typeErr("", "", k)
		if k != kindInvalid {
			err.Reason = ReasonSyntax
			err.Message = "the message must be a JSON object, got " + k.String()
			if depth > 1 {
				err.Reason = ReasonType
				err.Message = "the CloudEvents data must be a JSON object, got " + k.String()
			}
		}
		return err
	}
	seen, err := d.members("", func(key []byte, _ int) (bit uint32, err *Error) {
		switch string(key) {
		case "subject":
			s.Subject, err = d.idVal("subject")
			return sSubject, err
		case "time":
			s.Time, err = d.timeVal("time")
			return sTime, err
		case "status":
			s.Status, err = enumVal(d, "status", parseStatus, "opted_out, opted_in, closed")
			return sStatus, err
		case "uses":
			s.Uses, err = d.strArray("uses", d.lim.MaxUses, itemDotted, depth+1)
			return sUses, err
		case "specversion":
			if sniff {
				return 0, errStructured
			}
		}
		return 0, d.s.skip(depth+1, d.lim.MaxDepth)
	})
	if err != nil {
		return err
	}
	if depth == 1 {
		if err := d.s.end(); err != nil {
			return err
		}
	}
	if env != nil && seen&sTime == 0 && env.hasTime {
		s.Time = env.time
		seen |= sTime
	}
	switch {
	case seen&sSubject == 0:
		return missing("subject")
	case seen&sTime == 0:
		return missing("time")
	case seen&sStatus == 0:
		return missing("status")
	}
	if len(s.Uses) > 0 {
		s.Uses = append([]string(nil), s.Uses...)
	}
	return nil
}
