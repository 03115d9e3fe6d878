package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// TestAcquireReportsTakeover: an acquire over an in-progress record returns
// the record it replaced (without data), in two round trips (the SET NX GET
// that finds it, the script that writes over it), when that record was free
// by its lease's end or its expiration; and nil over no record (one round
// trip), over an expired completed record (two), and for a repeated acquire
// by the lease's owner (one: it finds its own record and does not write).
func TestAcquireReportsTakeover(t *testing.T) {
	expiredHeld := held("owner-1")
	expiredHeld.Expiration = now.Truncate(time.Second)
	tests := []struct {
		name     string
		seed     *idempotent.Record
		next     idempotent.Record
		replaced bool
		sent     string // the commands Acquire sends
	}{
		{name: "no record", next: held("owner-2"), sent: "SET=1"},
		{name: "in progress, lease ended", seed: ptr(held("owner-1")), next: held("owner-2"), replaced: true, sent: "EVALSHA=1 SET=1"},
		{name: "in progress, expired", seed: &expiredHeld, next: held("owner-2"), replaced: true, sent: "EVALSHA=1 SET=1"},
		{name: "completed, expired", seed: ptr(done(held("owner-1"), []byte("paid"), now)), next: held("owner-2"), sent: "EVALSHA=1 SET=1"},
		{name: "repeated acquire by the lease's owner", seed: ptr(held("owner-2")), next: held("owner-2"), sent: "SET=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, calls := newStore(t)
			// Teach the server the script (a first run costs EVALSHA + EVAL):
			// a takeover of an ended lease.
			warm := held("warm-up")
			warm.ID = "warm-up"
			if _, _, err := store.Acquire(t.Context(), warm, now); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := store.Acquire(t.Context(), warm, warm.LeaseExpiration); err != nil || !ok {
				t.Fatalf("warm-up takeover = %v, %v", ok, err)
			}
			at := now
			if tt.seed != nil {
				seed := *tt.seed
				if _, ok, err := store.Acquire(t.Context(), seed, now.Add(-time.Minute)); err != nil || !ok {
					t.Fatalf("seed Acquire = %v, %v", ok, err)
				}
				if seed.Status == idempotent.StatusCompleted {
					at = now.Add(time.Second)
				} else if seed.Owner != tt.next.Owner {
					at = seed.LeaseExpiration // the lease ends this millisecond
				}
			}
			calls.Reset()
			existing, ok, err := store.Acquire(t.Context(), tt.next, at)
			if err != nil || !ok {
				t.Fatalf("Acquire = %+v, %v, %v; want acquired", existing, ok, err)
			}
			if got := calls.String(); got != tt.sent {
				t.Fatalf("Acquire sent %s, want %s", got, tt.sent)
			}
			if !tt.replaced {
				if existing != nil {
					t.Fatalf("Acquire returned %+v, want nil", existing)
				}
				return
			}
			want := *tt.seed
			if existing == nil || existing.ID != want.ID || existing.Status != want.Status || existing.Owner != want.Owner ||
				existing.Fingerprint != want.Fingerprint || existing.Data != nil ||
				!existing.Expiration.Equal(want.Expiration) || !existing.LeaseExpiration.Equal(want.LeaseExpiration) {
				t.Fatalf("Acquire returned %+v, want the replaced record %+v", existing, want)
			}
			got, err := store.Get(t.Context(), tt.next.ID)
			if err != nil || got == nil || got.Owner != tt.next.Owner {
				t.Fatalf("Get after the takeover = %+v, %v; want owner %s", got, err, tt.next.Owner)
			}
		})
	}
}

// TestTakeoverObserved: through the core, a run that takes over a crashed
// run's ended lease is reported with Report.Takeover; a first run is not.
func TestTakeoverObserved(t *testing.T) {
	store, _ := newStore(t)
	clk := &clock{t: now}
	var events []idempotent.Report
	opts := []idempotent.Option{
		idempotent.WithName("orders"), idempotent.WithClock(clk.Now), idempotent.WithLease(30 * time.Second),
		idempotent.WithObserver(idempotent.Observer{Call: func(_ context.Context, e idempotent.Report) { events = append(events, e) }}),
	}
	// A first run learns the record id and leaves no record behind (it
	// fails and releases the key): no takeover.
	boom := errors.New("boom")
	fail := func(context.Context) (string, error) { return "", boom }
	if _, err := idempotent.Do(t.Context(), idempotent.New(store, opts...), "charge", "k1", fail); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Takeover {
		t.Fatalf("events after the first run = %+v; want one, no takeover", events)
	}
	// A run of another process crashed holding the key: its record stays
	// in progress with a lease ending in 30 s.
	crashed := held("crashed")
	crashed.ID = events[0].Record
	if _, ok, err := store.Acquire(t.Context(), crashed, now); err != nil || !ok {
		t.Fatalf("seed Acquire = %v, %v", ok, err)
	}
	clk.t = now.Add(31 * time.Second)
	ok := func(context.Context) (string, error) { return "paid", nil }
	if _, err := idempotent.Do(t.Context(), idempotent.New(store, opts...), "charge", "k1", ok); err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || !events[1].Takeover {
		t.Fatalf("events = %+v; want the second run reported as a takeover", events)
	}
}

func ptr[T any](v T) *T { return &v }
