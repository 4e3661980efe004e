package event

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is the JSON lexer under the Decoder: a single forward pass over
// the message, strict per RFC 8259, that allocates nothing. Strings must be
// valid UTF-8 (encoding/json would silently replace bad bytes; an audit
// record must not be altered on the way in).

// kind is the JSON type of the value at the cursor.
type kind uint8

const (
	kindInvalid kind = iota
	kindString
	kindNumber
	kindObject
	kindArray
	kindBool
	kindNull
)

func (k kind) String() string {
	switch k {
	case kindString:
		return "string"
	case kindNumber:
		return "number"
	case kindObject:
		return "object"
	case kindArray:
		return "array"
	case kindBool:
		return "boolean"
	case kindNull:
		return "null"
	}
	return "invalid JSON"
}

// scanner is the lexer state. buf is the whole message; pos the cursor.
type scanner struct {
	buf []byte
	pos int
	esc []byte // scratch for unescaped keys and enum values
}

func (s *scanner) syntaxErr(format string, args ...any) *Error {
	return &Error{Reason: ReasonSyntax, Message: fmt.Sprintf("invalid JSON at byte %d: ", s.pos) + fmt.Sprintf(format, args...)}
}

func (s *scanner) ws() {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek skips white space and returns the kind of the next value.
func (s *scanner) peek() kind {
	s.ws()
	if s.pos >= len(s.buf) {
		return kindInvalid
	}
	switch c := s.buf[s.pos]; c {
	case '"':
		return kindString
	case '{':
		return kindObject
	case '[':
		return kindArray
	case 't', 'f':
		return kindBool
	case 'n':
		return kindNull
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return kindNumber
		}
	}
	return kindInvalid
}

// plain8 reports whether none of the eight bytes of w is a quote, a
// backslash, a control character (< 0x20) or a non-ASCII byte (>= 0x80),
// the bytes that end the fast path of str. Each test is the classic
// "has a zero byte" bit trick, (v - 0x01…) &^ v & 0x80…, which is exact
// about whether such a byte exists.
func plain8(w uint64) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	quote := w ^ (ones * '"')
	backslash := w ^ (ones * '\\')
	control := w - ones*0x20 // borrows out of the bytes below 0x20
	hit := ((quote - ones) &^ quote) | ((backslash - ones) &^ backslash) | (control &^ w) | w
	return hit&highs == 0
}

// str reads a string at the cursor (white space already skipped) and
// returns its raw bytes between the quotes and whether it has escapes.
func (s *scanner) str() (raw []byte, escaped bool, err *Error) {
	if s.pos >= len(s.buf) || s.buf[s.pos] != '"' {
		return nil, false, s.syntaxErr("expected string")
	}
	start := s.pos + 1
	i := start
	ascii := true
	for {
		// Fast path over plain bytes: eight at a time, then one by one
		// from the first word holding a byte that needs a look.
		for i+8 <= len(s.buf) && plain8(binary.LittleEndian.Uint64(s.buf[i:])) {
			i += 8
		}
		for i < len(s.buf) {
			c := s.buf[i]
			if c == '"' || c == '\\' || c < 0x20 || c >= 0x80 {
				break
			}
			i++
		}
		if i >= len(s.buf) {
			s.pos = i
			return nil, false, s.syntaxErr("unterminated string")
		}
		c := s.buf[i]
		switch {
		case c == '"':
			raw = s.buf[start:i]
			s.pos = i + 1
			if !ascii && !utf8.Valid(raw) {
				s.pos = start
				return nil, false, s.syntaxErr("string is not valid UTF-8")
			}
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(s.buf) {
				s.pos = i
				return nil, false, s.syntaxErr("unterminated string")
			}
			switch s.buf[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s.buf) || !isHex4(s.buf[i+2:i+6]) {
					s.pos = i
					return nil, false, s.syntaxErr(`invalid \u escape`)
				}
				i += 6
			default:
				s.pos = i
				return nil, false, s.syntaxErr("invalid escape")
			}
		case c < 0x20:
			s.pos = i
			return nil, false, s.syntaxErr("control character in string")
		default:
			ascii = false
			i++
		}
	}
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescape appends the decoded form of a raw string (already checked by
// str) to dst. Lone surrogates become U+FFFD, as in encoding/json.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, hex4(raw[i+2:i+6])); r2 != utf8.RuneError {
						dst = utf8.AppendRune(dst, r2)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

// key reads an object key and the colon after it. The returned bytes are
// unescaped (into s.esc when needed) and valid until the next call.
func (s *scanner) key() (key []byte, rawStart int, err *Error) {
	s.ws()
	rawStart = s.pos
	raw, escaped, err := s.str()
	if err != nil {
		return nil, 0, err
	}
	s.ws()
	if s.pos >= len(s.buf) || s.buf[s.pos] != ':' {
		return nil, 0, s.syntaxErr("expected ':' after object key")
	}
	s.pos++
	if escaped {
		s.esc = unescape(s.esc[:0], raw)
		return s.esc, rawStart, nil
	}
	return raw, rawStart, nil
}

// next advances inside an object or array: it consumes '{'/'[' when first is
// true, then a ',' or the closing byte. It returns false at the end.
func (s *scanner) next(first bool, closing byte) (bool, *Error) {
	s.ws()
	if first {
		s.pos++ // the opening byte, already checked by peek
		s.ws()
		if s.pos < len(s.buf) && s.buf[s.pos] == closing {
			s.pos++
			return false, nil
		}
		return true, nil
	}
	if s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ',':
			s.pos++
			return true, nil
		case closing:
			s.pos++
			return false, nil
		}
	}
	return false, s.syntaxErr("expected ',' or '%c'", closing)
}

// number reads a number at the cursor and returns its raw bytes.
func (s *scanner) number() ([]byte, *Error) {
	start, i, b := s.pos, s.pos, s.buf
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		s.pos = i
		return nil, s.syntaxErr("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			s.pos = i
			return nil, s.syntaxErr("invalid number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			s.pos = i
			return nil, s.syntaxErr("invalid number")
		}
	}
	s.pos = i
	return b[start:i], nil
}

// literal reads true, false or null.
func (s *scanner) literal() (kind, bool, *Error) {
	rest := s.buf[s.pos:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		s.pos += 4
		return kindBool, true, nil
	case len(rest) >= 5 && string(rest[:5]) == "false":
		s.pos += 5
		return kindBool, false, nil
	case len(rest) >= 4 && string(rest[:4]) == "null":
		s.pos += 4
		return kindNull, false, nil
	}
	return kindInvalid, false, s.syntaxErr("invalid literal")
}

// skip checks and skips one value of any kind; depth is the nesting depth of
// the value itself (the message is 1). Keys repeated inside such a value are
// not looked for: the value is kept verbatim.
func (s *scanner) skip(depth, maxDepth int) *Error {
	switch s.peek() {
	case kindString:
		_, _, err := s.str()
		return err
	case kindNumber:
		_, err := s.number()
		return err
	case kindBool, kindNull:
		_, _, err := s.literal()
		return err
	case kindObject:
		if depth > maxDepth {
			return &Error{Reason: ReasonLimit, Message: fmt.Sprintf("nesting deeper than %d at byte %d", maxDepth, s.pos)}
		}
		for more, err := s.next(true, '}'); more || err != nil; more, err = s.next(false, '}') {
			if err != nil {
				return err
			}
			s.ws()
			if _, _, err := s.str(); err != nil {
				return err
			}
			s.ws()
			if s.pos >= len(s.buf) || s.buf[s.pos] != ':' {
				return s.syntaxErr("expected ':' after object key")
			}
			s.pos++
			if err := s.skip(depth+1, maxDepth); err != nil {
				return err
			}
		}
		return nil
	case kindArray:
		if depth > maxDepth {
			return &Error{Reason: ReasonLimit, Message: fmt.Sprintf("nesting deeper than %d at byte %d", maxDepth, s.pos)}
		}
		for more, err := s.next(true, ']'); more || err != nil; more, err = s.next(false, ']') {
			if err != nil {
				return err
			}
			if err := s.skip(depth+1, maxDepth); err != nil {
				return err
			}
		}
		return nil
	}
	if s.pos >= len(s.buf) {
		return s.syntaxErr("unexpected end of input")
	}
	return s.syntaxErr("unexpected character %q", s.buf[s.pos])
}

// end checks that only white space follows the top-level value.
func (s *scanner) end() *Error {
	s.ws()
	if s.pos != len(s.buf) {
		return s.syntaxErr("data after the JSON object")
	}
	return nil
}
