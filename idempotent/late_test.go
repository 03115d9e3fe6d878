package idempotent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// A context already cancelled fails before any store call, and fn does not
// run (the memory store ignores the context, so without the check fn ran).
func TestCancelledContextFailsBeforeStore(t *testing.T) {
	store := newCounting(idempotent.NewMemoryStore())
	g := store
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	_, err := idempotent.Do(ctx, g, "step", "k", func(context.Context) (int, error) { ran = true; return 1, nil })
	var se *idempotent.StoreError
	if !errors.As(err, &se) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want a *StoreError wrapping context.Canceled", err)
	}
	if ran {
		t.Fatal("fn ran on a cancelled context")
	}
	if n := store.calls(); n != 0 {
		t.Fatalf("%d store calls, want 0", n)
	}
}

// lateStore answers Acquire after the lease has ended: it advances the
// injected clock past the lease before the memory store grants the key.
type lateStore struct {
	*countingStore
	clk   *clock
	delay time.Duration
}

func (s *lateStore) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	existing, ok, err := s.countingStore.Acquire(ctx, rec, now)
	s.clk.Advance(s.delay)
	return existing, ok, err
}

// An acquire answered after the lease ended must not start fn: the key is
// released (fenced) and the call fails as a store timeout.
func TestLateAcquireDoesNotRun(t *testing.T) {
	clk := newClock()
	mem := idempotent.NewMemoryStore()
	store := &lateStore{countingStore: newCounting(mem), clk: clk, delay: 3 * time.Second}
	g := store
	opts := []idempotent.Option{idempotent.WithClock(clk.Now), idempotent.WithLease(2 * time.Second)}
	ran := false
	_, err := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (int, error) { ran = true; return 1, nil }, opts...)
	var se *idempotent.StoreError
	if !errors.As(err, &se) || se.Op != "acquire" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want an acquire *StoreError wrapping context.DeadlineExceeded", err)
	}
	if ran {
		t.Fatal("fn ran after its lease had ended")
	}
	if store.release.Load() != 1 {
		t.Fatalf("%d releases, want 1", store.release.Load())
	}
	// The key was given back: the next call runs at once.
	store.delay = 0
	v, err := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (int, error) { return 7, nil }, opts...)
	if err != nil || v != 7 {
		t.Fatalf("retry = %v, %v; want 7, nil", v, err)
	}
}
