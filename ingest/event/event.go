// Package event defines the Custos event contract, version 1: the typed form
// of the data-access and data-share events that services publish to Kafka,
// and of the subject status changes on the subjects topic.
//
// The package decodes and validates raw JSON (plain or wrapped in a
// CloudEvents 1.0 envelope) into these types. It knows nothing of Kafka or
// ClickHouse: the Origin of an event is filled in by whoever read it.
//
// Compatibility policy: within v1 only additive changes are made (new
// optional fields, new enum values). Anything else is v2, and the decoder
// keeps accepting v1.
package event

import "time"

// SchemaV1 is the schema identifier recorded on every stored event.
const SchemaV1 = "custos.event/v1"

// Type says whether an event is a data access or a data share.
type Type string

// Event types.
const (
	TypeAccess Type = "access"
	TypeShare  Type = "share"
)

// Action is what was done to the data.
type Action string

// Actions. Read, query, export, download, update and delete go with access
// events; transfer goes with share events.
const (
	ActionRead     Action = "read"
	ActionQuery    Action = "query"
	ActionExport   Action = "export"
	ActionDownload Action = "download"
	ActionUpdate   Action = "update"
	ActionDelete   Action = "delete"
	ActionTransfer Action = "transfer"
)

// MovesData reports whether the action takes records out of the source
// system (export, download, transfer); such events must carry data.records.
func (a Action) MovesData() bool {
	return a == ActionExport || a == ActionDownload || a == ActionTransfer
}

// ActorKind says whether the actor is a person or a service account.
type ActorKind string

// Actor kinds; user is the default.
const (
	ActorUser    ActorKind = "user"
	ActorService ActorKind = "service"
)

// RecipientKind says who received shared data.
type RecipientKind string

// Recipient kinds. A share to the data subject is not a transfer to a third
// party and needs no agreement.
const (
	RecipientPartner     RecipientKind = "partner"
	RecipientProcessor   RecipientKind = "processor"
	RecipientDataSubject RecipientKind = "data_subject"
	RecipientAuthority   RecipientKind = "authority"
	RecipientAffiliate   RecipientKind = "affiliate"
	RecipientInternal    RecipientKind = "internal"
	RecipientUnknown     RecipientKind = "unknown"
)

// ChannelKind is the transport the data went over.
type ChannelKind string

// Channel kinds.
const (
	ChannelAPI   ChannelKind = "api"
	ChannelHTTPS ChannelKind = "https"
	ChannelSFTP  ChannelKind = "sftp"
	ChannelEmail ChannelKind = "email"
	ChannelS3    ChannelKind = "s3"
	ChannelHTTP  ChannelKind = "http"
	ChannelFTP   ChannelKind = "ftp"
	ChannelOther ChannelKind = "other"
)

// Outcome says whether the action succeeded. A denied or failed action moved
// no data: it is stored and counted apart, never added to exported volume.
type Outcome string

// Outcomes; success is the default.
const (
	OutcomeSuccess Outcome = "success"
	OutcomeFailure Outcome = "failure"
	OutcomeDenied  Outcome = "denied"
)

// Event is one data-access or data-share event, decoded and validated.
// String fields absent from the input are empty; defaults (actor kind user,
// outcome success, schema v1) are filled in by the decoder.
type Event struct {
	// Schema is the contract version, always SchemaV1 after decoding.
	Schema string
	// ID is the producer's unique event id, the idempotency key.
	ID string
	// Time is the event time (UTC).
	Time time.Time
	// Type is access or share.
	Type Type
	// Action is what was done.
	Action Action
	// Actor is who did it.
	Actor Actor
	// Source is the system the data came from.
	Source Source
	// Data describes the personal data involved.
	Data Data
	// Recipient is who received the data; set for share events.
	Recipient Recipient
	// Channel is how the data travelled.
	Channel Channel
	// Purpose is the data use, dotted (e.g. "marketing.advertising.third_party").
	Purpose string
	// LegalBasis is the GDPR legal basis claimed (e.g. "contract", "consent").
	LegalBasis string
	// Outcome is success (default), failure or denied.
	Outcome Outcome
	// Request carries forensic context: request, session, ticket, client.
	Request Request
	// Attributes is the producer's free string map, sorted by key.
	Attributes []Attribute
	// Extra holds the fields the contract does not know, as one JSON object
	// (nil when there were none). Unknown fields are kept, never rejected.
	Extra []byte
	// Origin is where the event was read from; set by the reader, not the
	// producer.
	Origin Origin
}

// Actor is the person or service account that acted.
type Actor struct {
	// ID identifies the actor; also the Kafka message key.
	ID string
	// Kind is user (default) or service.
	Kind ActorKind
	// Role is the actor's job role (e.g. "support_agent").
	Role string
	// Department is the actor's department (e.g. "customer_care").
	Department string
}

// Source is the system and dataset the data came from.
type Source struct {
	// System is the application or database (required).
	System string
	// Dataset is the table, index, bucket or report.
	Dataset string
	// Environment is e.g. "production" or "staging".
	Environment string
}

// Data describes the personal data an event touched.
type Data struct {
	// Categories are dotted data categories in the Fides taxonomy style,
	// e.g. "user.contact.email".
	Categories []string
	// Records is how many records were touched; required (and possibly 0)
	// for export, download and transfer.
	Records int64
	// HasRecords is true when the producer sent data.records.
	HasRecords bool
	// Bytes is the size of the data moved, when known.
	Bytes int64
	// Subjects are ids of the data subjects touched (may be a sample).
	// After ingest they are pseudonymised: never a raw identifier.
	Subjects []string
	// SubjectsTruncated is true when Subjects is a sample of a larger set.
	SubjectsTruncated bool
	// SubjectKinds says whose data it is: customer, employee, prospect,
	// patient, child, ... (the Fides data-subject vocabulary).
	SubjectKinds []string
}

// Recipient is who received shared data.
type Recipient struct {
	// ID is the partner id when known.
	ID string
	// Name is the recipient's display name.
	Name string
	// Domain is the host the data went to.
	Domain string
	// Country is the ISO 3166-1 alpha-2 code, upper case.
	Country string
	// Kind says what sort of recipient it is.
	Kind RecipientKind
}

// Channel is the transport the data went over.
type Channel struct {
	// Kind is api, https, sftp, email, s3, http, ftp or other.
	Kind ChannelKind
	// Encrypted is the producer's claim that the channel was encrypted;
	// meaningful only when EncryptedSet is true.
	Encrypted bool
	// EncryptedSet is true when the producer sent channel.encrypted.
	EncryptedSet bool
}

// Request is the forensic context of an event.
type Request struct {
	// ID is the request id.
	ID string
	// Session is the user's session id.
	Session string
	// Ticket is the support case or change that justifies the access.
	Ticket string
	// ClientIP is the client's IP address (personal data: shown only where
	// needed).
	ClientIP string
	// UserAgent is the client's user agent.
	UserAgent string
}

// Attribute is one entry of the producer's free string map.
type Attribute struct {
	// Key is the attribute name.
	Key string
	// Value is the attribute value.
	Value string
}

// Origin is where a message was read from.
type Origin struct {
	// Topic is the Kafka topic.
	Topic string
	// Partition is the Kafka partition.
	Partition int32
	// Offset is the message offset in its partition.
	Offset int64
}

// SubjectStatusKind is a data subject's consent or account state.
type SubjectStatusKind string

// Subject statuses.
const (
	StatusOptedOut SubjectStatusKind = "opted_out"
	StatusOptedIn  SubjectStatusKind = "opted_in"
	StatusClosed   SubjectStatusKind = "closed"
)

// SubjectStatus is one message of the subjects topic: a data subject opted
// out of (or back into) some data uses, or closed their account.
type SubjectStatus struct {
	// Subject is the subject id; pseudonymised after ingest.
	Subject string
	// Time is when the status took effect (UTC).
	Time time.Time
	// Status is opted_out, opted_in or closed.
	Status SubjectStatusKind
	// Uses are the data uses the change covers; empty means all sharing.
	Uses []string
	// Origin is where the message was read from.
	Origin Origin
}
