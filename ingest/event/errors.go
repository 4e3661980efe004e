package event

import (
	"errors"
	"fmt"
)

// Reason classifies why a message was rejected. The set is small and fixed so
// that it can label metrics and go into dead-letter headers.
type Reason string

// Rejection reasons.
const (
	// ReasonTooLarge: the message is larger than Limits.MaxMessageBytes.
	ReasonTooLarge Reason = "too_large"
	// ReasonSyntax: the message is not one well-formed JSON object in UTF-8,
	// or repeats a key.
	ReasonSyntax Reason = "syntax"
	// ReasonVersion: the schema or CloudEvents specversion is not one this
	// decoder accepts.
	ReasonVersion Reason = "version"
	// ReasonMissing: a required field is absent.
	ReasonMissing Reason = "missing"
	// ReasonType: a field has the wrong JSON type (null included).
	ReasonType Reason = "type"
	// ReasonValue: a field has the right type but a value the contract does
	// not allow (enum, pattern, range, time format, action for the type).
	ReasonValue Reason = "value"
	// ReasonLimit: a configured limit other than the message size is
	// exceeded (subjects, categories, string length, nesting, ...).
	ReasonLimit Reason = "limit"
)

// Reasons lists every Reason, for pre-registering metric labels.
var Reasons = []Reason{ReasonTooLarge, ReasonSyntax, ReasonVersion, ReasonMissing, ReasonType, ReasonValue, ReasonLimit}

// Error is why a message was rejected. Use errors.As to get it from the error
// returned by Decoder.Decode; Error() reads like
// `data.records: required for action "export"`.
//
// Messages never quote data subject ids or client addresses: they go into
// dead-letter headers and logs.
type Error struct {
	// Field is the JSON path of the offending field, e.g. "data.records" or
	// "data.categories[2]"; in CloudEvents structured mode the event's
	// fields are under "data." and binary-mode headers are named as sent
	// (e.g. "ce_time"). Empty when the whole message is at fault.
	Field string
	// Reason is the metrics label.
	Reason Reason
	// Message says what is wrong, for people.
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// ReasonOf returns the Reason of an *Error in err's chain, or "" when err
// carries none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func newErr(field string, reason Reason, format string, args ...any) *Error {
	return &Error{Field: field, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

func missing(field string) *Error {
	return &Error{Field: field, Reason: ReasonMissing, Message: "required"}
}

// quote renders a user-supplied value for an error message, shortened.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	return fmt.Sprintf("%q", s)
}
