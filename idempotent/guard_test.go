package idempotent_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// TestInlineDoReplaysFromTheGuardsCache: Do called inline in a handler,
// through one guard built with WithLocalCache, replays from the guard's
// cache on its second call, with no store call. (When the cache belonged to
// the Option value, an inline Do got a new, empty cache on every call.)
func TestInlineDoReplaysFromTheGuardsCache(t *testing.T) {
	store := newCounting(idempotent.NewMemoryStore())
	guard := idempotent.New(store, idempotent.WithLocalCache(16))
	runs := 0
	handle := func(ctx context.Context, orderID string) (string, error) {
		return idempotent.Do(ctx, guard, "charge", orderID, func(context.Context) (string, error) {
			runs++
			return "ch_" + orderID, nil
		})
	}
	first, err := handle(t.Context(), "o-1")
	if err != nil || first != "ch_o-1" || runs != 1 {
		t.Fatalf("first call = %q, %v after %d runs", first, err, runs)
	}
	store.reset()
	second, err := handle(t.Context(), "o-1")
	if err != nil || second != first || runs != 1 {
		t.Fatalf("second call = %q, %v after %d runs; want the first result, one run", second, err, runs)
	}
	if n := store.calls(); n != 0 {
		t.Fatalf("second call made %d store calls, want 0 (a local-cache replay)", n)
	}
}

// TestDoneContextFailsBeforeTheStore: a context already cancelled, or past
// its deadline, fails as a store error before any store call, and fn does
// not run — even on the memory store, which never looks at the context.
func TestDoneContextFailsBeforeTheStore(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	tests := []struct {
		name string
		ctx  context.Context
		opts []idempotent.Option
		want error
	}{
		{"cancelled", cancelled, nil, context.Canceled},
		{"cancelled, with a lease", cancelled, []idempotent.Option{idempotent.WithLease(time.Minute)}, context.Canceled},
		{"deadline passed, with a lease", expired, []idempotent.Option{idempotent.WithLease(time.Minute)}, context.DeadlineExceeded},
		{"deadline passed", expired, nil, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newCounting(idempotent.NewMemoryStore())
			ran := false
			_, err := idempotent.Do(tt.ctx, idempotent.New(store, tt.opts...), "step", "k", func(context.Context) (int, error) { ran = true; return 1, nil })
			var se *idempotent.StoreError
			if !errors.As(err, &se) || !errors.Is(err, tt.want) || se.Op != "acquire" {
				t.Fatalf("err = %v, want a *StoreError (acquire) wrapping %v", err, tt.want)
			}
			if ran {
				t.Fatal("fn ran on a done context")
			}
			if n := store.calls(); n != 0 {
				t.Fatalf("%d store calls on a done context, want 0", n)
			}
		})
	}
}

// lateStore answers Acquire late: the clock moves on by delay while the
// store works, as with a paused or slow server.
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

// TestLateAcquireDoesNotRun: an Acquire that succeeds but answers after the
// lease has ended does not run fn (a duplicate may hold the key by then):
// the key is released, fenced by owner, and the call fails as a store
// timeout. An answer within the lease runs as usual.
func TestLateAcquireDoesNotRun(t *testing.T) {
	for _, tt := range []struct {
		name    string
		delay   time.Duration
		wantRun bool
	}{
		{"answer after the lease", 11 * time.Second, false},
		{"answer at the lease's end", 10 * time.Second, false},
		{"answer within the lease", 9 * time.Second, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			mem := idempotent.NewMemoryStore()
			store := &lateStore{countingStore: newCounting(mem), clk: clk, delay: tt.delay}
			g := idempotent.New(store, idempotent.WithClock(clk.Now), idempotent.WithLease(10*time.Second), idempotent.WithLogger(slog.New(slog.DiscardHandler)))
			runs := 0
			_, err := idempotent.Do(t.Context(), g, "step", "k", func(context.Context) (int, error) { runs++; return 1, nil })
			if tt.wantRun {
				if err != nil || runs != 1 {
					t.Fatalf("runs %d, err %v; want one run", runs, err)
				}
				return
			}
			var se *idempotent.StoreError
			if !errors.As(err, &se) || se.Op != "acquire" || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want a *StoreError (acquire) wrapping context.DeadlineExceeded", err)
			}
			if runs != 0 {
				t.Fatal("fn ran after its lease had ended")
			}
			if store.release.Load() != 1 || mem.Len() != 0 {
				t.Fatalf("releases %d, records left %d; want the key released", store.release.Load(), mem.Len())
			}
			// A retry answered in time runs.
			store.delay = 0
			if _, err := idempotent.Do(t.Context(), g, "step", "k", func(context.Context) (int, error) { runs++; return 1, nil }); err != nil || runs != 1 {
				t.Fatalf("retry: runs %d, err %v; want one run", runs, err)
			}
		})
	}
}

// TestDisabledSwitchNotBoolean: a value of IDEMPOTENCY_DISABLED that is not
// a boolean leaves idempotency on and says so in a warning.
func TestDisabledSwitchNotBoolean(t *testing.T) {
	for _, v := range []string{"yes", "on", "disabled"} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(idempotent.DisabledEnv, v)
			var buf bytes.Buffer
			store := newCounting(idempotent.NewMemoryStore())
			g := idempotent.New(store, idempotent.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
			if !strings.Contains(buf.String(), `"level":"WARN"`) || !strings.Contains(buf.String(), "not a boolean") || !strings.Contains(buf.String(), v) {
				t.Fatalf("log = %s, want a warning naming the value", buf.String())
			}
			if _, err := idempotent.Do(t.Context(), g, "step", "k", func(context.Context) (int, error) { return 1, nil }); err != nil || store.acquire.Load() != 1 {
				t.Fatalf("err %v, acquires %d: idempotency must stay on", err, store.acquire.Load())
			}
		})
	}
	for _, v := range []string{"", "false", "0", "true", "1"} {
		t.Run("valid "+v, func(t *testing.T) {
			t.Setenv(idempotent.DisabledEnv, v)
			var buf bytes.Buffer
			idempotent.New(idempotent.NewMemoryStore(), idempotent.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
			if strings.Contains(buf.String(), "not a boolean") {
				t.Fatalf("log = %s for a boolean value", buf.String())
			}
		})
	}
}

// TestDisabledWarnsOncePerGuard: with idempotency disabled by the
// environment, building the guard warns once; its calls run unguarded (no
// store call) without a warning each.
func TestDisabledWarnsOncePerGuard(t *testing.T) {
	t.Setenv(idempotent.DisabledEnv, "true")
	var buf bytes.Buffer
	store := newCounting(idempotent.NewMemoryStore())
	g := idempotent.New(store, idempotent.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
	h := idempotent.Wrap(g, func(_ context.Context, n int) (int, error) { return n, nil })
	runs := 0
	for range 3 {
		if _, err := idempotent.Do(t.Context(), g, "step", "k", func(context.Context) (int, error) { runs++; return 1, nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := h(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
	}
	if runs != 3 || store.calls() != 0 {
		t.Fatalf("runs %d, store calls %d; want 3 unguarded runs", runs, store.calls())
	}
	if n := strings.Count(buf.String(), `"level":"WARN"`); n != 1 || !strings.Contains(buf.String(), "disabled by environment") {
		t.Fatalf("%d warnings, want 1 naming the switch:\n%s", n, buf.String())
	}
}
