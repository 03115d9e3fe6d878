package idempotent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// An observer cannot change what the guard does: a panic in any of its
// functions, or a nil context from Phase, leaves the call's outcome as it
// would be without the observer — in particular a successful run is still
// completed, so a retry replays instead of running again.
func TestObserverCannotBreakTheGuard(t *testing.T) {
	tests := []struct {
		name string
		obs  idempotent.Observer
	}{
		{name: "Call panics", obs: idempotent.Observer{Call: func(context.Context, idempotent.Report) { panic("call") }}},
		{name: "Phase panics at start", obs: idempotent.Observer{Phase: func(context.Context, idempotent.Phase, string) (context.Context, func(error)) {
			panic("start")
		}}},
		{name: "Phase panics at the end of the run", obs: idempotent.Observer{Phase: func(ctx context.Context, p idempotent.Phase, _ string) (context.Context, func(error)) {
			return ctx, func(error) {
				if p == idempotent.PhaseRun {
					panic("end of run")
				}
			}
		}}},
		{name: "Phase returns a nil context", obs: idempotent.Observer{Phase: func(context.Context, idempotent.Phase, string) (context.Context, func(error)) {
			return nil, nil // the bad input under test
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := idempotent.NewMemoryStore()
			runs := 0
			fn := func(context.Context) (string, error) { runs++; return "paid", nil }
			for i := range 2 {
				out, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithObserver(tt.obs)), "charge", "k", fn)
				if err != nil || out != "paid" {
					t.Fatalf("call %d: %q, %v; want the result", i+1, out, err)
				}
			}
			if runs != 1 {
				t.Fatalf("the function ran %d times, want once (the second call replays)", runs)
			}
		})
	}
}

// A call whose deadline has already passed does not acquire a record that
// would be free at once (a duplicate could then run beside it): it fails as a
// store call on a finished context does, and the function does not run —
// whether or not the store looks at the context (the memory store does not).
func TestPastDeadlineDoesNotRun(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	ran := false
	_, err := idempotent.Do(ctx, idempotent.New(idempotent.NewMemoryStore()), "charge", "k", func(context.Context) (string, error) {
		ran = true
		return "paid", nil
	})
	var se *idempotent.StoreError
	if !errors.As(err, &se) || se.Op != "acquire" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a *StoreError of acquire wrapping context.DeadlineExceeded", err)
	}
	if ran {
		t.Fatal("the function ran after its deadline, under a lease that had already ended")
	}
}
