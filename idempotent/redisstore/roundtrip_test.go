package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// TestRoundTrips counts the commands the store sends through the core: the
// contract's floor (§3) — new key 2 (SET NX GET, the complete script), replay
// 1 (SET NX GET), a key held by another run 1, local-cache replay 0, a failed
// run 2 (SET, the release script), a takeover of an ended lease 3 (SET NX GET
// and the acquire script, then the complete script) — once the server knows
// the scripts; and Get 1 (GET).
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
	taken := held("warm-up-crashed")
	taken.ID = "warm-up-takeover"
	for _, at := range []time.Time{now, taken.LeaseExpiration} {
		if _, ok, err := store.Acquire(t.Context(), taken, at); err != nil || !ok {
			t.Fatalf("warm-up Acquire = %v, %v", ok, err)
		}
	}

	tests := []struct {
		name     string
		key      string
		fn       func(context.Context) (string, error)
		opts     []idempotent.Option
		wantErr  error
		wantRuns int
		want     string // the commands sent, each one round trip
	}{
		{name: "new key", key: "k1", fn: ok, wantRuns: 1, want: "EVALSHA=1 SET=1"},
		{name: "replay", key: "k1", fn: ok, wantRuns: 0, want: "SET=1"},
		{name: "failed run releases", key: "k2", fn: fail, wantErr: boom, wantRuns: 1, want: "EVALSHA=1 SET=1"},
		{name: "after release, runs again", key: "k2", fn: ok, wantRuns: 1, want: "EVALSHA=1 SET=1"},
		{name: "local cache, first replay fills it", key: "k1", fn: ok, opts: []idempotent.Option{idempotent.WithLocalCache(8)}, wantRuns: 0, want: "SET=1"},
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
			if got := calls.String(); got != tt.want {
				t.Fatalf("round trips: %s; want %s", got, tt.want)
			}
		})
	}
	// A key another run holds, then the same key once that run's lease has
	// ended: the record id is the core's, learnt from its Report.
	var id string
	learn := idempotent.New(store, append(append([]idempotent.Option{}, opts...),
		idempotent.WithObserver(idempotent.Observer{Call: func(_ context.Context, e idempotent.Report) { id = e.Record }}))...)
	if _, err := idempotent.Do(t.Context(), learn, "charge", "k3", fail); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	other := held("another-run")
	other.ID = id
	if _, ok, err := store.Acquire(t.Context(), other, now); err != nil || !ok {
		t.Fatalf("seed Acquire = %v, %v", ok, err)
	}
	t.Run("held by another run", func(t *testing.T) {
		calls.Reset()
		runs = 0
		if _, err := idempotent.Do(t.Context(), plain, "charge", "k3", ok); !errors.Is(err, idempotent.ErrInProgress) || runs != 0 {
			t.Fatalf("Do = %v after %d runs; want ErrInProgress, no run", err, runs)
		}
		if got, want := calls.String(), "SET=1"; got != want {
			t.Fatalf("round trips: %s; want %s", got, want)
		}
	})
	t.Run("Get", func(t *testing.T) {
		calls.Reset()
		if rec, err := store.Get(t.Context(), id); err != nil || rec == nil || rec.Owner != "another-run" {
			t.Fatalf("Get = %+v, %v", rec, err)
		}
		if got, want := calls.String(), "GET=1"; got != want {
			t.Fatalf("round trips: %s; want %s", got, want)
		}
	})
	t.Run("takeover of an ended lease", func(t *testing.T) {
		clk.t = other.LeaseExpiration
		t.Cleanup(func() { clk.t = now })
		calls.Reset()
		runs = 0
		if _, err := idempotent.Do(t.Context(), plain, "charge", "k3", ok); err != nil || runs != 1 {
			t.Fatalf("Do = %v after %d runs; want one run", err, runs)
		}
		if got, want := calls.String(), "EVALSHA=2 SET=1"; got != want {
			t.Fatalf("round trips: %s; want %s", got, want)
		}
	})
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
// still succeeds; the plain commands (an acquire's SET NX GET) need none.
func TestColdScript(t *testing.T) {
	client, calls := testredis.CountingClient(t)
	store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
	// The flush also opens the connection: its handshake (HELLO, CLIENT
	// SETINFO) is not the store's.
	if err := client.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name string
		do   func() error
		want string
	}{
		{"acquire", func() error {
			if _, ok, err := store.Acquire(t.Context(), held("owner-1"), now); err != nil || !ok {
				return fmt.Errorf("Acquire = %v, %v", ok, err)
			}
			return nil
		}, "SET=1"},
		{"takeover", func() error {
			if _, ok, err := store.Acquire(t.Context(), held("owner-2"), held("owner-1").LeaseExpiration); err != nil || !ok {
				return fmt.Errorf("takeover Acquire = %v, %v", ok, err)
			}
			return nil
		}, "EVAL=1 EVALSHA=1 SET=1"},
		{"complete", func() error {
			return store.Complete(t.Context(), done(held("owner-2"), []byte("ok"), now.Add(time.Hour)))
		}, "EVAL=1 EVALSHA=1"},
		{"a conflict", func() error {
			if _, ok, err := store.Acquire(t.Context(), held("owner-3"), now); err != nil || ok {
				return fmt.Errorf("Acquire = %v, %v; want a replay", ok, err)
			}
			return nil
		}, "SET=1"},
		{"a second takeover", func() error {
			rec := held("owner-4")
			rec.ID = "other"
			if _, ok, err := store.Acquire(t.Context(), rec, now); err != nil || !ok {
				return fmt.Errorf("Acquire = %v, %v", ok, err)
			}
			next := held("owner-5")
			next.ID = rec.ID
			if _, ok, err := store.Acquire(t.Context(), next, now.Add(2*time.Hour)); err != nil || !ok {
				return fmt.Errorf("takeover Acquire = %v, %v", ok, err)
			}
			return nil
		}, "EVALSHA=1 SET=2"},
	} {
		calls.Reset()
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := calls.String(); got != step.want {
			t.Fatalf("%s: round trips %s; want %s", step.name, got, step.want)
		}
	}
}

var _ redisstore.Client = (*redis.Client)(nil)
