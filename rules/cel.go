package rules

import (
	"math"
	"strings"
	"unsafe"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/consent"
	"github.com/custos-privacy/custos/rules/partner"
)

// fieldID names one field of the v1 event as rule conditions see it.
type fieldID uint8

// The fields of the event. Each is a CEL variable "event.<path>".
const (
	fID fieldID = iota
	fTime
	fType
	fAction
	fActorID
	fActorKind
	fActorRole
	fActorDepartment
	fSourceSystem
	fSourceDataset
	fSourceEnvironment
	fCategories
	fRecords
	fHasRecords
	fBytes
	fSubjects
	fSubjectKinds
	fSubjectsTruncated
	fRecipientID
	fRecipientName
	fRecipientDomain
	fRecipientCountry
	fRecipientKind
	fChannelKind
	fChannelEncrypted
	fChannelEncryptedSet
	fPurpose
	fLegalBasis
	fOutcome
	fRequestID
	fRequestSession
	fRequestTicket
	fRequestClientIP
	fRequestUserAgent
	fAttributes
	fTransferGaps
	// Derived fields: computed from the event and the engine's partner
	// registry, policy and consent registry, lazily and at most once per
	// event (see derived.go).
	fTransferFinding
	fTransferReason
	fTransferPartner
	fTransferPartnerName
	fTransferAgreement
	fTransferUncovered
	fChannelCleartext
	fPolicyViolations
	fPolicyPromise
	fPolicyReason
	fConsentOptedOut
	fConsentClosed
	numFields
)

// firstDerived is the first field whose value needs more than the event.
const firstDerived = fTransferFinding

// eventField describes one field: its path below "event." and CEL type.
type eventField struct {
	path string
	typ  *cel.Type
	doc  string
}

var stringList = cel.ListType(cel.StringType)

// eventFields is the v1 event as rule conditions see it, indexed by
// fieldID. Enumerations are strings ("share", "export", ...).
var eventFields = [numFields]eventField{
	fID:                  {"id", cel.StringType, "the producer's event id"},
	fTime:                {"time", cel.TimestampType, "the event time"},
	fType:                {"type", cel.StringType, "access or share"},
	fAction:              {"action", cel.StringType, "read, query, export, download, update, delete or transfer"},
	fActorID:             {"actor.id", cel.StringType, "the actor id"},
	fActorKind:           {"actor.kind", cel.StringType, "user or service"},
	fActorRole:           {"actor.role", cel.StringType, "the actor's job role"},
	fActorDepartment:     {"actor.department", cel.StringType, "the actor's department"},
	fSourceSystem:        {"source.system", cel.StringType, "the source system"},
	fSourceDataset:       {"source.dataset", cel.StringType, "the source dataset"},
	fSourceEnvironment:   {"source.environment", cel.StringType, "the source environment"},
	fCategories:          {"data.categories", stringList, "the dotted data categories"},
	fRecords:             {"data.records", cel.IntType, "records touched (0 when absent)"},
	fHasRecords:          {"data.has_records", cel.BoolType, "whether data.records was sent"},
	fBytes:               {"data.bytes", cel.IntType, "bytes moved (0 when unknown)"},
	fSubjects:            {"data.subjects", stringList, "pseudonymised subject ids (may be a sample)"},
	fSubjectKinds:        {"data.subject_kinds", stringList, "whose data: customer, employee, ..."},
	fSubjectsTruncated:   {"data.subjects_truncated", cel.BoolType, "whether data.subjects is a sample"},
	fRecipientID:         {"recipient.id", cel.StringType, "the recipient's partner id"},
	fRecipientName:       {"recipient.name", cel.StringType, "the recipient's name"},
	fRecipientDomain:     {"recipient.domain", cel.StringType, "the host the data went to"},
	fRecipientCountry:    {"recipient.country", cel.StringType, "ISO 3166-1 alpha-2 country"},
	fRecipientKind:       {"recipient.kind", cel.StringType, "partner, processor, data_subject, authority, affiliate, internal or unknown"},
	fChannelKind:         {"channel.kind", cel.StringType, "api, https, sftp, email, s3, http, ftp or other"},
	fChannelEncrypted:    {"channel.encrypted", cel.BoolType, "the producer's claim that the channel was encrypted"},
	fChannelEncryptedSet: {"channel.encrypted_set", cel.BoolType, "whether channel.encrypted was sent"},
	fPurpose:             {"purpose", cel.StringType, "the dotted data use"},
	fLegalBasis:          {"legal_basis", cel.StringType, "the legal basis claimed"},
	fOutcome:             {"outcome", cel.StringType, "success, failure or denied"},
	fRequestID:           {"request.id", cel.StringType, "the request id"},
	fRequestSession:      {"request.session", cel.StringType, "the session id"},
	fRequestTicket:       {"request.ticket", cel.StringType, "the ticket justifying the access"},
	fRequestClientIP:     {"request.client_ip", cel.StringType, "the client IP"},
	fRequestUserAgent:    {"request.user_agent", cel.StringType, "the client user agent"},
	fAttributes:          {"attributes", cel.MapType(cel.StringType, cel.StringType), "the producer's free string map"},
	fTransferGaps:        {"transfer.gaps", stringList, "what the recipient's agreements do not cover: category, use, channel, country, not_yet_valid, expired, no_agreement, unknown_partner; empty when covered or not a third-party share"},
	fTransferFinding:     {"transfer.finding", cel.StringType, "the partner registry's verdict on a share to a third party: unknown_recipient, recipient_not_approved, no_agreement, agreement_expired, agreement_not_yet_valid, agreement_category, agreement_use, agreement_channel or agreement_country; \"\" when the share is covered, or the event is not a third-party share"},
	fTransferReason:      {"transfer.reason", cel.StringType, "transfer.finding in words, naming the partner, agreement and uncovered values; \"\" without a finding"},
	fTransferPartner:     {"transfer.partner", cel.StringType, "the id of the partner the recipient of a third-party share resolves to (by domain, else id); \"\" when unknown or not a third-party share"},
	fTransferPartnerName: {"transfer.partner_name", cel.StringType, "the name of that partner; \"\" when unknown"},
	fTransferAgreement:   {"transfer.agreement", cel.StringType, "the reference of the agreement that covers the share or, with a finding, of the closest one; \"\" when none"},
	fTransferUncovered:   {"transfer.uncovered", stringList, "the values behind transfer.finding: the categories not covered, or the one use, channel or country"},
	fChannelCleartext:    {"channel.cleartext", cel.BoolType, "personal data (at least one category) went by email, ftp or http without channel.encrypted: true, whoever received it"},
	fPolicyViolations:    {"policy.violations", stringList, "the ids of the privacy-statement promises (rules.policy) the event breaks, in file order"},
	fPolicyPromise:       {"policy.promise", cel.StringType, "the id of the first promise the event breaks; \"\" when none"},
	fPolicyReason:        {"policy.reason", cel.StringType, "what in the event breaks that promise; \"\" when none"},
	fConsentOptedOut:     {"consent.opted_out", cel.IntType, "how many of data.subjects had opted out of the event's purpose at the event's time (subjects topic)"},
	fConsentClosed:       {"consent.closed", cel.IntType, "how many of data.subjects had closed their account at the event's time (subjects topic)"},
}

// fieldByVar maps "event.<path>" to its field.
var fieldByVar = func() map[string]fieldID {
	m := make(map[string]fieldID, numFields)
	for i := range eventFields {
		m["event."+eventFields[i].path] = fieldID(i)
	}
	return m
}()

// fieldByPath maps "<path>" and "event.<path>" to its field, for group_by
// and first_seen terms.
func fieldByPath(p string) (fieldID, bool) {
	id, ok := fieldByVar["event."+strings.TrimPrefix(p, "event.")]
	return id, ok
}

// stringField returns the value of a string field of ev ("" for others).
func stringField(ev *event.Event, f fieldID) string {
	switch f {
	case fID:
		return ev.ID
	case fType:
		return string(ev.Type)
	case fAction:
		return string(ev.Action)
	case fActorID:
		return ev.Actor.ID
	case fActorKind:
		return string(ev.Actor.Kind)
	case fActorRole:
		return ev.Actor.Role
	case fActorDepartment:
		return ev.Actor.Department
	case fSourceSystem:
		return ev.Source.System
	case fSourceDataset:
		return ev.Source.Dataset
	case fSourceEnvironment:
		return ev.Source.Environment
	case fRecipientID:
		return ev.Recipient.ID
	case fRecipientName:
		return ev.Recipient.Name
	case fRecipientDomain:
		return ev.Recipient.Domain
	case fRecipientCountry:
		return ev.Recipient.Country
	case fRecipientKind:
		return string(ev.Recipient.Kind)
	case fChannelKind:
		return string(ev.Channel.Kind)
	case fPurpose:
		return ev.Purpose
	case fLegalBasis:
		return ev.LegalBasis
	case fOutcome:
		return string(ev.Outcome)
	case fRequestID:
		return ev.Request.ID
	case fRequestSession:
		return ev.Request.Session
	case fRequestTicket:
		return ev.Request.Ticket
	case fRequestClientIP:
		return ev.Request.ClientIP
	case fRequestUserAgent:
		return ev.Request.UserAgent
	}
	return ""
}

// listField returns the value of a list field of ev (nil for others).
func listField(ev *event.Event, f fieldID) []string {
	switch f {
	case fCategories:
		return ev.Data.Categories
	case fSubjects:
		return ev.Data.Subjects
	case fSubjectKinds:
		return ev.Data.SubjectKinds
	}
	return nil
}

// activation resolves the event variables of one event lazily: nothing is
// built for an event until a condition reads it, and macro values are
// computed at most once per event.
type activation struct {
	ev     *event.Event
	eng    *Engine
	gen    uint32   // incremented per event
	mgen   []uint32 // generation at which mval[i] was computed
	mval   []ref.Val
	gaps   ref.Val
	gapGen uint32
	lazy   lazy // verdict, policy violations and consent counts
	// consent, when set, replaces the engine's consent registry (rule
	// test cases each use their own).
	consent *consent.Registry
	names   [64]nameSlot // see lookup
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) reset(ev *event.Event) {
	a.ev = ev
	a.gen++
	if a.gen == 0 { // wrapped: forget every cached value
		clear(a.mgen)
		a.gapGen = 0
		a.lazy = lazy{}
		a.gen = 1
	}
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	id := a.lookup(name)
	switch {
	case id == nameUnknown:
		return nil, false
	case id >= 0:
		return a.field(fieldID(id)), true
	}
	return a.macro(int(-id - 1)), true
}

// macro returns the value of macro i for the current event, evaluating it
// at most once per event.
func (a *activation) macro(i int) ref.Val {
	if a.mgen[i] != a.gen {
		v, _, err := a.eng.macros[i].prg.Eval(a)
		if err != nil {
			v = types.WrapErr(err)
		}
		a.mval[i], a.mgen[i] = v, a.gen
	}
	return a.mval[i]
}

// nameUnknown is the lookup result of a name that is neither a field nor a
// macro.
const nameUnknown = math.MinInt32

// nameSlot is one entry of the activation's name cache.
type nameSlot struct {
	name string
	id   int32 // field id, or -(macro index + 1), or nameUnknown
}

// lookup resolves a variable name to a field id (>= 0) or a macro
// (-(index + 1)). CEL passes the same few name strings, taken from the
// compiled programs, for every event: a small cache indexed by the
// string's address answers most lookups with one comparison, which is
// usually a pointer comparison, instead of hashing the name twice.
func (a *activation) lookup(name string) int32 {
	p := uintptr(unsafe.Pointer(unsafe.StringData(name)))
	slot := &a.names[(p>>3^p>>11)%uintptr(len(a.names))]
	if slot.name == name && name != "" {
		return slot.id
	}
	id := int32(nameUnknown)
	if f, ok := fieldByVar[name]; ok {
		id = int32(f)
	} else if i, ok := a.eng.macroIdx[name]; ok {
		id = int32(-i - 1)
	}
	slot.name, slot.id = name, id
	return id
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// Unwrap returns the activation itself (cel-go looks for it).
func (a *activation) Unwrap() any { return a }

func (a *activation) field(f fieldID) ref.Val {
	ev := a.ev
	switch f {
	case fTime:
		return types.Timestamp{Time: ev.Time}
	case fRecords:
		return types.Int(ev.Data.Records)
	case fBytes:
		return types.Int(ev.Data.Bytes)
	case fHasRecords:
		return types.Bool(ev.Data.HasRecords)
	case fSubjectsTruncated:
		return types.Bool(ev.Data.SubjectsTruncated)
	case fChannelEncrypted:
		return types.Bool(ev.Channel.Encrypted)
	case fChannelEncryptedSet:
		return types.Bool(ev.Channel.EncryptedSet)
	case fCategories, fSubjects, fSubjectKinds:
		return types.NewStringList(types.DefaultTypeAdapter, listField(ev, f))
	case fAttributes:
		m := make(map[string]string, len(ev.Attributes))
		for _, at := range ev.Attributes {
			m[at.Key] = at.Value
		}
		return types.NewStringStringMap(types.DefaultTypeAdapter, m)
	case fTransferGaps:
		if a.gapGen != a.gen {
			a.gaps, a.gapGen = types.NewStringList(types.DefaultTypeAdapter, transferGaps(a.eng.reg, ev)), a.gen
		}
		return a.gaps
	}
	if f >= firstDerived {
		return a.derived(f)
	}
	return types.String(stringField(ev, f))
}

// transferGaps lists what the partner registry's agreements do not cover
// of a third-party share: nil for other events and for covered shares.
func transferGaps(reg *partner.Registry, ev *event.Event) []string {
	if ev.Type != event.TypeShare || ev.Recipient.Kind == event.RecipientDataSubject || ev.Recipient.Kind == event.RecipientInternal {
		return nil
	}
	p, ok := lookupPartner(reg, ev)
	if !ok {
		return []string{"unknown_partner"}
	}
	_, gap := p.Check(partner.TransferOf(ev))
	if gap == 0 {
		return nil
	}
	return strings.Split(gap.String(), ",")
}

// lookupPartner finds the recipient of ev by domain, else by id.
func lookupPartner(reg *partner.Registry, ev *event.Event) (*partner.Partner, bool) {
	if ev.Recipient.Domain != "" {
		return reg.ByDomain(ev.Recipient.Domain)
	}
	if ev.Recipient.ID != "" {
		return reg.ByID(ev.Recipient.ID)
	}
	return nil, false
}

// celFunctions are the custom functions rule conditions may call. The
// partner functions look up reg (nil: no partner is known).
func celFunctions(reg *partner.Registry) []cel.EnvOption {
	str := func(v ref.Val) string {
		s, _ := v.(types.String)
		return string(s)
	}
	byDomain := func(v ref.Val) (*partner.Partner, bool) { return reg.ByDomain(str(v)) }
	return []cel.EnvOption{
		cel.Function("partner.known",
			cel.Overload("partner_known_string", []*cel.Type{cel.StringType}, cel.BoolType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					_, ok := byDomain(v)
					return types.Bool(ok)
				})),
			cel.FunctionDocs("partner.known(domain) is true when an entry of the partner registry lists domain or a parent domain of it.")),
		cel.Function("partner.known_id",
			cel.Overload("partner_known_id_string", []*cel.Type{cel.StringType}, cel.BoolType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					_, ok := reg.ByID(str(v))
					return types.Bool(ok)
				})),
			cel.FunctionDocs("partner.known_id(id) is true when the partner registry has a partner with that id.")),
		cel.Function("partner.status",
			cel.Overload("partner_status_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					if p, ok := byDomain(v); ok {
						return types.String(p.Status)
					}
					return types.String("")
				})),
			cel.FunctionDocs(`partner.status(domain) is the status of the partner owning domain (approved, under_review, suspended, revoked), "" when unknown.`)),
		cel.Function("partner.kind",
			cel.Overload("partner_kind_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					if p, ok := byDomain(v); ok {
						return types.String(p.Kind)
					}
					return types.String("")
				})),
			cel.FunctionDocs(`partner.kind(domain) is the kind of the partner owning domain, "" when unknown.`)),
		cel.Function("covers",
			cel.Overload("covers_list_string", []*cel.Type{stringList, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(g, v ref.Val) ref.Val {
					return types.Bool(coversAnyOf(g, str(v)))
				})),
			cel.Overload("covers_list_list", []*cel.Type{stringList, stringList}, cel.BoolType,
				cel.BinaryBinding(func(g, vs ref.Val) ref.Val {
					l, ok := vs.(traits.Lister)
					if !ok {
						return types.False
					}
					it := l.Iterator()
					for it.HasNext() == types.True {
						if coversAnyOf(g, str(it.Next())) {
							return types.True
						}
					}
					return types.False
				})),
			cel.FunctionDocs("covers(granted, value) is true when a dotted term of the list granted equals value or is a parent of it (user.contact covers user.contact.email); with a list of values, when it covers any of them.")),
	}
}

func coversAnyOf(granted ref.Val, value string) bool {
	l, ok := granted.(traits.Lister)
	if !ok {
		return false
	}
	it := l.Iterator()
	for it.HasNext() == types.True {
		if s, ok := it.Next().(types.String); ok && partner.Covers(string(s), value) {
			return true
		}
	}
	return false
}
