package idempotent_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/internal/benchdata"
)

// result1KB is a handler result of about 1 KB of JSON.
type result1KB struct {
	ID    string `json:"id"`
	Items []string
}

func newResult1KB(id string) result1KB {
	r := result1KB{ID: id}
	for i := range 20 {
		r.Items = append(r.Items, strings.Repeat("x", 40)+strconv.Itoa(i))
	}
	return r
}

// BenchmarkWrap measures the wrapper on the memory store: a new key each
// call, a replay from the store, and a replay from the local cache.
func BenchmarkWrap(b *testing.B) {
	h := func(_ context.Context, o order) (result1KB, error) { return newResult1KB(o.ID), nil }
	ctx := context.Background()

	b.Run("new", func(b *testing.B) {
		w := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore()), h, idempotent.WithKeyPath("id"))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := w(ctx, order{ID: strconv.Itoa(i)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("replay", func(b *testing.B) {
		w := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore()), h, idempotent.WithKeyPath("id"))
		if _, err := w(ctx, order{ID: "o-1"}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := w(ctx, order{ID: "o-1"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache-replay", func(b *testing.B) {
		w := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithLocalCache(128)), h, idempotent.WithKeyPath("id"))
		if _, err := w(ctx, order{ID: "o-1"}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := w(ctx, order{ID: "o-1"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDo measures Do with a string key and a 1 KB []byte result: a new
// key each call, a replay from the store, and a replay from the local cache.
func BenchmarkDo(b *testing.B) {
	ctx := context.Background()
	payload := []byte(strings.Repeat("y", 1024))
	fn := func(context.Context) ([]byte, error) { return payload, nil }

	b.Run("new", func(b *testing.B) {
		g := idempotent.New(idempotent.NewMemoryStore())
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := idempotent.Do(ctx, g, "step", strconv.Itoa(i), fn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("replay", func(b *testing.B) {
		g := idempotent.New(idempotent.NewMemoryStore())
		if _, err := idempotent.Do(ctx, g, "step", "k", fn); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := idempotent.Do(ctx, g, "step", "k", fn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache-replay", func(b *testing.B) {
		g := idempotent.New(idempotent.NewMemoryStore(), idempotent.WithLocalCache(128))
		if _, err := idempotent.Do(ctx, g, "step", "k", fn); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := idempotent.Do(ctx, g, "step", "k", fn); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchEvent is the event of tools/bench (make bench).
type benchEvent struct {
	ID string `json:"id"`
}

// BenchmarkWrapRawMessage is the shape of make bench's Redis side over the
// memory store: Wrap of a handler returning a json.RawMessage of 200 B or
// 20 KB, keyed by WithKeyPath("id"); a new key each call, and a replay from
// the store. It measures the core's own CPU per invocation (the store's
// round trips cost nothing here; compression is the stores', see
// internal/zdata's benchmarks).
func BenchmarkWrapRawMessage(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{200, 20 << 10} {
		result := json.RawMessage(benchdata.JSON(size, 1))
		h := func(context.Context, benchEvent) (json.RawMessage, error) { return result, nil }
		name := strconv.Itoa(size) + "B"
		b.Run("new/"+name, func(b *testing.B) {
			// The clock moves past the TTL every 512 calls, so the store
			// sweeps its records as it grows instead of holding every
			// result of the run (which would measure page faults).
			now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			w := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithName("bench"), idempotent.WithClock(clock)), h, idempotent.WithKeyPath("id"))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%512 == 0 {
					now = now.Add(2 * time.Hour)
				}
				if out, err := w(ctx, benchEvent{ID: strconv.Itoa(i)}); err != nil || len(out) != size {
					b.Fatal(len(out), err)
				}
			}
		})
		b.Run("replay/"+name, func(b *testing.B) {
			w := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithName("bench")), h, idempotent.WithKeyPath("id"))
			if _, err := w(ctx, benchEvent{ID: "k-1"}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if out, err := w(ctx, benchEvent{ID: "k-1"}); err != nil || len(out) != size {
					b.Fatal(len(out), err)
				}
			}
		})
	}
}
