package redisstore_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

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

// TestGetOnPrimaryWhenReplicasRead: a cluster client that may send read-only
// commands to replicas (ReadOnly, RouteByLatency, RouteRandomly) gets its
// records read through the get script, which go-redis routes to the
// primary; a plain cluster client reads with one GET.
func TestGetOnPrimaryWhenReplicasRead(t *testing.T) {
	base := testredis.Cluster(t)
	for _, tt := range []struct {
		name   string
		set    func(*redis.ClusterOptions)
		script bool
	}{
		{name: "primaries only", set: func(*redis.ClusterOptions) {}},
		{name: "ReadOnly", set: func(o *redis.ClusterOptions) { o.ReadOnly = true }, script: true},
		{name: "RouteByLatency", set: func(o *redis.ClusterOptions) { o.RouteByLatency = true }, script: true},
		{name: "RouteRandomly", set: func(o *redis.ClusterOptions) { o.RouteRandomly = true }, script: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := *base.Options()
			tt.set(&opts)
			client := redis.NewClusterClient(&opts)
			t.Cleanup(func() { _ = client.Close() })
			calls := &testredis.Counter{}
			client.AddHook(calls)
			store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
			if _, ok, err := store.Acquire(t.Context(), held("owner-1"), now); err != nil || !ok {
				t.Fatalf("Acquire = %v, %v", ok, err)
			}
			before := calls.Count("GET")
			rec, err := store.Get(t.Context(), testKey)
			if err != nil || rec == nil || rec.Owner != "owner-1" {
				t.Fatalf("Get = %+v, %v", rec, err)
			}
			if gets := calls.Count("GET") - before; (gets == 0) != tt.script {
				t.Fatalf("%d GETs for one Get; want the script: %v", gets, tt.script)
			}
		})
	}
}
