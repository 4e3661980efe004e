// Package pseudonym replaces data-subject identifiers with keyed
// pseudonyms (HMAC-SHA256 under a secret key) before anything is stored or
// logged. The same id under the same key always gives the same pseudonym,
// so joins (events to subject status, forensic look-ups) still work, while
// the raw id cannot be recovered without the key.
package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
)

// Size is the length in hex characters of a pseudonym (128 bits).
const Size = 32

// MinKeyLen is the shortest key accepted, in bytes.
const MinKeyLen = 16

// ErrShortKey is returned for keys shorter than MinKeyLen.
var ErrShortKey = errors.New("pseudonym key must be at least 16 bytes")

// Keyed computes pseudonyms under one key. A Keyed is not safe for
// concurrent use: give each goroutine its own (see Clone).
type Keyed struct {
	key []byte
	mac hash.Hash
	sum [sha256.Size]byte
	out [Size]byte
}

// New returns a Keyed for key.
func New(key []byte) (*Keyed, error) {
	if len(key) < MinKeyLen {
		return nil, ErrShortKey
	}
	k := append([]byte(nil), key...)
	return &Keyed{key: k, mac: hmac.New(sha256.New, k)}, nil
}

// Clone returns an independent Keyed with the same key, for another
// goroutine.
func (k *Keyed) Clone() *Keyed {
	return &Keyed{key: k.key, mac: hmac.New(sha256.New, k.key)}
}

// Subject returns the pseudonym of a data-subject id: the first 128 bits of
// HMAC-SHA256(key, id), in lower-case hex.
func (k *Keyed) Subject(id string) string {
	k.mac.Reset()
	k.mac.Write([]byte(id))
	sum := k.mac.Sum(k.sum[:0])
	hex.Encode(k.out[:], sum[:Size/2])
	return string(k.out[:])
}

// Subjects replaces every id in ids with its pseudonym, in place.
func (k *Keyed) Subjects(ids []string) {
	for i, id := range ids {
		ids[i] = k.Subject(id)
	}
}
