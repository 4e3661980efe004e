package partner

import (
	"fmt"
	"os"
	"strings"
)

// maxDomain is the longest host name DNS allows; longer names are looked up
// through a slower, allocating path.
const maxDomain = 253

// Registry is a loaded, validated partner registry. It is immutable and safe
// for concurrent use.
type Registry struct {
	source   string
	partners []*Partner
	byID     map[string]*Partner
	byDomain map[string]*Partner
}

// Load reads and validates the registry file at path.
func Load(path string) (*Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load partner registry %s: %w", path, err)
	}
	return Parse(path, data)
}

// Source is the file name the registry was parsed from.
func (r *Registry) Source() string { return r.source }

// Len is the number of partners.
func (r *Registry) Len() int { return len(r.partners) }

// Partners returns the partners in file order. The caller must not modify
// them.
func (r *Registry) Partners() []*Partner { return r.partners }

// ByID returns the partner with the given id.
func (r *Registry) ByID(id string) (*Partner, bool) {
	if r == nil {
		return nil, false
	}
	p, ok := r.byID[id]
	return p, ok
}

// ByDomain returns the partner whose domain is host or a parent domain of
// host, the most specific first: with acme-analytics.com registered,
// "sftp.acme-analytics.com" and "ACME-Analytics.com." both match. Matching
// is case-insensitive and ignores a trailing dot. It does not allocate for
// host names up to 253 bytes.
func (r *Registry) ByDomain(host string) (*Partner, bool) {
	if r == nil || len(r.byDomain) == 0 {
		return nil, false
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return nil, false
	}
	if len(host) > maxDomain {
		return r.byDomainString(strings.ToLower(host))
	}
	var buf [maxDomain]byte
	n := copy(buf[:], host)
	for i := 0; i < n; i++ {
		if c := buf[i]; 'A' <= c && c <= 'Z' {
			buf[i] = c + ('a' - 'A')
		}
	}
	b := buf[:n]
	for {
		// Indexing a map with string(bytes) does not allocate.
		if p, ok := r.byDomain[string(b)]; ok {
			return p, true
		}
		i := indexByte(b, '.')
		if i < 0 {
			return nil, false
		}
		b = b[i+1:]
	}
}

func (r *Registry) byDomainString(host string) (*Partner, bool) {
	for {
		if p, ok := r.byDomain[host]; ok {
			return p, true
		}
		i := strings.IndexByte(host, '.')
		if i < 0 {
			return nil, false
		}
		host = host[i+1:]
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
