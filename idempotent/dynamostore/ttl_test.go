package dynamostore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// manualClock is a clock for WithClock that moves only when told.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestTTLShorterThanLeaseOnServer: with WithTTL(1s) and a 10 s lease, the
// in-progress item's expiration (its TTL attribute) is not before the lease
// end, and the server's conditional write keeps a duplicate out at t+2s
// (issue 10, defect 3).
func TestTTLShorterThanLeaseOnServer(t *testing.T) {
	client := testdynamo.Client(t)
	store := dynamostore.New(client, testdynamo.NewTable(t, client))
	clk := &manualClock{now: time.Now().Truncate(time.Second).Add(300 * time.Millisecond)}
	opts := []idempotent.Option{idempotent.WithClock(clk.Now), idempotent.WithTTL(time.Second), idempotent.WithLease(10 * time.Second)}

	started, finish := make(chan struct{}), make(chan struct{})
	var id string
	done := make(chan error, 1)
	go func() {
		// Another process holds the record: a duplicate in this one
		// would coalesce instead of meeting the record on the server.
		_, err := idempotent.Do(context.Background(), idempotent.New(elsewhere(store), opts...), "step", "ttl-lease", func(ctx context.Context) (string, error) {
			id, _ = idempotent.RecordIDFromContext(ctx)
			close(started)
			<-finish
			return "first", nil
		})
		done <- err
	}()
	<-started
	rec, err := store.Get(t.Context(), id)
	if err != nil || rec == nil {
		t.Fatalf("Get = %v, %v", rec, err)
	}
	if rec.Expiration.Before(rec.LeaseExpiration) {
		t.Fatalf("stored expiration %v is before the lease end %v", rec.Expiration, rec.LeaseExpiration)
	}
	clk.Advance(2 * time.Second)
	ran := false
	_, err = idempotent.Do(t.Context(), idempotent.New(store, opts...), "step", "ttl-lease", func(context.Context) (string, error) { ran = true; return "dup", nil })
	if ran || !errors.Is(err, idempotent.ErrInProgress) {
		t.Fatalf("duplicate at t+2s: ran %v, err %v; want ErrInProgress", ran, err)
	}
	close(finish)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// elsewhere is store as another process sees it: the same table, another
// Store value, so no in-process coalescing with calls on store.
func elsewhere(store idempotent.Store) idempotent.Store {
	return &struct{ idempotent.Store }{store}
}
