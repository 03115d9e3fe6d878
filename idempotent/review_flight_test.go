package idempotent_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// TestReviewCrossRecordNestedDoubleRun — DEFECT (flight.go, coalescing):
// run A calls Do on record B while run B calls Do on record A. Before
// coalescing each nested call went to the store and got ErrInProgress at
// once (the record is held by a live run). Now each nested call waits in
// memory for the other's flight — a mutual wait that ends only when the
// leaders' leases end; then each waiter takes the other's record over in the
// store and runs its function a second time while the first run is still
// running (blocked inside the library). One key, two runs at once, caused by
// the coalescing itself, not by a run outliving its lease.
func TestReviewCrossRecordNestedDoubleRun(t *testing.T) {
	store := idempotent.NewMemoryStore()
	const lease = 2 * time.Second
	g := idempotent.New(store, idempotent.WithLease(lease))
	var runsA, runsB atomic.Int32
	startedA, startedB := make(chan struct{}), make(chan struct{})
	// Neither outer run ends before both nested calls have answered, so
	// both are made while both records are held.
	nestedA, nestedB := make(chan struct{}), make(chan struct{})
	var onceA, onceB sync.Once
	var nestedErrA, nestedErrB error
	var nestedTookA, nestedTookB time.Duration
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = idempotent.Do(ctx, g, "s", "A", func(ctx context.Context) (int, error) {
			if runsA.Add(1) > 1 {
				return 2, nil // the second run of A: do not nest further
			}
			onceA.Do(func() { close(startedA) })
			<-startedB
			s := time.Now()
			_, nestedErrA = idempotent.Do(ctx, g, "s", "B", func(context.Context) (int, error) { runsB.Add(1); return 0, nil })
			nestedTookA = time.Since(s)
			close(nestedA)
			<-nestedB
			return 1, nil
		})
	}()
	go func() {
		defer wg.Done()
		_, _ = idempotent.Do(ctx, g, "s", "B", func(ctx context.Context) (int, error) {
			if runsB.Add(1) > 1 {
				return 2, nil
			}
			onceB.Do(func() { close(startedB) })
			<-startedA
			s := time.Now()
			_, nestedErrA2 := idempotent.Do(ctx, g, "s", "A", func(context.Context) (int, error) { runsA.Add(1); return 0, nil })
			nestedErrB = nestedErrA2
			nestedTookB = time.Since(s)
			close(nestedB)
			<-nestedA
			return 1, nil
		})
	}()
	wg.Wait()
	t.Logf("nested Do(B) in run A took %v (err %v); nested Do(A) in run B took %v (err %v)", nestedTookA, nestedErrA, nestedTookB, nestedErrB)
	if n := runsA.Load(); n != 1 {
		t.Errorf("A's function ran %d times, want 1 (record A was held by a live run blocked in the library)", n)
	}
	if n := runsB.Load(); n != 1 {
		t.Errorf("B's function ran %d times, want 1", n)
	}
	if !errors.Is(nestedErrA, idempotent.ErrInProgress) || !errors.Is(nestedErrB, idempotent.ErrInProgress) {
		t.Errorf("nested calls: %v, %v; want ErrInProgress for both (as before coalescing)", nestedErrA, nestedErrB)
	}
}
