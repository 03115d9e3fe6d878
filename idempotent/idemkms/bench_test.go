package idemkms_test

import (
	"context"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemkms"
)

// BenchmarkReplay is a warm container: a new record completed and replayed
// per iteration through the core, with and without encryption (the data-key
// caches make no KMS call after the first).
func BenchmarkReplay(b *testing.B) {
	for _, enc := range []bool{false, true} {
		name := "plain"
		if enc {
			name = "idemkms"
		}
		b.Run(name, func(b *testing.B) {
			var store idempotent.Store = idempotent.NewMemoryStore()
			if enc {
				s, err := idemkmsWrapB(b, store)
				if err != nil {
					b.Fatal(err)
				}
				store = s
			}
			g := idempotent.New(store)
			ctx := context.Background()
			fn := func(context.Context) (string, error) { return "confirmation ch_123 for 1250 EUR", nil }
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				key := string(rune('a'+i%26)) + string(rune(i))
				i++
				if _, err := idempotent.Do(ctx, g, "pay", key, fn); err != nil {
					b.Fatal(err)
				}
				if _, err := idempotent.Do(ctx, g, "pay", key, fn); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func idemkmsWrapB(b *testing.B, next idempotent.Store) (idempotent.Store, error) {
	b.Helper()
	c := localKMSFor(b)
	return idemkms.Wrap(next, c, aliasTest)
}
