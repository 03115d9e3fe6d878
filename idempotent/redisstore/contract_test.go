package redisstore_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
	"github.com/idemlambda/idemlambda/idempotent/storetest"
)

// TestContract runs the store contract suite against a real redis-server,
// through a plain client over RESP3 (go-redis' default) and RESP2, a
// UniversalClient, and with compression off.
func TestContract(t *testing.T) {
	tests := []struct {
		name   string
		client func(t *testing.T) redisstore.Client
		opts   []func(*redisstore.Options)
	}{
		{name: "RESP3", client: func(t *testing.T) redisstore.Client { return testredis.Client(t) }},
		{name: "RESP2", client: func(t *testing.T) redisstore.Client {
			o := testredis.Options(t)
			o.Protocol = 2
			c := redis.NewClient(o)
			t.Cleanup(func() { _ = c.Close() })
			return c
		}},
		{name: "universal client", client: func(t *testing.T) redisstore.Client {
			c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{testredis.Addr(t)}})
			t.Cleanup(func() { _ = c.Close() })
			return c
		}},
		{name: "no compression", client: func(t *testing.T) redisstore.Client { return testredis.Client(t) },
			opts: []func(*redisstore.Options){func(o *redisstore.Options) { o.CompressThreshold = -1 }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := tt.client(t)
			storetest.Run(t, func(t *testing.T) idempotent.Store {
				opts := append([]func(*redisstore.Options){redisstore.WithKeyPrefix(testredis.Prefix(t))}, tt.opts...)
				return redisstore.New(client, opts...)
			})
		})
	}
}

// TestContractRing runs the contract suite through a *redis.Ring (one
// shard): the last of the go-redis clients Client names.
func TestContractRing(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"shard-1": testredis.Addr(t)}})
	t.Cleanup(func() { _ = ring.Close() })
	storetest.Run(t, func(t *testing.T) idempotent.Store {
		return redisstore.New(ring, redisstore.WithKeyPrefix(testredis.Prefix(t)))
	})
}
