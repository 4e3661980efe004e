// Package consent keeps the data subjects' consent and account status, as
// published on the subjects topic, and answers one question on the hot
// path: of the subjects in a share, how many had opted out of its data use,
// or had closed their account, at the time of the share?
//
// The registry is in memory. Subject ids arrive pseudonymised as 32
// hexadecimal digits and are kept as 16-byte keys; other ids are hashed to
// 16 bytes. Each subject keeps its status history in event-time order, so a
// share is judged against the status in force at the share's own time even
// when statuses or events arrive late, and applying the same status twice
// changes nothing. It is safe for any number of concurrent readers (Check)
// with writers (Apply) serialised by a read-write lock.
//
// It does not read Kafka or ClickHouse: the pipeline applies what it reads
// from the subjects topic, and seeds the registry from storage at start-up
// with ApplyAll. It does not decide what is an alert either.
package consent

import (
	"hash/maphash"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

// Key is a subject id as the registry stores it: the 16 bytes of a
// 32-hex-digit pseudonym, or a 128-bit hash of any other id.
type Key [16]byte

var seedA, seedB = maphash.MakeSeed(), maphash.MakeSeed()

// KeyOf returns the registry key of a subject id. A 32-digit hexadecimal
// id (either case) is decoded; any other id is hashed, with a per-process
// seed (keys are never persisted). It does not allocate.
func KeyOf(subject string) Key {
	var k Key
	if len(subject) == 32 {
		ok := true
		for i := 0; i < 16; i++ {
			hi, ok1 := unhex(subject[2*i])
			lo, ok2 := unhex(subject[2*i+1])
			if !ok1 || !ok2 {
				ok = false
				break
			}
			k[i] = hi<<4 | lo
		}
		if ok {
			return k
		}
	}
	a, b := maphash.String(seedA, subject), maphash.String(seedB, subject)
	for i := 0; i < 8; i++ {
		k[i] = byte(a >> (8 * i))
		k[8+i] = byte(b >> (8 * i))
	}
	return k
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// kind is a status kind as stored; at equal times statuses apply in this
// order, so that an opt-out and an opt-in stamped with the same instant
// leave the subject opted out (the protective reading), whatever order
// they arrived in.
type kind uint8

const (
	kindOptedIn kind = iota + 1
	kindOptedOut
	kindClosed
	kindMulti // slot only: the subject's history is in Registry.multi
)

func kindOf(s event.SubjectStatusKind) kind {
	switch s {
	case event.StatusOptedIn:
		return kindOptedIn
	case event.StatusOptedOut:
		return kindOptedOut
	case event.StatusClosed:
		return kindClosed
	}
	return 0
}

// entry is one status of a subject: 16 bytes.
type entry struct {
	at   int64  // Unix nanoseconds
	set  uint32 // interned use set; 0 means all uses; index of multi for kindMulti
	kind kind
}

func (e entry) less(o entry) bool {
	if e.at != o.at {
		return e.at < o.at
	}
	if e.kind != o.kind {
		return e.kind < o.kind
	}
	return e.set < o.set
}

// Registry is the subjects' status, keyed by pseudonymised subject id. The
// zero value is not usable: call New.
type Registry struct {
	mu       sync.RWMutex
	subjects map[Key]entry // one status inline; kindMulti points into multi
	multi    [][]entry     // histories of subjects with several statuses, sorted
	sets     [][]string    // interned use sets; sets[0] is nil (all uses)
	setIDs   map[string]uint32
	statuses int
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{
		subjects: map[Key]entry{},
		sets:     [][]string{nil},
		setIDs:   map[string]uint32{"": 0},
	}
}

// Len is the number of subjects with at least one status.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.subjects)
}

// Statuses is the number of distinct statuses held, over all subjects.
func (r *Registry) Statuses() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.statuses
}

// Apply records one status message and reports whether it changed the
// registry. Statuses are kept in event-time order whatever order they
// arrive in; a status already held (same subject, time, status and uses,
// in any order) changes nothing, so re-delivery is harmless. A message
// without a subject or with an unknown status is ignored (the decoder
// refuses those). Meaning, at the share's time:
//   - opted_out with uses: the subject objects to those uses and to every
//     use under them ("marketing" covers "marketing.email"); without uses,
//     to all sharing.
//   - opted_in with uses: lifts the objection for those uses and those
//     under them; without uses, lifts every objection.
//   - closed: the account is closed; any share of the subject from then on
//     is a violation. Nothing reopens an account.
func (r *Registry) Apply(s *event.SubjectStatus) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.apply(s)
}

// ApplyAll applies every status of seq, for seeding the registry from
// storage at start-up, and returns how many changed it. It takes the write
// lock in batches, so readers are not starved during a long load.
func (r *Registry) ApplyAll(seq iter.Seq[*event.SubjectStatus]) int {
	const batch = 1024
	n, inBatch := 0, 0
	r.mu.Lock()
	for s := range seq {
		if r.apply(s) {
			n++
		}
		if inBatch++; inBatch == batch {
			r.mu.Unlock()
			inBatch = 0
			r.mu.Lock()
		}
	}
	r.mu.Unlock()
	return n
}

func (r *Registry) apply(s *event.SubjectStatus) bool {
	if s == nil || s.Subject == "" {
		return false
	}
	k := kindOf(s.Status)
	if k == 0 {
		return false
	}
	e := entry{at: s.Time.UnixNano(), set: r.intern(s.Uses), kind: k}
	key := KeyOf(s.Subject)
	cur, ok := r.subjects[key]
	switch {
	case !ok:
		r.subjects[key] = e
	case cur.kind != kindMulti:
		if cur == e {
			return false
		}
		pair := []entry{cur, e}
		if e.less(cur) {
			pair[0], pair[1] = e, cur
		}
		r.multi = append(r.multi, pair)
		r.subjects[key] = entry{set: uint32(len(r.multi) - 1), kind: kindMulti}
	default:
		h := r.multi[cur.set]
		i, found := slices.BinarySearchFunc(h, e, func(a, b entry) int {
			switch {
			case a.less(b):
				return -1
			case b.less(a):
				return 1
			}
			return 0
		})
		if found {
			return false
		}
		r.multi[cur.set] = slices.Insert(h, i, e)
	}
	r.statuses++
	return true
}

// intern returns the id of a use set, sorted and without duplicates.
func (r *Registry) intern(uses []string) uint32 {
	if len(uses) == 0 {
		return 0
	}
	if len(uses) == 1 {
		if id, ok := r.setIDs[uses[0]]; ok {
			return id
		}
	}
	u := slices.Clone(uses)
	slices.Sort(u)
	u = slices.Compact(u)
	key := strings.Join(u, "\x00")
	if id, ok := r.setIDs[key]; ok {
		return id
	}
	id := uint32(len(r.sets))
	r.sets = append(r.sets, u)
	r.setIDs[key] = id
	return id
}

// covers reports whether the dotted use granted covers use on dot
// boundaries ("marketing" covers "marketing.email", not "marketingx").
func covers(granted, use string) bool {
	if len(use) < len(granted) || use[:len(granted)] != granted {
		return false
	}
	return len(use) == len(granted) || use[len(granted)] == '.'
}

func (r *Registry) applies(set uint32, use string) bool {
	if set == 0 {
		return true
	}
	for _, g := range r.sets[set] {
		if covers(g, use) {
			return true
		}
	}
	return false
}

// Check counts, among subjects, those that had opted out of use as of at,
// and those whose account was closed as of at (a status applies from its
// own time on). The counts are independent: a subject both opted out and
// closed counts in both. An empty use (a share that declared no purpose)
// is covered only by opt-outs of all sharing. Unknown subjects count in
// neither. Subjects listed twice count twice: events list each subject
// once. It does not allocate.
func (r *Registry) Check(subjects []string, use string, at time.Time) (optedOut, closed int) {
	if len(subjects) == 0 {
		return 0, 0
	}
	t := at.UnixNano()
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.subjects) == 0 {
		return 0, 0
	}
	for _, s := range subjects {
		e, ok := r.subjects[KeyOf(s)]
		if !ok {
			continue
		}
		var out, cl bool
		if e.kind != kindMulti {
			out, cl = r.state([]entry{e}, use, t)
		} else {
			out, cl = r.state(r.multi[e.set], use, t)
		}
		if out {
			optedOut++
		}
		if cl {
			closed++
		}
	}
	return optedOut, closed
}

// state replays a subject's history up to t for use.
func (r *Registry) state(h []entry, use string, t int64) (out, closed bool) {
	for _, e := range h {
		if e.at > t {
			break
		}
		switch e.kind {
		case kindClosed:
			closed = true
		case kindOptedOut:
			if r.applies(e.set, use) {
				out = true
			}
		case kindOptedIn:
			if r.applies(e.set, use) {
				out = false
			}
		}
	}
	return out, closed
}
