package partner

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules/internal/strictyaml"
)

// Parse reads and validates a registry from data; name is the file name
// used in errors. A bad file is refused as a whole: the error lists each
// problem as file:line:column: cause (unknown keys, invalid kinds, statuses,
// channels, countries or dates, duplicate ids, domains or agreement refs,
// valid_to before valid_from, ...).
func Parse(name string, data []byte) (*Registry, error) {
	r, root, err := strictyaml.Parse(name, data)
	if err != nil {
		return nil, err
	}
	reg := &Registry{
		source:   name,
		byID:     map[string]*Partner{},
		byDomain: map[string]*Partner{},
	}
	domainLine := map[string]int{}
	r.Mapping(root, "registry", map[string]strictyaml.Field{
		"partners": {Required: true, Read: func(v *yaml.Node) {
			r.Seq(v, "partners", func(_ int, pn *yaml.Node) {
				p := readPartner(r, pn)
				if p == nil {
					return
				}
				if prev, dup := reg.byID[p.ID]; dup {
					r.Errorf(pn, "duplicate partner id %q (first at line %d)", p.ID, prev.Line)
					return
				}
				reg.byID[p.ID] = p
				reg.partners = append(reg.partners, p)
				for i, d := range p.Domains {
					if prev, dup := reg.byDomain[d]; dup {
						r.Errorf(p.domainNodes[i], "domain %q of partner %q is already listed by partner %q (line %d)", d, p.ID, prev.ID, domainLine[d])
						continue
					}
					reg.byDomain[d] = p
					domainLine[d] = p.domainNodes[i].Line
				}
				p.domainNodes = nil
			})
		}},
	})
	if err := r.Err(); err != nil {
		return nil, err
	}
	return reg, nil
}

func readPartner(r *strictyaml.Reader, n *yaml.Node) *Partner {
	p := &Partner{Line: n.Line}
	r.Mapping(n, "partner", map[string]strictyaml.Field{
		"id": {Required: true, Read: func(v *yaml.Node) {
			p.ID = r.String(v, "id")
			if p.ID == "" || strings.ContainsAny(p.ID, " \t\r\n") {
				r.Errorf(v, "partner id must be a non-empty word without spaces, not %q", p.ID)
			}
		}},
		"name": {Required: true, Read: func(v *yaml.Node) {
			if p.Name = r.String(v, "name"); p.Name == "" {
				r.Errorf(v, "partner name is empty")
			}
		}},
		"kind": {Required: true, Read: func(v *yaml.Node) {
			p.Kind = Kind(r.String(v, "kind"))
			if !p.Kind.Valid() {
				r.Errorf(v, "invalid kind %q: want partner, processor, affiliate or authority", p.Kind)
			}
		}},
		"status": {Required: true, Read: func(v *yaml.Node) {
			p.Status = Status(r.String(v, "status"))
			if !p.Status.Valid() {
				r.Errorf(v, "invalid status %q: want approved, under_review, suspended or revoked", p.Status)
			}
		}},
		"domains": {Read: func(v *yaml.Node) {
			seen := map[string]bool{}
			r.Seq(v, "domains", func(_ int, dn *yaml.Node) {
				raw := r.String(dn, "domain")
				d, ok := normalizeDomain(raw)
				if !ok {
					r.Errorf(dn, "invalid domain %q: want a host name such as example.com", raw)
					return
				}
				if seen[d] {
					r.Errorf(dn, "domain %q listed twice", d)
					return
				}
				seen[d] = true
				p.Domains = append(p.Domains, d)
				p.domainNodes = append(p.domainNodes, dn)
			})
		}},
		"tags": {Read: func(v *yaml.Node) {
			seen := map[Tag]bool{}
			r.Seq(v, "tags", func(_ int, tn *yaml.Node) {
				t := Tag(r.String(tn, "tag"))
				if !t.Valid() {
					r.Errorf(tn, "invalid tag %q: want one of %s", t, tagList())
					return
				}
				if seen[t] {
					r.Errorf(tn, "tag %q listed twice", t)
					return
				}
				seen[t] = true
				p.Tags = append(p.Tags, t)
			})
		}},
		"risk_notes": {Read: func(v *yaml.Node) { p.RiskNotes = r.String(v, "risk_notes") }},
		"agreements": {Read: func(v *yaml.Node) {
			refs := map[string]int{}
			r.Seq(v, "agreements", func(_ int, an *yaml.Node) {
				a, ok := readAgreement(r, an)
				if !ok {
					return
				}
				if line, dup := refs[a.Ref]; dup {
					r.Errorf(an, "duplicate agreement ref %q (first at line %d)", a.Ref, line)
					return
				}
				refs[a.Ref] = an.Line
				p.Agreements = append(p.Agreements, a)
			})
		}},
	})
	if p.ID == "" {
		return nil
	}
	return p
}

func readAgreement(r *strictyaml.Reader, n *yaml.Node) (Agreement, bool) {
	var a Agreement
	var fromNode, toNode *yaml.Node
	r.Mapping(n, "agreement", map[string]strictyaml.Field{
		"ref": {Required: true, Read: func(v *yaml.Node) {
			if a.Ref = r.String(v, "ref"); a.Ref == "" {
				r.Errorf(v, "agreement ref is empty")
			}
		}},
		"categories": {Required: true, Read: func(v *yaml.Node) {
			a.Categories = dotted(r, v, "categories", "data category")
		}},
		"uses": {Required: true, Read: func(v *yaml.Node) {
			a.Uses = dotted(r, v, "uses", "data use")
		}},
		"channels": {Read: func(v *yaml.Node) {
			r.Seq(v, "channels", func(_ int, cn *yaml.Node) {
				c := event.ChannelKind(r.String(cn, "channel"))
				if !validChannel(c) {
					r.Errorf(cn, "invalid channel %q: want api, https, sftp, email, s3, http, ftp or other", c)
					return
				}
				a.Channels = append(a.Channels, c)
			})
		}},
		"countries": {Read: func(v *yaml.Node) {
			r.Seq(v, "countries", func(_ int, cn *yaml.Node) {
				c := r.String(cn, "country")
				if !validCountry(c) {
					r.Errorf(cn, "invalid country %q: want an ISO 3166-1 alpha-2 code such as DE", c)
					return
				}
				a.Countries = append(a.Countries, strings.ToUpper(c))
			})
		}},
		"valid_from": {Required: true, Read: func(v *yaml.Node) {
			fromNode = v
			a.ValidFrom = r.Date(v, "valid_from")
		}},
		"valid_to": {Read: func(v *yaml.Node) {
			toNode = v
			a.ValidTo = r.Date(v, "valid_to")
		}},
	})
	if fromNode != nil && toNode != nil && !a.ValidFrom.IsZero() && !a.ValidTo.IsZero() && a.ValidTo.Before(a.ValidFrom) {
		r.Errorf(toNode, "valid_to %s is before valid_from %s (line %d)",
			a.ValidTo.Format(strictyaml.DateLayout), a.ValidFrom.Format(strictyaml.DateLayout), fromNode.Line)
	}
	return a, a.Ref != ""
}

// dotted reads a list of dotted terms such as "user.contact.email".
func dotted(r *strictyaml.Reader, v *yaml.Node, what, term string) []string {
	if (v.Kind == yaml.SequenceNode || v.Tag == "!!null") && len(v.Content) == 0 {
		r.Errorf(v, "%s: the agreement must list at least one %s", what, term)
		return nil
	}
	var out []string
	r.Seq(v, what, func(_ int, tn *yaml.Node) {
		s := r.String(tn, term)
		if !validDotted(s) {
			r.Errorf(tn, "invalid %s %q: want dotted lower-case words such as user.contact.email", term, s)
			return
		}
		out = append(out, s)
	})
	return out
}

func validDotted(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func tagList() string {
	parts := make([]string, len(Tags))
	for i, t := range Tags {
		parts[i] = string(t)
	}
	return strings.Join(parts, ", ")
}

func validChannel(c event.ChannelKind) bool {
	switch c {
	case event.ChannelAPI, event.ChannelHTTPS, event.ChannelSFTP, event.ChannelEmail,
		event.ChannelS3, event.ChannelHTTP, event.ChannelFTP, event.ChannelOther:
		return true
	}
	return false
}

func validCountry(c string) bool {
	if len(c) != 2 {
		return false
	}
	for i := 0; i < 2; i++ {
		ch := c[i] | 0x20
		if ch < 'a' || ch > 'z' {
			return false
		}
	}
	return true
}

// normalizeDomain lower-cases d, drops a trailing dot and checks it is a
// host name of at least two labels.
func normalizeDomain(d string) (string, bool) {
	d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
	if len(d) == 0 || len(d) > maxDomain || !strings.Contains(d, ".") {
		return "", false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return d, true
}

// String describes the partner for alert texts: "Acme Analytics Ltd
// (acme-analytics, processor, approved)".
func (p *Partner) String() string {
	return fmt.Sprintf("%s (%s, %s, %s)", p.Name, p.ID, p.Kind, p.Status)
}
