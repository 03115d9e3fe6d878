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

// TestCorruptRecords writes foreign and damaged records straight into the
// server. Get and Acquire report idempotent.ErrCorruptRecord, Acquire never
// takes such a key over, Complete and Release report ErrLeaseLost, and the key
// is left exactly as it was.
func TestCorruptRecords(t *testing.T) {
	client := testredis.Client(t)
	ok := map[string]any{"status": "COMPLETED", "expiration": "1800003600", "owner": "o", "data": "x"}
	// with is ok with the fields of kv (name, value, ...) set, or removed
	// where the value is nil.
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range ok {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name  string
		write func(ctx context.Context, key string) error
	}{
		{"a string key", func(ctx context.Context, key string) error { return client.Set(ctx, key, "hello", 0).Err() }},
		{"a list key", func(ctx context.Context, key string) error { return client.RPush(ctx, key, "a").Err() }},
		{"a foreign hash", func(ctx context.Context, key string) error { return client.HSet(ctx, key, "name", "bob").Err() }},
		{"unknown status", hset(client, with("status", "DONE"))},
		{"no status", hset(client, with("status", nil))},
		{"no expiration", hset(client, with("expiration", nil))},
		{"non-numeric expiration", hset(client, with("expiration", "soon"))},
		{"completed without data", hset(client, with("data", nil))},
		{"unknown data format", hset(client, with("data_format", "gzip"))},
		{"zstd format, data not zstd", hset(client, with("data_format", "zstd"))},
		// Held by another owner, so Complete and Release by "o" are fenced
		// off (the fence is status and owner, as on DynamoDB).
		{"in progress without lease", hset(client, with("status", "INPROGRESS", "owner", "p"))},
		{"in progress, non-numeric lease", hset(client, with("status", "INPROGRESS", "owner", "p", "in_progress_expiration", "x"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
			key := store.Key(testKey)
			if err := tt.write(t.Context(), key); err != nil {
				t.Fatal(err)
			}
			before, err := client.Dump(t.Context(), key).Result()
			if err != nil {
				t.Fatal(err)
			}
			if rec, err := store.Get(t.Context(), testKey); !errors.Is(err, idempotent.ErrCorruptRecord) {
				t.Fatalf("Get = %+v, %v; want ErrCorruptRecord", rec, err)
			}
			if rec, acquired, err := store.Acquire(t.Context(), held("owner-1"), now); acquired || !errors.Is(err, idempotent.ErrCorruptRecord) {
				t.Fatalf("Acquire = %+v, %v, %v; want ErrCorruptRecord, not acquired", rec, acquired, err)
			}
			if err := store.Complete(t.Context(), done(held("o"), []byte("y"), now)); !errors.Is(err, idempotent.ErrLeaseLost) {
				t.Fatalf("Complete = %v; want ErrLeaseLost", err)
			}
			if err := store.Release(t.Context(), testKey, "o"); !errors.Is(err, idempotent.ErrLeaseLost) {
				t.Fatalf("Release = %v; want ErrLeaseLost", err)
			}
			after, err := client.Dump(t.Context(), key).Result()
			if err != nil || after != before {
				t.Fatalf("the key changed: %v", err)
			}
		})
	}
}

func hset(client *redis.Client, fields map[string]any) func(ctx context.Context, key string) error {
	return func(ctx context.Context, key string) error { return client.HSet(ctx, key, fields).Err() }
}
