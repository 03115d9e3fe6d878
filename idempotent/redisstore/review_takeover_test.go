package redisstore_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// TestReviewFreePathRace: many callers whose plain SET NX GET all found the
// same free record (an in-progress record whose lease ended, an expired
// completed one) race through the acquire script; exactly one is told
// acquired per round, and exactly one takeover is reported for the
// in-progress record.
func TestReviewFreePathRace(t *testing.T) {
	client := testredis.Client(t)
	store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
	at := now.Add(time.Minute) // the lease of held(...) ended 30 s ago
	for round := range 20 {
		dead := held("crashed")
		if round%2 == 1 {
			dead = done(held("crashed"), []byte("old"), now.Add(-time.Hour))
			dead.Expiration = now.Add(30 * time.Second).Truncate(time.Second)
		}
		client.Del(t.Context(), store.Key(testKey))
		if _, ok, err := store.Acquire(t.Context(), dead, now); err != nil || !ok {
			t.Fatalf("seed Acquire = %v, %v", ok, err)
		}
		var acquired, takeovers atomic.Int32
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Go(func() {
				rec := held(fmt.Sprintf("r%d-%d", round, i))
				rec.Expiration = at.Add(time.Hour).Truncate(time.Second)
				rec.LeaseExpiration = at.Add(30 * time.Second).Truncate(time.Millisecond)
				existing, ok, err := store.Acquire(t.Context(), rec, at)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					acquired.Add(1)
					if existing != nil {
						takeovers.Add(1)
					}
				}
			})
		}
		wg.Wait()
		wantTakeovers := int32(1 - round%2)
		if acquired.Load() != 1 || takeovers.Load() != wantTakeovers {
			t.Fatalf("round %d: %d acquired, %d takeovers; want 1 and %d", round, acquired.Load(), takeovers.Load(), wantTakeovers)
		}
	}
}
