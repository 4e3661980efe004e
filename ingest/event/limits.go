package event

import "fmt"

// Limits bound what one message may contain. A message over a limit is
// rejected with ReasonTooLarge (size) or ReasonLimit (the rest) and goes to
// the dead-letter topic. The JSON Schemas in docs/schema state the defaults;
// a deployment that changes a limit diverges from them on purpose.
//
// A zero field means its default.
type Limits struct {
	// MaxMessageBytes is the largest message accepted, in bytes (default
	// 65536). The JSON Schema cannot express it.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxSubjects is the most data.subjects entries per event (default
	// 1000). A producer that touched more sends a sample and sets
	// data.subjects_truncated.
	MaxSubjects int `yaml:"max_subjects"`
	// MaxCategories is the most data.categories entries per event
	// (default 64).
	MaxCategories int `yaml:"max_categories"`
	// MaxSubjectKinds is the most data.subject_kinds entries per event
	// (default 16).
	MaxSubjectKinds int `yaml:"max_subject_kinds"`
	// MaxStringLen is the longest string of the contract, in Unicode
	// characters as JSON Schema's maxLength counts them (default 1024). It
	// applies to every known string field, to each array item and to
	// attribute keys and values; unknown fields are bounded by the message
	// size only.
	MaxStringLen int `yaml:"max_string_len"`
	// MaxAttributes is the most entries in attributes (default 64).
	MaxAttributes int `yaml:"max_attributes"`
	// MaxUses is the most uses in a subject status message (default 64).
	MaxUses int `yaml:"max_uses"`
	// MaxDepth is the deepest nesting of JSON objects and arrays, counting
	// the message itself as 1 (default 32). It bounds unknown fields; the
	// JSON Schema cannot express it.
	MaxDepth int `yaml:"max_depth"`
}

// DefaultLimits returns the documented defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxMessageBytes: 64 << 10,
		MaxSubjects:     1000,
		MaxCategories:   64,
		MaxSubjectKinds: 16,
		MaxStringLen:    1024,
		MaxAttributes:   64,
		MaxUses:         64,
		MaxDepth:        32,
	}
}

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&l.MaxMessageBytes, d.MaxMessageBytes)
	set(&l.MaxSubjects, d.MaxSubjects)
	set(&l.MaxCategories, d.MaxCategories)
	set(&l.MaxSubjectKinds, d.MaxSubjectKinds)
	set(&l.MaxStringLen, d.MaxStringLen)
	set(&l.MaxAttributes, d.MaxAttributes)
	set(&l.MaxUses, d.MaxUses)
	set(&l.MaxDepth, d.MaxDepth)
	return l
}

// Validate reports the first limit that makes no sense: negative values,
// or a depth too shallow for the contract's own nesting (request.client is
// at depth 3). Zero fields are valid: they take their defaults.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"max_message_bytes", l.MaxMessageBytes},
		{"max_subjects", l.MaxSubjects},
		{"max_categories", l.MaxCategories},
		{"max_subject_kinds", l.MaxSubjectKinds},
		{"max_string_len", l.MaxStringLen},
		{"max_attributes", l.MaxAttributes},
		{"max_uses", l.MaxUses},
		{"max_depth", l.MaxDepth},
	} {
		if f.v < 0 {
			return fmt.Errorf("limits: %s must not be negative, got %d", f.name, f.v)
		}
	}
	if l.MaxDepth != 0 && l.MaxDepth < 3 {
		return fmt.Errorf("limits: max_depth must be at least 3 (request.client), got %d", l.MaxDepth)
	}
	if l.MaxMessageBytes != 0 && l.MaxMessageBytes < 256 {
		return fmt.Errorf("limits: max_message_bytes must be at least 256, got %d", l.MaxMessageBytes)
	}
	return nil
}
