package event

import "time"

// check applies the contract's required fields and cross-field rules once
// the whole event is read (and the envelope's fallbacks applied). Per-field
// rules (types, enums, patterns, limits) are checked as fields are read.
func check(ev *Event, seen uint32) *Error {
	switch {
	case seen&fEventID == 0:
		return missing("event_id")
	case seen&fTime == 0:
		return missing("time")
	case seen&fType == 0:
		return missing("type")
	case seen&fAction == 0:
		return missing("action")
	case seen&fActor == 0:
		return missing("actor")
	case seen&fSource == 0:
		return missing("source")
	}
	switch ev.Type {
	case TypeAccess:
		if ev.Action == ActionTransfer {
			return newErr("action", ReasonValue, "%q is not allowed for type %q (want read, query, export, download, update or delete)", ev.Action, ev.Type)
		}
	case TypeShare:
		if ev.Action != ActionTransfer {
			return newErr("action", ReasonValue, "%q is not allowed for type %q (want transfer)", ev.Action, ev.Type)
		}
		if seen&fRecipient == 0 {
			return newErr("recipient", ReasonMissing, "required for type %q", ev.Type)
		}
	}
	if ev.Action.MovesData() && !ev.Data.HasRecords {
		return newErr("data.records", ReasonMissing, "required for action %q", ev.Action)
	}
	return nil
}

func parseType(b []byte) Type {
	switch string(b) {
	case "access":
		return TypeAccess
	case "share":
		return TypeShare
	}
	return ""
}

func parseActorKind(b []byte) ActorKind {
	switch string(b) {
	case "user":
		return ActorUser
	case "service":
		return ActorService
	}
	return ""
}

func parseAction(b []byte) Action {
	switch string(b) {
	case "read":
		return ActionRead
	case "query":
		return ActionQuery
	case "export":
		return ActionExport
	case "download":
		return ActionDownload
	case "update":
		return ActionUpdate
	case "delete":
		return ActionDelete
	case "transfer":
		return ActionTransfer
	}
	return ""
}

func parseOutcome(b []byte) Outcome {
	switch string(b) {
	case "success":
		return OutcomeSuccess
	case "failure":
		return OutcomeFailure
	case "denied":
		return OutcomeDenied
	}
	return ""
}

func parseRecipientKind(b []byte) RecipientKind {
	switch string(b) {
	case "partner":
		return RecipientPartner
	case "processor":
		return RecipientProcessor
	case "data_subject":
		return RecipientDataSubject
	case "authority":
		return RecipientAuthority
	case "affiliate":
		return RecipientAffiliate
	case "internal":
		return RecipientInternal
	case "unknown":
		return RecipientUnknown
	}
	return ""
}

func parseChannelKind(b []byte) ChannelKind {
	switch string(b) {
	case "api":
		return ChannelAPI
	case "https":
		return ChannelHTTPS
	case "sftp":
		return ChannelSFTP
	case "email":
		return ChannelEmail
	case "s3":
		return ChannelS3
	case "http":
		return ChannelHTTP
	case "ftp":
		return ChannelFTP
	case "other":
		return ChannelOther
	}
	return ""
}

func parseStatus(b []byte) SubjectStatusKind {
	switch string(b) {
	case "opted_out":
		return StatusOptedOut
	case "opted_in":
		return StatusOptedIn
	case "closed":
		return StatusClosed
	}
	return ""
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
}

// isDotted matches ^[a-z0-9_]+(\.[a-z0-9_]+)*$ (data categories, purposes,
// data uses).
func isDotted(b []byte) bool {
	seg := 0
	for _, c := range b {
		switch {
		case isNameByte(c):
			seg++
		case c == '.' && seg > 0:
			seg = 0
		default:
			return false
		}
	}
	return seg > 0
}

// isName matches ^[a-z0-9_]+$ (data subject kinds).
func isName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isNameByte(c) {
			return false
		}
	}
	return true
}

// Results of parseCount.
const (
	countOK = iota
	countNotInteger
	countNegative
	countTooLarge
)

// parseCount parses a JSON number (grammar already checked) as an integer
// >= 0 that fits in int64, with JSON Schema's notion of integer: a number
// whose value has no fractional part, whatever its spelling (5, 5.0, 5e0,
// 50e-1). It never allocates and is safe on huge exponents.
func parseCount(raw []byte) (int64, int) {
	neg := false
	if raw[0] == '-' {
		neg = true
		raw = raw[1:]
	}
	// Fast path: plain digits.
	plain := len(raw) <= 18
	if plain {
		for _, c := range raw {
			if c < '0' || c > '9' {
				plain = false
				break
			}
		}
	}
	if plain {
		var n int64
		for _, c := range raw {
			n = n*10 + int64(c-'0')
		}
		if neg && n != 0 {
			return 0, countNegative
		}
		return n, countOK
	}
	// Slow path: digits D with an exponent e, value = D * 10^e.
	var digits [20]byte
	nd := 0    // significant digits kept (leading zeros dropped)
	extra := 0 // integer digits dropped because there were more than 20
	fracLen := 0
	i := 0
	inFrac := false
	for ; i < len(raw); i++ {
		c := raw[i]
		if c == '.' {
			inFrac = true
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		if inFrac {
			fracLen++
		}
		if nd == 0 && c == '0' {
			continue
		}
		if nd < len(digits) {
			digits[nd] = c
			nd++
		} else if c != '0' {
			// More than 20 significant digits: at least 10^20, too large
			// if it is an integer; not an integer if a non-zero digit is in
			// the fraction (handled by counting below).
			extra = -1
			if inFrac {
				return 0, countNotInteger
			}
		} else if !inFrac {
			extra++
		}
	}
	exp := 0
	if i < len(raw) { // exponent
		i++
		esign := 1
		if raw[i] == '+' {
			i++
		} else if raw[i] == '-' {
			esign = -1
			i++
		}
		for ; i < len(raw); i++ {
			if exp < 1_000_000 {
				exp = exp*10 + int(raw[i]-'0')
			}
		}
		exp *= esign
	}
	if nd == 0 {
		return 0, countOK // zero, however spelt
	}
	if extra < 0 {
		if neg {
			return 0, countNegative
		}
		return 0, countTooLarge
	}
	// Trailing zeros of the kept digits move into the exponent.
	e := exp - fracLen + extra
	for nd > 0 && digits[nd-1] == '0' {
		nd--
		e++
	}
	if e < 0 {
		return 0, countNotInteger
	}
	if neg {
		return 0, countNegative
	}
	if nd+e > 19 {
		return 0, countTooLarge
	}
	var n uint64
	for _, c := range digits[:nd] {
		n = n*10 + uint64(c-'0')
	}
	for ; e > 0; e-- {
		n *= 10
	}
	if n > 1<<63-1 {
		return 0, countTooLarge
	}
	return int64(n), countOK
}

func digits2(b []byte) (int, bool) {
	if b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

// parseTime parses an RFC 3339 date-time as the schema states it: the
// pattern YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) with upper-case T and
// Z and seconds 00-59 (no leap second), and a real calendar date. Digits
// of the fraction past nanoseconds are ignored. The result is in UTC.
func parseTime(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	y1, ok1 := digits2(b[0:2])
	y2, ok2 := digits2(b[2:4])
	mo, ok3 := digits2(b[5:7])
	dd, ok4 := digits2(b[8:10])
	hh, ok5 := digits2(b[11:13])
	mi, ok6 := digits2(b[14:16])
	ss, ok7 := digits2(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return time.Time{}, false
	}
	year := y1*100 + y2
	if mo < 1 || mo > 12 || dd < 1 || dd > daysIn(year, mo) || hh > 23 || mi > 59 || ss > 59 {
		return time.Time{}, false
	}
	rest := b[19:]
	ns := 0
	if rest[0] == '.' {
		i := 1
		scale := 100_000_000
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			ns += int(rest[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == 1 {
			return time.Time{}, false
		}
		rest = rest[i:]
	}
	offset := 0
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := digits2(rest[1:3])
		om, ok2 := digits2(rest[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(mo), dd, hh, mi, ss, ns, time.UTC)
	if offset != 0 {
		t = t.Add(-time.Duration(offset) * time.Second)
	}
	return t, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
