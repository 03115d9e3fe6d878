package idempotent_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
)

// TestReviewOwnedLeaderCachedWaiters: a flight is keyed by store and record
// id, so a leader whose guard owns its bytes (memory store, no cache, no
// hook) can have waiters from a guard with a local cache. The leader's
// handler returns a buffer it scribbles over after returning (a reused
// buffer), and the leader's caller scribbles over the result it got; the
// cached guard's waiters, their later cache replays, a fresh replay from the
// store and the store's record must all keep the bytes returned.
func TestReviewOwnedLeaderCachedWaiters(t *testing.T) {
	const want = `{"charged":42,"pad":"0123456789abcdef"}`
	ctx := context.Background()
	store := idempotent.NewMemoryStore()
	owned := idempotent.New(store)
	cached := idempotent.New(store, idempotent.WithLocalCache(16))
	release, started := make(chan struct{}), make(chan struct{})
	var scribble []byte
	var scribbleMu sync.Mutex
	leaderFn := func(context.Context) (json.RawMessage, error) {
		close(started)
		<-release
		buf := []byte(want)
		scribbleMu.Lock()
		scribble = buf
		scribbleMu.Unlock()
		return buf, nil
	}
	waiterFn := func(context.Context) (json.RawMessage, error) {
		t.Error("a waiter ran")
		return nil, nil
	}
	var wg sync.WaitGroup
	var leaderGot json.RawMessage
	wg.Go(func() {
		got, err := idempotent.Do(ctx, owned, "step", "k", leaderFn)
		if err != nil {
			t.Error(err)
		}
		leaderGot = got
	})
	<-started // the leader runs: its flight is in the air
	const n = 8
	results := make([]json.RawMessage, n)
	for i := range n {
		wg.Go(func() {
			got, err := idempotent.Do(ctx, cached, "step", "k", waiterFn)
			if err != nil {
				t.Error(err)
			}
			results[i] = got
		})
	}
	waitForWaiters(t, store, n)
	close(release)
	wg.Wait()
	for i := range leaderGot {
		leaderGot[i] = 'X'
	}
	scribbleMu.Lock()
	for i := range scribble {
		scribble[i] = 'Y'
	}
	scribbleMu.Unlock()
	for i, r := range results {
		if string(r) != want {
			t.Errorf("waiter %d got %q", i, r)
		}
		for j := range r {
			r[j] = 'Z'
		}
	}
	for _, g := range []*idempotent.Guard{cached, owned} {
		got, err := idempotent.Do(ctx, g, "step", "k", waiterFn)
		if err != nil || string(got) != want {
			t.Errorf("a later replay = %q, %v; want %q", got, err, want)
		}
	}
	rec, err := store.Get(ctx, owned.RecordID("step", "k"))
	if err != nil || rec == nil || string(rec.Data) != want {
		t.Fatalf("stored %+v, %v", rec, err)
	}
}
