package emf_test

import (
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/emf"
)

// BenchmarkInvocation measures one invocation of a wrapped handler on the
// memory store, without metrics ("off") and with EMF records written to
// io.Discard ("emf"): the difference is the cost of the metrics.
func BenchmarkInvocation(b *testing.B) {
	h := func(_ context.Context, id string) (string, error) { return "ok " + id, nil }
	ctx := context.Background()
	for _, mode := range []string{"off", "emf"} {
		build := func(opts ...idempotent.Option) func(context.Context, string) (string, error) {
			if mode == "off" {
				return idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore(), opts...), h)
			}
			m, err := emf.New(func(o *emf.Options) {
				o.Writer = io.Discard
				o.Dimensions = map[string]string{"FunctionName": "bench"}
			})
			if err != nil {
				b.Fatal(err)
			}
			return emf.Wrap(m, idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore(), append(opts, m.Option())...), h))
		}
		b.Run("new/"+mode, func(b *testing.B) {
			w := build()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := w(ctx, strconv.Itoa(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("cache-replay/"+mode, func(b *testing.B) {
			w := build(idempotent.WithLocalCache(16))
			if _, err := w(ctx, "k"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w(ctx, "k"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecord isolates the cost of metrics per invocation: emf.Wrap
// around a handler that reports one call (what a guarded invocation
// reports), the record written to io.Discard.
func BenchmarkRecord(b *testing.B) {
	m, err := emf.New(func(o *emf.Options) {
		o.Writer = io.Discard
		o.Dimensions = map[string]string{"FunctionName": "bench"}
	})
	if err != nil {
		b.Fatal(err)
	}
	obs := m.Observer()
	ev := idempotent.Report{Name: "bench", Outcome: idempotent.OutcomeReplayed, Attempts: 1, StoreTime: 3 * time.Millisecond}
	h := emf.Wrap(m, func(ctx context.Context, _ int) (int, error) {
		obs.Call(ctx, ev)
		return 0, nil
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h(ctx, 0); err != nil {
			b.Fatal(err)
		}
	}
}
