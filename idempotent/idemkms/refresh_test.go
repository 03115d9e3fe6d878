package idemkms_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemkms"
)

// gatedKMS holds every GenerateDataKey until release is closed or the
// call's context ends.
type gatedKMS struct {
	idemkms.KMSAPI
	generate atomic.Int64
	release  chan struct{}
}

func (g *gatedKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, o ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	g.generate.Add(1)
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.KMSAPI.GenerateDataKey(ctx, in, o...)
}

// countingAcquires counts the Acquire calls that returned.
type countingAcquires struct {
	idempotent.Store
	n atomic.Int64
}

func (c *countingAcquires) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	r, ok, err := c.Store.Acquire(ctx, rec, now)
	c.n.Add(1)
	return r, ok, err
}

// TestConcurrentNewRecordsShareOneDataKey: new records completed at once in
// a container with no data key yet (a cold start with several concurrent
// invocations, or the data key just aged out) make one GenerateDataKey, not
// one each. While the first call is held in KMS, the others are given every
// chance to reach KMS too; then the call is let through.
func TestConcurrentNewRecordsShareOneDataKey(t *testing.T) {
	const n = 8
	g := &gatedKMS{KMSAPI: localKMS(t), release: make(chan struct{})}
	inner := &countingAcquires{Store: idempotent.NewMemoryStore()}
	s := wrap(t, inner, g, aliasTest)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = idempotent.Do(context.Background(), idempotent.New(s), "pay", string(rune('a'+i)), func(context.Context) (string, error) {
				return "ok", nil
			})
		})
	}
	// Every invocation has acquired its key and is about to seal its result.
	for inner.n.Load() < n || g.generate.Load() == 0 {
		runtime.Gosched()
	}
	for i := 0; i < 10_000 && g.generate.Load() < n; i++ {
		runtime.Gosched()
	}
	close(g.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("invocation %d: %v", i, err)
		}
	}
	if got := g.generate.Load(); got != 1 {
		t.Fatalf("%d GenerateDataKey calls for %d concurrent new records, want 1", got, n)
	}
}

// TestWaitForDataKeyHonoursContext: a Complete waiting for another call's
// GenerateDataKey gives up when its own context ends: a *StoreError that
// wraps the context's error, nothing stored, no second KMS call. (The core
// gives Complete a context of its own, bounded to 10 s, so this is what
// bounds that wait.)
func TestWaitForDataKeyHonoursContext(t *testing.T) {
	g := &gatedKMS{KMSAPI: localKMS(t), release: make(chan struct{})}
	inner := newSpy()
	s := wrap(t, inner, g, aliasTest)
	now := time.Now()
	acquire := func(id string) idempotent.Record {
		rec := idempotent.Record{ID: id, Status: idempotent.StatusInProgress, Owner: "o-" + id,
			Expiration: now.Add(time.Hour), LeaseExpiration: now.Add(time.Minute)}
		if _, ok, err := s.Acquire(context.Background(), rec, now); err != nil || !ok {
			t.Fatalf("acquire %s: %v %v", id, ok, err)
		}
		rec.Status, rec.Data = idempotent.StatusCompleted, []byte(`"ok"`)
		return rec
	}
	r1, r2 := acquire("first"), acquire("second")
	first := make(chan error, 1)
	go func() { first <- s.Complete(context.Background(), r1) }()
	for g.generate.Load() == 0 {
		runtime.Gosched()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Complete(ctx, r2)
	close(g.release)
	if err := <-first; err != nil {
		t.Fatalf("first: %v", err)
	}
	if _, ok := errors.AsType[*idempotent.StoreError](err); !ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("second: %v, want a *StoreError wrapping context.Canceled", err)
	}
	if got := g.generate.Load(); got != 1 {
		t.Fatalf("%d GenerateDataKey calls, want 1 (the second call never reached KMS)", got)
	}
	if ids := inner.ids(); len(ids) != 1 || !ids["first"] {
		t.Fatalf("stored %v, want only first", ids)
	}
}
