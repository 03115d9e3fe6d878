package redisstore_test

import (
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
	"github.com/idemlambda/idemlambda/idempotent/storetest"
)

// TestContractCluster runs the contract suite through a *redis.ClusterClient
// on a real redis-server in cluster mode: the scripts declare their one key,
// and its hash tag routes them to the slot of the record id.
func TestContractCluster(t *testing.T) {
	client := testredis.Cluster(t)
	storetest.Run(t, func(t *testing.T) idempotent.Store {
		return redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
	})
	// The key's slot is the id's: the hash tag, not the prefix, decides.
	s := redisstore.New(client, redisstore.WithKeyPrefix("some:prefix:"))
	id := "orders#3a6e"
	got := client.ClusterKeySlot(t.Context(), s.Key(id)).Val()
	want := client.ClusterKeySlot(t.Context(), id).Val()
	if got != want {
		t.Fatalf("slot of %q = %d, want the id's %d", s.Key(id), got, want)
	}
}
