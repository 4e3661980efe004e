package event

import (
	_ "embed" // for the JSON Schemas
	"slices"
)

// The schemas are copies of docs/schema/*.json (go:embed cannot reach
// outside the package); a test keeps the copies identical.
var (
	//go:embed schema/event.v1.json
	eventSchema []byte
	//go:embed schema/subject-status.v1.json
	subjectStatusSchema []byte
)

// Schema identifiers ($id) of the published JSON Schemas.
const (
	EventSchemaID         = "https://custos-privacy.github.io/custos/schema/event.v1.json"
	SubjectStatusSchemaID = "https://custos-privacy.github.io/custos/schema/subject-status.v1.json"
)

// SchemaJSON returns the JSON Schema (draft 2020-12) of a plain v1 event,
// docs/schema/event.v1.json, as a fresh copy. Its limits are those of
// DefaultLimits. Validators must assert formats (date-time) to agree with
// the Decoder; with santhosh-tekuri/jsonschema call Compiler.AssertFormat.
func SchemaJSON() []byte { return slices.Clone(eventSchema) }

// SubjectStatusSchemaJSON returns the JSON Schema (draft 2020-12) of a
// subjects-topic message, docs/schema/subject-status.v1.json, as a fresh
// copy.
func SubjectStatusSchemaJSON() []byte { return slices.Clone(subjectStatusSchema) }
