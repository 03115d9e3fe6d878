package idempotent

import (
	"encoding/base64"
	"testing"
)

// TestNewOwner checks the owner token: 128 random bits in 22 characters of
// unpadded URL-safe base64, never the same twice.
func TestNewOwner(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		o, err := newOwner()
		if err != nil {
			t.Fatal(err)
		}
		if len(o) != 22 {
			t.Fatalf("owner %q has %d characters, want 22", o, len(o))
		}
		b, err := base64.RawURLEncoding.DecodeString(o)
		if err != nil || len(b) != 16 {
			t.Fatalf("owner %q decodes to %d bytes, %v; want 16", o, len(b), err)
		}
		if seen[o] {
			t.Fatalf("owner %q twice", o)
		}
		seen[o] = true
	}
}
