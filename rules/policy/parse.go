package policy

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/internal/strictyaml"
	"github.com/custos-privacy/custos/rules/partner"
)

// Parse reads and validates a policy from data; name is the file name used
// in errors. A bad file is refused as a whole: the error lists each
// problem as file:line:column: cause (unknown keys, unknown values, bad
// data categories or purposes, duplicate promise ids, a check that neither
// forbids nor requires, a forbid without conditions, ...).
func Parse(name string, data []byte) (*Policy, error) {
	r, root, err := strictyaml.Parse(name, data)
	if err != nil {
		return nil, err
	}
	p := &Policy{source: name}
	ids := map[string]int{}
	r.Mapping(root, "policy", map[string]strictyaml.Field{
		"statement": {Read: func(v *yaml.Node) {
			r.Mapping(v, "statement", map[string]strictyaml.Field{
				"title":   {Read: func(v *yaml.Node) { p.title = r.String(v, "title") }},
				"url":     {Read: func(v *yaml.Node) { p.url = r.String(v, "url") }},
				"version": {Read: func(v *yaml.Node) { p.version = r.String(v, "version") }},
			})
		}},
		"promises": {Required: true, Read: func(v *yaml.Node) {
			if isEmpty(v) {
				r.Errorf(v, "promises: the policy must list at least one promise")
				return
			}
			r.Seq(v, "promises", func(_ int, pn *yaml.Node) {
				pr := readPromise(r, pn)
				if pr == nil {
					return
				}
				if line, dup := ids[pr.ID]; dup {
					r.Errorf(pn, "duplicate promise id %q (first at line %d)", pr.ID, line)
					return
				}
				ids[pr.ID] = pr.Line
				p.promises = append(p.promises, pr)
			})
		}},
	})
	if err := r.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

func isEmpty(v *yaml.Node) bool {
	return (v.Kind == yaml.SequenceNode || v.Kind == yaml.MappingNode || v.Tag == "!!null") && len(v.Content) == 0
}

func readPromise(r *strictyaml.Reader, n *yaml.Node) *Promise {
	pr := &Promise{Line: n.Line}
	r.Mapping(n, "promise", map[string]strictyaml.Field{
		"id": {Required: true, Read: func(v *yaml.Node) {
			pr.ID = r.String(v, "id")
			if !validID(pr.ID) {
				r.Errorf(v, "promise id must be lower-case letters, digits, '-' or '_', not %q", pr.ID)
			}
		}},
		"text": {Required: true, Read: func(v *yaml.Node) {
			if pr.Text = strings.TrimSpace(r.String(v, "text")); pr.Text == "" {
				r.Errorf(v, "promise text is empty: quote the promise from the published statement")
			}
		}},
		"checks": {Required: true, Read: func(v *yaml.Node) {
			if isEmpty(v) {
				r.Errorf(v, "checks: the promise must have at least one check")
				return
			}
			r.Seq(v, "checks", func(_ int, cn *yaml.Node) {
				if c, ok := readCheck(r, cn); ok {
					pr.checks = append(pr.checks, c)
				}
			})
		}},
	})
	if pr.ID == "" {
		return nil
	}
	return pr
}

func validID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func readCheck(r *strictyaml.Reader, n *yaml.Node) (check, bool) {
	var c check
	var forbidNode, requireNode *yaml.Node
	r.Mapping(n, "check", map[string]strictyaml.Field{
		"when": {Required: true, Read: func(v *yaml.Node) { c.when = readCond(r, v, "when", false) }},
		"forbid": {Read: func(v *yaml.Node) {
			forbidNode = v
			if c.forbid = r.Bool(v, "forbid"); !c.forbid && v.Tag == "!!bool" {
				r.Errorf(v, "forbid: false forbids nothing: write forbid: true, or a require")
			}
		}},
		"require": {Read: func(v *yaml.Node) {
			requireNode = v
			c.require = readCond(r, v, "require", true)
			if c.require.present == 0 && !isEmpty(v) {
				return
			}
			if c.require.present == 0 {
				r.Errorf(v, "require: state at least one condition")
			}
		}},
	})
	switch {
	case n.Kind != yaml.MappingNode:
		return c, false
	case forbidNode != nil && requireNode != nil:
		r.Errorf(requireNode, "a check either forbids or requires, not both")
		return c, false
	case forbidNode == nil && requireNode == nil:
		r.Errorf(n, "check: add forbid: true (events matching when break the promise) or require: (conditions they must meet)")
		return c, false
	case c.when.present == 0:
		return c, false // readCond reported the empty or broken when
	}
	return c, true
}

// readCond reads a when (all false) or a require (all true) mapping.
func readCond(r *strictyaml.Reader, v *yaml.Node, what string, all bool) cond {
	c := cond{all: all}
	set := func(f field) { c.present |= f }
	fields := map[string]strictyaml.Field{
		"type": {Read: func(v *yaml.Node) {
			for _, s := range list(r, v, "type") {
				t := event.Type(s.val)
				if t != event.TypeAccess && t != event.TypeShare {
					r.Errorf(s.node, "invalid type %q: want access or share", s.val)
					continue
				}
				c.types = append(c.types, t)
			}
			set(fType)
		}},
		"actions": {Read: func(v *yaml.Node) {
			for _, s := range list(r, v, "actions") {
				a := event.Action(s.val)
				if !validAction(a) {
					r.Errorf(s.node, "invalid action %q: want read, query, export, download, update, delete or transfer", s.val)
					continue
				}
				c.actions = append(c.actions, a)
			}
			set(fAction)
		}},
		"categories": {Read: func(v *yaml.Node) {
			for _, s := range list(r, v, "categories") {
				if !partner.ValidTerm(s.val) {
					r.Errorf(s.node, "invalid data category %q: want dotted lower-case words such as user.location.precise", s.val)
					continue
				}
				if root, _, _ := strings.Cut(s.val, "."); root != "user" && root != "system" {
					r.Errorf(s.node, "invalid data category %q: categories start with user. or system. (e.g. user.%s)", s.val, s.val)
					continue
				}
				c.categories = append(c.categories, s.val)
			}
			set(fCategory)
		}},
		"purposes": {Read: func(v *yaml.Node) {
			for _, s := range list(r, v, "purposes") {
				if !partner.ValidTerm(s.val) {
					r.Errorf(s.node, "invalid purpose %q: want dotted lower-case words such as marketing.advertising", s.val)
					continue
				}
				c.purposes = append(c.purposes, s.val)
			}
			set(fPurpose)
		}},
		"subject_kinds": {Read: func(v *yaml.Node) {
			for _, s := range list(r, v, "subject_kinds") {
				if !partner.ValidTerm(s.val) || strings.Contains(s.val, ".") {
					r.Errorf(s.node, "invalid subject kind %q: want a lower-case word such as customer or child", s.val)
					continue
				}
				c.subjectKinds = append(c.subjectKinds, s.val)
			}
			set(fSubjectKind)
		}},
		"channels": {Read: func(v *yaml.Node) {
			for _, s := range list(r, v, "channels") {
				ch := event.ChannelKind(s.val)
				if !validChannel(ch) {
					r.Errorf(s.node, "invalid channel %q: want api, https, sftp, email, s3, http, ftp or other", s.val)
					continue
				}
				c.channels = append(c.channels, ch)
			}
			set(fChannel)
		}},
		"encrypted": {Read: func(v *yaml.Node) { c.encrypted = r.Bool(v, "encrypted"); set(fEncrypted) }},
		"agreement": {Read: func(v *yaml.Node) { c.agreement = r.Bool(v, "agreement"); set(fAgreement) }},
		"recipient": {Read: func(v *yaml.Node) {
			if isEmpty(v) {
				r.Errorf(v, "recipient: state at least one condition")
				return
			}
			r.Mapping(v, "recipient", map[string]strictyaml.Field{
				"kinds": {Read: func(v *yaml.Node) {
					for _, s := range list(r, v, "kinds") {
						k := event.RecipientKind(s.val)
						if !validRecipientKind(k) {
							r.Errorf(s.node, "invalid recipient kind %q: want partner, processor, data_subject, authority, affiliate, internal or unknown", s.val)
							continue
						}
						c.rkinds = append(c.rkinds, k)
					}
					set(fRecipientKind)
				}},
				"external": {Read: func(v *yaml.Node) { c.external = r.Bool(v, "external"); set(fExternal) }},
				"countries": {Read: func(v *yaml.Node) {
					for _, s := range list(r, v, "countries") {
						if len(s.val) != 2 || strings.ToUpper(s.val) != s.val || !isAlpha(s.val) {
							r.Errorf(s.node, "invalid country %q: want an ISO 3166-1 alpha-2 code such as DE", s.val)
							continue
						}
						c.countries = append(c.countries, s.val)
					}
					set(fCountry)
				}},
				"partner_kinds": {Read: func(v *yaml.Node) {
					for _, s := range list(r, v, "partner_kinds") {
						k := partner.Kind(s.val)
						if !k.Valid() {
							r.Errorf(s.node, "invalid partner kind %q: want partner, processor, affiliate or authority", s.val)
							continue
						}
						c.partnerKinds = append(c.partnerKinds, k)
					}
					set(fPartnerKind)
				}},
				"partner_tags": {Read: func(v *yaml.Node) {
					for _, s := range list(r, v, "partner_tags") {
						t := partner.Tag(s.val)
						if !t.Valid() {
							r.Errorf(s.node, "invalid partner tag %q: want one of %s", s.val, joinAny(partner.Tags, ", "))
							continue
						}
						c.partnerTags = append(c.partnerTags, t)
					}
					set(fPartnerTag)
				}},
			})
		}},
	}
	if isEmpty(v) {
		if !all {
			r.Errorf(v, "%s: state at least one condition", what)
		}
		return c
	}
	r.Mapping(v, what, fields)
	return c
}

// item is one entry of a scalar-or-list value, with its node for errors.
type item struct {
	val  string
	node *yaml.Node
}

// list reads a single value or a non-empty list of values.
func list(r *strictyaml.Reader, v *yaml.Node, what string) []item {
	if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		return []item{{r.String(v, what), v}}
	}
	if isEmpty(v) {
		r.Errorf(v, "%s: list at least one value", what)
		return nil
	}
	var out []item
	r.Seq(v, what, func(_ int, n *yaml.Node) {
		if s := r.String(n, what+" entry"); s != "" {
			out = append(out, item{s, n})
		} else if n.Kind == yaml.ScalarNode {
			r.Errorf(n, "%s: empty entry", what)
		}
	})
	return out
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func validAction(a event.Action) bool {
	switch a {
	case event.ActionRead, event.ActionQuery, event.ActionExport, event.ActionDownload,
		event.ActionUpdate, event.ActionDelete, event.ActionTransfer:
		return true
	}
	return false
}

func validChannel(c event.ChannelKind) bool {
	switch c {
	case event.ChannelAPI, event.ChannelHTTPS, event.ChannelSFTP, event.ChannelEmail,
		event.ChannelS3, event.ChannelHTTP, event.ChannelFTP, event.ChannelOther:
		return true
	}
	return false
}

func validRecipientKind(k event.RecipientKind) bool {
	switch k {
	case event.RecipientPartner, event.RecipientProcessor, event.RecipientDataSubject,
		event.RecipientAuthority, event.RecipientAffiliate, event.RecipientInternal, event.RecipientUnknown:
		return true
	}
	return false
}
