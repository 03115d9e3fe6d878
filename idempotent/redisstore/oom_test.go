package redisstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// TestOutOfMemory: a full server under maxmemory-policy noeviction refuses
// the writes. Every operation then fails with a *StoreError and leaves the
// record exactly as it was — no half-written record, no lost claim.
func TestOutOfMemory(t *testing.T) {
	client := testredis.Client(t)
	store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
	key := store.Key(testKey)
	oldLease := held("owner-1")
	oldLease.LeaseExpiration = now.Add(-time.Second).Truncate(time.Millisecond)
	tests := []struct {
		name string
		seed idempotent.Record
		do   func() error
	}{
		{name: "complete", seed: held("owner-1"), do: func() error {
			return store.Complete(t.Context(), done(held("owner-1"), []byte("result"), now.Add(time.Hour)))
		}},
		{name: "acquire over an ended lease", seed: oldLease, do: func() error {
			_, _, err := store.Acquire(t.Context(), held("owner-2"), now)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client.Del(t.Context(), key)
			if _, ok, err := store.Acquire(t.Context(), tt.seed, now.Add(-time.Hour)); err != nil || !ok {
				t.Fatalf("seed: %v, %v", ok, err)
			}
			before := client.Dump(t.Context(), key).Val()
			if err := client.ConfigSet(t.Context(), "maxmemory", "1").Err(); err != nil {
				t.Fatal(err)
			}
			err := tt.do()
			if err := client.ConfigSet(t.Context(), "maxmemory", "0").Err(); err != nil {
				t.Fatal(err)
			}
			t.Logf("error: %v", err)
			var se *idempotent.StoreError
			if !errors.As(err, &se) {
				t.Fatalf("error = %v, want a *StoreError (OOM)", err)
			}
			if after := client.Dump(t.Context(), key).Val(); after != before {
				t.Fatal("the record changed")
			}
		})
	}
}
