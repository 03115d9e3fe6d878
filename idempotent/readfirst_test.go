package idempotent_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// peekingStore is a countingStore that also counts Peek.
type peekingStore struct {
	*countingStore
	peek      atomic.Int64
	peekErr   atomic.Bool
	peekFails bool
	mem       *idempotent.MemoryStore
}

func newPeeking() *peekingStore {
	m := idempotent.NewMemoryStore()
	return &peekingStore{countingStore: newCounting(m), mem: m}
}

func (s *peekingStore) Peek(ctx context.Context, key string) (*idempotent.Record, error) {
	s.peek.Add(1)
	if s.peekErr.Load() {
		return nil, errBoom
	}
	return s.mem.Peek(ctx, key)
}

func TestReadFirst(t *testing.T) {
	clk := newClock()
	run := func(ctx context.Context, s idempotent.Store, key string, ran *int, call []idempotent.CallOption, opts ...idempotent.Option) (string, error) {
		opts = append([]idempotent.Option{idempotent.WithClock(clk.Now), idempotent.WithName("fn")}, opts...)
		return idempotent.Do(ctx, idempotent.New(s, opts...), "step", key, func(context.Context) (string, error) {
			*ran++
			return "result-" + key, nil
		}, call...)
	}
	recordID := idempotent.New(idempotent.NewMemoryStore(), idempotent.WithName("fn")).RecordID("step", "k")
	rf := idempotent.WithReadFirst()
	completeK := func(t *testing.T, s *peekingStore) { completeKey(t, s, clk) }
	tests := []struct {
		name string
		// prepare brings the store into its state (its calls are not counted).
		prepare func(t *testing.T, s *peekingStore)
		ctx     func(ctx context.Context) context.Context
		opts    []idempotent.Option
		call    []idempotent.CallOption
		wantRan int
		wantErr error
		// wantPeek, wantAcquire: store calls of the measured call.
		wantPeek, wantAcquire int64
	}{
		{name: "completed record replays from one read", prepare: completeK, opts: []idempotent.Option{rf}, wantPeek: 1},
		{name: "read-first context replays from one read", prepare: completeK, ctx: idempotent.ReadFirstContext, wantPeek: 1},
		{name: "write-first stays the default", prepare: completeK, wantAcquire: 1},
		{name: "new key reads then writes", prepare: func(*testing.T, *peekingStore) {}, opts: []idempotent.Option{rf}, wantRan: 1, wantPeek: 1, wantAcquire: 1},
		{name: "expired record reads then writes and runs", prepare: func(t *testing.T, s *peekingStore) {
			completeK(t, s)
			clk.Advance(2 * time.Hour)
		}, opts: []idempotent.Option{rf, idempotent.WithTTL(time.Hour)}, wantRan: 1, wantPeek: 1, wantAcquire: 1},
		{name: "in-progress record goes to the write", prepare: func(t *testing.T, s *peekingStore) {
			_, _, err := s.mem.Acquire(context.Background(), idempotent.Record{
				ID: recordID, Status: idempotent.StatusInProgress,
				Expiration: clk.Now().Add(time.Hour), LeaseExpiration: clk.Now().Add(time.Minute), Owner: "other",
			}, clk.Now())
			if err != nil {
				t.Fatal(err)
			}
		}, opts: []idempotent.Option{rf}, wantErr: idempotent.ErrInProgress, wantPeek: 1, wantAcquire: 1},
		{name: "fingerprint mismatch fails from the read", prepare: func(t *testing.T, s *peekingStore) {
			completeKey(t, s, clk, idempotent.WithFingerprint("a"))
		}, opts: []idempotent.Option{rf}, call: []idempotent.CallOption{idempotent.WithFingerprint("b")}, wantErr: idempotent.ErrPayloadMismatch, wantPeek: 1},
		{name: "failed read falls through to the write", prepare: func(t *testing.T, s *peekingStore) {
			completeK(t, s)
			s.peekFails = true
		}, opts: []idempotent.Option{rf}, wantPeek: 1, wantAcquire: 1},
		{name: "prefetched record replays without a call", prepare: completeK, ctx: func(ctx context.Context) context.Context {
			return idempotent.PrefetchedContext(ctx, prefetched)
		}},
		{name: "prefetched absence goes straight to the write", prepare: func(*testing.T, *peekingStore) {}, ctx: func(ctx context.Context) context.Context {
			return idempotent.PrefetchedContext(ctx, map[string]*idempotent.Record{recordID: nil})
		}, wantRan: 1, wantAcquire: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newPeeking()
			tt.prepare(t, s)
			if s.peekFails {
				s.peekErr.Store(true)
			}
			s.reset()
			s.peek.Store(0)
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx(ctx)
			}
			ran := 0
			out, err := run(ctx, s, "k", &ran, tt.call, tt.opts...)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && out != "result-k" {
				t.Errorf("out = %q", out)
			}
			if ran != tt.wantRan {
				t.Errorf("ran %d times, want %d", ran, tt.wantRan)
			}
			if got := s.peek.Load(); got != tt.wantPeek {
				t.Errorf("peeks = %d, want %d", got, tt.wantPeek)
			}
			if got := s.acquire.Load(); got != tt.wantAcquire {
				t.Errorf("acquires = %d, want %d", got, tt.wantAcquire)
			}
		})
	}
}

// prefetched is filled by completeKey with the completed record of key "k".
var prefetched = map[string]*idempotent.Record{}

// completeKey completes key "k" of step "step" in s.
func completeKey(t *testing.T, s *peekingStore, clk *clock, call ...idempotent.CallOption) {
	t.Helper()
	g := idempotent.New(s.mem, idempotent.WithName("fn"), idempotent.WithClock(clk.Now))
	if _, err := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (string, error) { return "result-k", nil }, call...); err != nil {
		t.Fatal(err)
	}
	id := g.RecordID("step", "k")
	rec, err := s.mem.Get(context.Background(), id)
	if err != nil || rec == nil {
		t.Fatalf("record %s: %v, %v", id, rec, err)
	}
	prefetched[id] = rec
}

func TestRecordIDIsDos(t *testing.T) {
	var got string
	g := idempotent.New(idempotent.NewMemoryStore(), idempotent.WithName("svc"))
	_, err := idempotent.Do(context.Background(), g, "charge", "order-1", func(ctx context.Context) (int, error) {
		got, _ = idempotent.RecordIDFromContext(ctx)
		return 1, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := idempotent.StepRecordID(g.Name(), "charge", "order-1"); g.Name() != "svc" || got != want || g.RecordID("charge", "order-1") != want {
		t.Errorf("Do's record id %q, RecordID %q", got, want)
	}
	if id := g.RecordID("charge", ""); id != "" {
		t.Errorf("RecordID of no key = %q", id)
	}
	if id := g.RecordID("", "order-1"); id != "" {
		t.Errorf("RecordID of no key = %q", id)
	}
}

// TestReadFirstHintIsPerCall: a read-first context applies to the call that
// receives it, not to guarded calls inside its function.
func TestReadFirstHintIsPerCall(t *testing.T) {
	outer, inner := newPeeking(), newPeeking()
	ctx := idempotent.ReadFirstContext(context.Background())
	gi := idempotent.New(inner)
	_, err := idempotent.Do(ctx, idempotent.New(outer), "outer", "k", func(ctx context.Context) (int, error) {
		return idempotent.Do(ctx, gi, "inner", "k", func(context.Context) (int, error) { return 1, nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if o, i := outer.peek.Load(), inner.peek.Load(); o != 1 || i != 0 {
		t.Errorf("outer peeks %d (want 1), inner peeks %d (want 0)", o, i)
	}
}
