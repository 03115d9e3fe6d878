package redisstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// TestRoundTrips counts the commands the store sends through the core: the
// contract's floor (§3) — new key 2, replay 1, local-cache replay 0, a failed
// run 2 — each an EVALSHA, once the server knows the scripts.
func TestRoundTrips(t *testing.T) {
	store, calls := newStore(t)
	clk := &clock{t: now}
	opts := []idempotent.Option{idempotent.WithName("orders"), idempotent.WithClock(clk.Now)}
	runs := 0
	ok := func(context.Context) (string, error) { runs++; return "paid", nil }
	boom := errors.New("boom")
	fail := func(context.Context) (string, error) { runs++; return "", boom }

	// Teach the server every script (the first run of a script on a server
	// costs one more round trip: EVALSHA answers NOSCRIPT, EVAL follows).
	if _, err := idempotent.Do(t.Context(), idempotent.New(store, opts...), "charge", "warm-up", ok); err != nil {
		t.Fatal(err)
	}
	if _, err := idempotent.Do(t.Context(), idempotent.New(store, opts...), "charge", "warm-up-fail", fail); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := store.Get(t.Context(), "warm-up"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		key      string
		fn       func(context.Context) (string, error)
		opts     []idempotent.Option
		wantErr  error
		wantRuns int
		want     int // EVALSHA round trips
	}{
		{name: "new key", key: "k1", fn: ok, wantRuns: 1, want: 2},
		{name: "replay", key: "k1", fn: ok, wantRuns: 0, want: 1},
		{name: "failed run releases", key: "k2", fn: fail, wantErr: boom, wantRuns: 1, want: 2},
		{name: "after release, runs again", key: "k2", fn: ok, wantRuns: 1, want: 2},
		{name: "local cache, first replay fills it", key: "k1", fn: ok, opts: []idempotent.Option{idempotent.WithLocalCache(8)}, wantRuns: 0, want: 1},
	}
	plain := idempotent.New(store, opts...)
	cached := idempotent.New(store, append(append([]idempotent.Option{}, opts...), idempotent.WithLocalCache(8))...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls.Reset()
			runs = 0
			g := plain
			if tt.opts != nil {
				g = cached
			}
			_, err := idempotent.Do(t.Context(), g, "charge", tt.key, tt.fn)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Do error = %v, want %v", err, tt.wantErr)
			}
			if runs != tt.wantRuns {
				t.Fatalf("runs = %d, want %d", runs, tt.wantRuns)
			}
			if got := calls.Count("evalsha"); got != tt.want || calls.Total() != tt.want {
				t.Fatalf("round trips: %s; want EVALSHA=%d", calls, tt.want)
			}
		})
	}
	t.Run("local cache replay", func(t *testing.T) {
		calls.Reset()
		runs = 0
		if _, err := idempotent.Do(t.Context(), cached, "charge", "k1", ok); err != nil || runs != 0 {
			t.Fatalf("Do = %v after %d runs", err, runs)
		}
		if calls.Total() != 0 {
			t.Fatalf("round trips: %s; want none", calls)
		}
	})
}

// TestColdScript: on a server that does not know the scripts yet (restart,
// failover, SCRIPT FLUSH) the first call of each costs EVALSHA + EVAL, and
// still succeeds.
func TestColdScript(t *testing.T) {
	client, calls := testredis.CountingClient(t)
	store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
	// The flush also opens the connection: its handshake (HELLO, CLIENT
	// SETINFO) is not the store's.
	if err := client.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	calls.Reset()
	if _, ok, err := store.Acquire(t.Context(), held("owner-1"), now); err != nil || !ok {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	if calls.Count("evalsha") != 1 || calls.Count("eval") != 1 || calls.Total() != 2 {
		t.Fatalf("round trips: %s; want EVALSHA=1 EVAL=1", calls)
	}
	calls.Reset()
	if _, ok, err := store.Acquire(t.Context(), held("owner-2"), now); err != nil || ok {
		t.Fatalf("second Acquire = %v, %v; want a conflict", ok, err)
	}
	if calls.Count("evalsha") != 1 || calls.Total() != 1 {
		t.Fatalf("round trips: %s; want EVALSHA=1", calls)
	}
}

var _ redis.Scripter = (*redis.Client)(nil)
