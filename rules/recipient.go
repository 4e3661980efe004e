package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/custos-privacy/custos/ingest/event"
)

const day = int64(24 * time.Hour)

// unknownRecipient raises an alert when a share goes to a recipient whose
// domain (or, without a domain, whose id) matches no partner of the
// registry. Shares to the data subject or to internal recipients are not
// third-party transfers and are skipped. One alert per actor, recipient and
// UTC day: id StableID("unknown_recipient", actor+"|"+domain, day).
func (s *State) unknownRecipient(ev *event.Event, t int64, emit func(*Alert)) {
	r := &ev.Recipient
	if r.Kind == event.RecipientDataSubject || r.Kind == event.RecipientInternal {
		return
	}
	reg := s.eng.reg
	key := r.Domain
	if key != "" {
		if _, ok := reg.ByDomain(key); ok {
			return
		}
	} else {
		key = r.ID
		if _, ok := reg.ByID(key); ok && key != "" {
			return
		}
	}
	slot := floorDiv(t, day) * day
	id := stableID2(RuleUnknownRecipient, ev.Actor.ID, key, slot)
	if s.seenID(id) {
		return
	}
	al := &Alert{
		ID:          id,
		Rule:        RuleUnknownRecipient,
		Title:       "Share to an unknown recipient",
		Severity:    s.eng.cfg.UnknownRecipient.Severity,
		Actor:       ev.Actor.ID,
		GroupKey:    ev.Actor.ID + "|" + key,
		Slot:        time.Unix(0, slot).UTC(),
		WindowStart: time.Unix(0, slot).UTC(),
		WindowEnd:   time.Unix(0, slot+day).UTC(),
		FirstSeen:   ev.Time,
		LastSeen:    ev.Time,
		Events:      1,
		Records:     ev.Data.Records,
		Recipient:   key,
		Partition:   s.partition,
		EventTime:   ev.Time,
	}
	if s.eng.cfg.EvidenceSamples > 0 {
		al.Evidence = []string{ev.ID}
	}
	al.Summary = unknownSummary(ev, key)
	s.emitOnce(al, emit)
}

// stableID2 is StableID(rule, a+"|"+b, slot) without building the group
// key string.
func stableID2(rule, a, b string, slot int64) string {
	h := sha256.New()
	var buf [64]byte
	h.Write(append(buf[:0], rule...))
	h.Write([]byte{0})
	h.Write(append(buf[:0], a...))
	h.Write([]byte{'|'})
	h.Write(append(buf[:0], b...))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(buf[:0], slot, 10))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
