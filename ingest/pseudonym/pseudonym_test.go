package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

func TestSubject(t *testing.T) {
	key := []byte("0123456789abcdef-test-key")
	k, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, id string }{
		{"email", "alice@example.com"},
		{"numeric", "cust-000123"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := hmac.New(sha256.New, key)
			m.Write([]byte(tt.id))
			want := hex.EncodeToString(m.Sum(nil))[:Size]
			if got := k.Subject(tt.id); got != want {
				t.Fatalf("Subject(%q) = %s, want %s", tt.id, got, want)
			}
			if got := k.Clone().Subject(tt.id); got != want {
				t.Fatalf("clone gives %s, want %s", got, want)
			}
		})
	}
	other, _ := New([]byte("another-key-0123456789"))
	if other.Subject("alice@example.com") == k.Subject("alice@example.com") {
		t.Fatal("different keys gave the same pseudonym")
	}
}

func TestShortKey(t *testing.T) {
	if _, err := New([]byte("short")); !errors.Is(err, ErrShortKey) {
		t.Fatalf("New(short) error = %v, want ErrShortKey", err)
	}
}

func BenchmarkSubject(b *testing.B) {
	k, _ := New([]byte("0123456789abcdef-bench"))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = k.Subject("cust-000123456")
	}
}
