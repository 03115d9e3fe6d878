package idempotent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/storetest"
)

// The memory store passes the same contract suite as the DynamoDB store.
func TestMemoryStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) idempotent.Store { return idempotent.NewMemoryStore() })
}

func TestMemoryStoreSweepsExpiredRecords(t *testing.T) {
	clk := newClock()
	s := idempotent.NewMemoryStore()
	ctx := context.Background()
	for i := range 1500 {
		rec := idempotent.Record{ID: fmt.Sprint("k", i), Status: idempotent.StatusInProgress, Owner: "o",
			Expiration: clk.Now().Add(time.Second), LeaseExpiration: clk.Now().Add(time.Second)}
		if _, ok, err := s.Acquire(ctx, rec, clk.Now()); !ok || err != nil {
			t.Fatalf("acquire %d: %v %v", i, ok, err)
		}
		if i == 999 {
			clk.Advance(time.Second) // the first 1000 are dead from here on
		}
	}
	if n := s.Len(); n != 500 {
		t.Fatalf("after a sweep the store holds %d records, want the 500 live ones", n)
	}
}
