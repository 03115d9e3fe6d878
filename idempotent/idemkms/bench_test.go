package idemkms_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemkms"
	"github.com/idemlambda/idemlambda/idempotent/internal/zdata"
	"github.com/idemlambda/idemlambda/internal/benchdata"
)

// BenchmarkReplay is a warm container: a new record completed and replayed
// per iteration through the core on the memory store, with and without
// encryption (the data-key caches make no KMS call after the first), for the
// bench's JSON results of 200 B and 20 KB. It is the CPU that idemkms adds
// to an invocation (compression, sealing, opening), without a store's round
// trip.
func BenchmarkReplay(b *testing.B) {
	for _, size := range []int{200, 20480} {
		result := json.RawMessage(benchdata.JSON(size, 1))
		for _, enc := range []bool{false, true} {
			name := fmt.Sprintf("%dB/plain", size)
			if enc {
				name = fmt.Sprintf("%dB/idemkms", size)
			}
			b.Run(name, func(b *testing.B) {
				var store idempotent.Store = idempotent.NewMemoryStore()
				if enc {
					s, err := idemkms.Wrap(store, localKMSFor(b), aliasTest)
					if err != nil {
						b.Fatal(err)
					}
					store = s
				}
				g := idempotent.New(store)
				ctx := context.Background()
				fn := func(context.Context) (json.RawMessage, error) { return result, nil }
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					key := fmt.Sprint(i)
					i++
					for range 2 {
						if _, err := idempotent.Do(ctx, g, "pay", key, fn); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// BenchmarkStoreCodecOnSealed is what a store's own compression attempt
// costs on idemkms's output for a 20 KB JSON result (4.7 KB of sealed zstd
// frame): zstd finds nothing to gain and the store keeps the bytes as they
// are. Options.CompressThreshold = -1 on the store saves it.
func BenchmarkStoreCodecOnSealed(b *testing.B) {
	inner := newSpy()
	s, err := idemkms.Wrap(inner, localKMSFor(b), aliasTest)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := idempotent.Do(context.Background(), idempotent.New(s), "pay", "k", func(context.Context) (json.RawMessage, error) {
		return benchdata.JSON(20480, 1), nil
	}); err != nil {
		b.Fatal(err)
	}
	var sealed []byte
	for _, v := range inner.stored {
		sealed = v
	}
	b.SetBytes(int64(len(sealed)))
	for b.Loop() {
		if _, f, err := zdata.Encode(sealed, 512); err != nil || f != "" {
			b.Fatalf("format %q, %v", f, err)
		}
	}
}
