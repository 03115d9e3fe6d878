//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts are asserted without it (go test without -race).

package idempotent_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
)

// The allocations of make bench's Wrap shape (a json.RawMessage result,
// WithKeyPath("id")) over the memory store, per call. They are counts, not
// timings: a change that adds one shows here. The memory store's own are
// included (a clone of the record and of its data on each read, one of the
// data on Complete).
func TestWrapAllocations(t *testing.T) {
	ctx := context.Background()
	result := json.RawMessage(`{"ok":true}`)
	h := func(context.Context, benchEvent) (json.RawMessage, error) { return result, nil }
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = "k-" + strconv.Itoa(i)
	}
	tests := []struct {
		name string
		max  float64
		call func(w func(context.Context, benchEvent) (json.RawMessage, error), i int) error
	}{
		{"new key", 18, func(w func(context.Context, benchEvent) (json.RawMessage, error), i int) error {
			_, err := w(ctx, benchEvent{ID: keys[i]})
			return err
		}},
		{"replay", 13, func(w func(context.Context, benchEvent) (json.RawMessage, error), _ int) error {
			_, err := w(ctx, benchEvent{ID: keys[0]})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithName("bench")), h, idempotent.WithKeyPath("id"))
			if err := tt.call(w, 0); err != nil {
				t.Fatal(err)
			}
			i := 0
			got := testing.AllocsPerRun(100, func() {
				i++
				if err := tt.call(w, i); err != nil {
					t.Fatal(err)
				}
			})
			if got > tt.max {
				t.Errorf("%v allocations per call, want at most %v", got, tt.max)
			}
		})
	}
}
