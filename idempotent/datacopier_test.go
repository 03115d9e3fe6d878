package idempotent_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// copyingStore is a DataCopier over the memory store (which copies at its
// boundary) that notes the memory of the Data it is given and returns, and
// can hold its first Acquire until gate closes.
type copyingStore struct {
	mem  *idempotent.MemoryStore
	gate chan struct{}
	once sync.Once

	mu        sync.Mutex
	completed []byte // the Data the last Complete was given
	returned  []byte // the Data of the last record Acquire returned
}

func newCopying() *copyingStore { return &copyingStore{mem: idempotent.NewMemoryStore()} }

func (s *copyingStore) CopiesData() bool { return true }

func (s *copyingStore) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	if s.gate != nil {
		s.once.Do(func() { <-s.gate })
	}
	existing, acquired, err := s.mem.Acquire(ctx, rec, now)
	if existing != nil {
		s.mu.Lock()
		s.returned = existing.Data
		s.mu.Unlock()
	}
	return existing, acquired, err
}

func (s *copyingStore) Get(ctx context.Context, key string) (*idempotent.Record, error) {
	return s.mem.Get(ctx, key)
}

func (s *copyingStore) Complete(ctx context.Context, rec idempotent.Record) error {
	s.mu.Lock()
	s.completed = rec.Data
	s.mu.Unlock()
	return s.mem.Complete(ctx, rec)
}

func (s *copyingStore) Release(ctx context.Context, key, owner string) error {
	return s.mem.Release(ctx, key, owner)
}

func sameMemory(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }

// Over a DataCopier store, a []byte result goes to Complete as the
// handler's memory and a replay is the memory the store returned: the core
// makes no copy of its own. A local cache, a replay hook and a store that
// does not copy each bring the copies back.
func TestDataCopierSkipsCopies(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		copying   bool
		opts      []idempotent.Option
		call      []idempotent.CallOption
		wantNoCpy bool
	}{
		{name: "copying store", copying: true, wantNoCpy: true},
		{name: "local cache", copying: true, opts: []idempotent.Option{idempotent.WithLocalCache(4)}},
		{name: "replay hook", copying: true, call: []idempotent.CallOption{idempotent.WithReplayHook(func(_ context.Context, _ idempotent.Replay, v []byte) []byte { return v })}},
		{name: "store that does not copy", copying: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := newCopying()
			var store idempotent.Store = cs
			if !tt.copying {
				store = elsewhere(cs) // hides CopiesData
			}
			g := idempotent.New(store, tt.opts...)
			buf := []byte("paid-100")
			got, err := idempotent.Do(ctx, g, "step", "k", func(context.Context) ([]byte, error) { return buf, nil }, tt.call...)
			if err != nil || !sameMemory(got, buf) {
				t.Fatalf("first call = %q, %v; want the handler's own bytes", got, err)
			}
			if sameMemory(cs.completed, buf) != tt.wantNoCpy {
				t.Fatalf("Complete was given the handler's memory: %v, want %v", sameMemory(cs.completed, buf), tt.wantNoCpy)
			}
			// A replay: from the store, or from the local cache in the
			// local-cache case (the store returns nothing then).
			cs.returned = nil
			again, err := idempotent.Do(ctx, g, "step", "k", func(context.Context) ([]byte, error) { return nil, errBoom }, tt.call...)
			if err != nil || string(again) != "paid-100" {
				t.Fatalf("replay = %q, %v", again, err)
			}
			if sameMemory(again, cs.returned) != tt.wantNoCpy {
				t.Fatalf("replay is the store's memory: %v, want %v", sameMemory(again, cs.returned), tt.wantNoCpy)
			}
			// Whatever the path, the caller's changes reach no one else.
			copy(buf, "XXXX")
			copy(again, "YYYY")
			third, err := idempotent.Do(ctx, g, "step", "k", func(context.Context) ([]byte, error) { return nil, errBoom }, tt.call...)
			if err != nil || string(third) != "paid-100" {
				t.Fatalf("replay after the callers changed their bytes = %q, %v; want %q", third, err, "paid-100")
			}
		})
	}
}

// The duplicates that wait in memory on a leader over a DataCopier store
// replay from a copy: the leader's caller owns its bytes and may change
// them as soon as it has them (go test -race sees it if not). Both a
// leader that replays a stored record and one that runs.
func TestDataCopierCoalescedWaitersGetCopies(t *testing.T) {
	const want = `{"charged":42}`
	for _, stored := range []bool{true, false} {
		name := map[bool]string{true: "leader replays", false: "leader runs"}[stored]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := newCopying()
			g := idempotent.New(store)
			fn := func(context.Context) ([]byte, error) { return []byte(want), nil }
			if stored {
				if _, err := idempotent.Do(ctx, g, "step", "k", fn); err != nil {
					t.Fatal(err)
				}
			}
			store.gate = make(chan struct{})
			seen := make([]string, dupes)
			errs := make([]error, dupes)
			var wg sync.WaitGroup
			for i := range dupes {
				wg.Go(func() {
					got, err := idempotent.Do(ctx, g, "step", "k", fn)
					seen[i], errs[i] = string(got), err
					for j := range got {
						got[j] = 'X' // the caller's own memory
					}
				})
			}
			waitForWaiters(t, store, dupes-1)
			close(store.gate)
			wg.Wait()
			for i := range dupes {
				if errs[i] != nil || seen[i] != want {
					t.Fatalf("call %d = %q, %v; want %q", i, seen[i], errs[i], want)
				}
			}
			rec, err := store.Get(ctx, g.RecordID("step", "k"))
			if err != nil || rec == nil || !bytes.Equal(rec.Data, []byte(want)) {
				t.Fatalf("stored %v, %v", rec, err)
			}
		})
	}
}
