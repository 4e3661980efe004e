package policy

import (
	"fmt"
	"strings"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/partner"
)

// field is one condition of a cond, as a bit; the order of the constants
// is the order in which a failing require is reported.
type field uint32

const (
	fType field = 1 << iota
	fAction
	fCategory
	fPurpose
	fSubjectKind
	fChannel
	fEncrypted
	fRecipientKind
	fExternal
	fCountry
	fPartnerKind
	fPartnerTag
	fAgreement
)

// cond is a compiled condition: every present field must hold. Lists are
// any-of; in a when, an event list (categories, subject kinds) matches if
// any of its entries is listed; in a require (all is true), every entry
// must be.
type cond struct {
	present      field
	all          bool
	types        []event.Type
	actions      []event.Action
	categories   []string
	purposes     []string
	subjectKinds []string
	channels     []event.ChannelKind
	encrypted    bool
	rkinds       []event.RecipientKind
	external     bool
	countries    []string
	partnerKinds []partner.Kind
	partnerTags  []partner.Tag
	agreement    bool
}

func covered(terms []string, v string) bool {
	for _, t := range terms {
		if partner.Covers(t, v) {
			return true
		}
	}
	return false
}

func has[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// listMatch applies the any-of / all-of rule to an event list.
func listMatch(all bool, values []string, ok func(string) bool) bool {
	if len(values) == 0 {
		return false
	}
	for _, v := range values {
		if ok(v) != all {
			return !all
		}
	}
	return all
}

func isExternal(k event.RecipientKind) bool {
	return k != "" && partner.NeedsAgreement(k)
}

func encrypted(ch *event.Channel) bool { return ch.EncryptedSet && ch.Encrypted }

// failing returns the first field of c that ev does not satisfy, 0 if it
// satisfies them all.
func (c *cond) failing(x *evalCtx) field {
	ev := x.ev
	for f := field(1); f <= fAgreement; f <<= 1 {
		if c.present&f == 0 {
			continue
		}
		var ok bool
		switch f {
		case fType:
			ok = has(c.types, ev.Type)
		case fAction:
			ok = has(c.actions, ev.Action)
		case fCategory:
			ok = listMatch(c.all, ev.Data.Categories, func(v string) bool { return covered(c.categories, v) })
		case fPurpose:
			ok = ev.Purpose != "" && covered(c.purposes, ev.Purpose)
		case fSubjectKind:
			ok = listMatch(c.all, ev.Data.SubjectKinds, func(v string) bool { return has(c.subjectKinds, v) })
		case fChannel:
			ok = has(c.channels, ev.Channel.Kind)
		case fEncrypted:
			ok = encrypted(&ev.Channel) == c.encrypted
		case fRecipientKind:
			ok = ev.Type == event.TypeShare && has(c.rkinds, ev.Recipient.Kind)
		case fExternal:
			ok = (ev.Type == event.TypeShare && isExternal(ev.Recipient.Kind)) == c.external
		case fCountry:
			ok = ev.Type == event.TypeShare && hasFold(c.countries, ev.Recipient.Country)
		case fPartnerKind:
			p := x.partner()
			ok = p != nil && has(c.partnerKinds, p.Kind)
		case fPartnerTag:
			p := x.partner()
			ok = false
			if p != nil {
				for _, t := range c.partnerTags {
					if p.HasTag(t) {
						ok = true
						break
					}
				}
			}
		case fAgreement:
			ok = x.covered() == c.agreement
		}
		if !ok {
			return f
		}
	}
	return 0
}

func (c *cond) match(x *evalCtx) bool { return c.failing(x) == 0 }

func hasFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// covered reports whether a registered, approved partner receives the
// share under an agreement in force that covers all of it.
func (x *evalCtx) covered() bool {
	if x.reg == nil || x.ev.Type != event.TypeShare || !isExternal(x.ev.Recipient.Kind) {
		return false
	}
	v := x.reg.Judge(x.ev)
	return v.OK() && !v.Skipped
}

// describe says what of the event matched c, as a phrase such as
// "transfer of user.location.precise.gps to Adnexa Advertising GmbH
// (adnexa, tagged advertiser)". It is built only for violations.
func (c *cond) describe(x *evalCtx) string {
	ev := x.ev
	var b strings.Builder
	if ev.Action != "" {
		b.WriteString(string(ev.Action))
	} else {
		b.WriteString(string(ev.Type))
	}
	if c.present&fCategory != 0 {
		var cats []string
		for _, v := range ev.Data.Categories {
			if covered(c.categories, v) {
				cats = append(cats, v)
			}
		}
		b.WriteString(" of " + strings.Join(cats, ", "))
	} else if len(ev.Data.Categories) > 0 {
		b.WriteString(" of " + strings.Join(ev.Data.Categories, ", "))
	}
	if c.present&fSubjectKind != 0 {
		var kinds []string
		for _, v := range ev.Data.SubjectKinds {
			if has(c.subjectKinds, v) {
				kinds = append(kinds, v)
			}
		}
		b.WriteString(" about " + strings.Join(kinds, ", ") + " subjects")
	}
	if ev.Purpose != "" {
		b.WriteString(" for purpose " + ev.Purpose)
	}
	if ev.Type == event.TypeShare {
		b.WriteString(" to " + x.recipient())
		if c.present&fCountry != 0 && ev.Recipient.Country != "" {
			b.WriteString(" in " + ev.Recipient.Country)
		}
	}
	if c.present&(fChannel|fEncrypted) != 0 && ev.Channel.Kind != "" {
		b.WriteString(" by " + string(ev.Channel.Kind))
	}
	if c.present&fEncrypted != 0 {
		switch {
		case encrypted(&ev.Channel):
			b.WriteString(", encrypted")
		case ev.Channel.EncryptedSet:
			b.WriteString(" without encryption (channel.encrypted is false)")
		default:
			b.WriteString(" without encryption (channel.encrypted not set)")
		}
	}
	if c.present&fAgreement != 0 && !c.agreement {
		b.WriteString(" without an agreement covering it")
		if v := x.reg.Judge(ev); v.Reason() != "" {
			b.WriteString(" (" + v.Reason() + ")")
		}
	}
	return b.String()
}

// explainFailure says why the event fails field f of the require c, after
// the description of what the when matched.
func (c *cond) explainFailure(x *evalCtx, f field, matched string) string {
	ev := x.ev
	var why string
	switch f {
	case fType:
		why = fmt.Sprintf("it is a %s event, not %s", ev.Type, joinAny(c.types, " or "))
	case fAction:
		why = fmt.Sprintf("the action is %s, not %s", ev.Action, joinAny(c.actions, " or "))
	case fCategory:
		var out []string
		for _, v := range ev.Data.Categories {
			if !covered(c.categories, v) {
				out = append(out, v)
			}
		}
		why = fmt.Sprintf("category %s is outside %s", strings.Join(out, ", "), strings.Join(c.categories, ", "))
	case fPurpose:
		if ev.Purpose == "" {
			why = "it declares no purpose; allowed: " + strings.Join(c.purposes, ", ")
		} else {
			why = fmt.Sprintf("purpose %s is not one of %s", ev.Purpose, strings.Join(c.purposes, ", "))
		}
	case fSubjectKind:
		var out []string
		for _, v := range ev.Data.SubjectKinds {
			if !has(c.subjectKinds, v) {
				out = append(out, v)
			}
		}
		if len(out) == 0 {
			why = "it does not say whose data it is"
		} else {
			why = fmt.Sprintf("subject kind %s is not one of %s", strings.Join(out, ", "), strings.Join(c.subjectKinds, ", "))
		}
	case fChannel:
		why = fmt.Sprintf("channel %s is not one of %s", orNone(string(ev.Channel.Kind)), joinAny(c.channels, ", "))
	case fEncrypted:
		switch {
		case c.encrypted && ev.Channel.EncryptedSet:
			why = "the channel is not encrypted (channel.encrypted is false)"
		case c.encrypted:
			why = "the channel is not known to be encrypted (channel.encrypted not set)"
		default:
			why = "the channel is encrypted"
		}
	case fRecipientKind:
		why = fmt.Sprintf("the recipient is %s, not %s", orNone(string(ev.Recipient.Kind)), joinAny(c.rkinds, " or "))
	case fExternal:
		if c.external {
			why = "the recipient is not external"
		} else {
			why = "the recipient is external"
		}
	case fCountry:
		why = fmt.Sprintf("country %s is not one of %s", orNone(ev.Recipient.Country), strings.Join(c.countries, ", "))
	case fPartnerKind:
		if p := x.partner(); p != nil {
			why = fmt.Sprintf("%s is a %s, not a %s", p.Name, p.Kind, joinAny(c.partnerKinds, " or "))
		} else {
			why = "the recipient is not a registered partner"
		}
	case fPartnerTag:
		if x.partner() == nil {
			why = "the recipient is not a registered partner"
		} else {
			why = "the partner is tagged none of " + joinAny(c.partnerTags, ", ")
		}
	case fAgreement:
		if c.agreement {
			why = "no agreement covers it"
			if x.reg != nil && ev.Type == event.TypeShare {
				if v := x.reg.Judge(ev); v.Reason() != "" {
					why += ": " + v.Reason()
				}
			}
		} else {
			why = "an agreement covers it"
		}
	}
	return matched + ", but " + why
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func joinAny[T ~string](list []T, sep string) string {
	parts := make([]string, len(list))
	for i, v := range list {
		parts[i] = string(v)
	}
	return strings.Join(parts, sep)
}
