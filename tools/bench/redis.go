package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
)

// The Redis sides (-impls idemlambda-redis,powertools-ts-redis,floor-redis)
// run against a private redis-server the bench starts on a free loopback port
// (no persistence, never evicting, as redis/ctl.sh starts one). Their
// calls_per_op are the Redis round trips their client sends, not the DynamoDB
// proxy's count; write units are 0. The Go sides count with a go-redis hook
// (a command or a pipeline is one, the connection handshake none);
// powertools-ts-redis counts in its Node driver the get, set and del commands
// the cache layer sends through @redis/client, each awaited on its own, so
// one command is one round trip of its invocation (handshake none either).
// Both count on the client, so no proxy hop is added to any side's latency.

// tripCounter is a go-redis hook counting round trips: each command and each
// pipeline is one, except a new connection's handshake.
type tripCounter struct{ n atomic.Int64 }

func (c *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if slices.ContainsFunc(cmds, func(cmd redis.Cmder) bool { return !handshake(cmd) }) {
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// handshake tells the commands go-redis sends to set up a new connection
// (HELLO, CLIENT SETINFO, ...), which pass the hooks too.
func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}

// counted is an implementation that counts its own store calls (instead of
// the DynamoDB proxy).
type counted interface {
	trips() *atomic.Int64
}

// redisSide is what both Redis sides share: a counted client, and an
// uncounted one that empties the database after a run of new keys (outside
// the measured loop; no row needs them again).
type redisSide struct {
	client *redis.Client
	admin  *redis.Client
	count  *tripCounter
}

func newRedisSide(addr string) redisSide {
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	n := &tripCounter{}
	c.AddHook(n)
	return redisSide{client: c, admin: redis.NewClient(&redis.Options{Addr: addr}), count: n}
}

func (r redisSide) trips() *atomic.Int64 { return &r.count.n }

func (r redisSide) after(ctx context.Context, s spec) {
	if s.scenario == "new" {
		_ = r.admin.FlushDB(ctx).Err()
	}
}

// oursRedis is idemlambda with Redis: Wrap around the handler, redisstore
// underneath.
type oursRedis struct{ redisSide }

func (o *oursRedis) name() string { return "idemlambda-redis" }

func (o *oursRedis) handler(s spec) func(context.Context, event) (json.RawMessage, error) {
	store := redisstore.New(o.client)
	result := json.RawMessage(s.payload)
	return idempotent.Wrap(idempotent.New(store, idempotent.WithName("bench")), func(context.Context, event) (json.RawMessage, error) {
		return result, nil
	}, idempotent.WithKeyPath("id"))
}

func (o *oursRedis) seed(ctx context.Context, s spec) error {
	h := o.handler(s)
	for _, k := range s.keys {
		if _, err := h(ctx, event{ID: k}); err != nil {
			return err
		}
	}
	return nil
}

func (o *oursRedis) run(ctx context.Context, s spec) (outcome, error) {
	envs := environments(s.workers, func() func(context.Context, event) (json.RawMessage, error) { return o.handler(s) })
	out := loop(ctx, s, func(ctx context.Context, key string) error {
		h := <-envs
		defer func() { envs <- h }()
		out, err := h(ctx, event{ID: key})
		if err == nil && len(out) != len(s.payload) {
			err = fmt.Errorf("got %d bytes, want %d", len(out), len(s.payload))
		}
		return err
	})
	o.after(ctx, s)
	return out, nil
}

// floorRedis is what any idempotent handler on Redis must send, with no
// library: SET key "I" NX GET EX <ttl> claims a new key (reply nil) or
// returns the stored value in the same round trip, and SET key "C"+result
// EX <ttl> completes it — 2 round trips for a new key, 1 for a replay. It
// has no owner fencing and no lease takeover: a floor, not a store.
type floorRedis struct{ redisSide }

func (f *floorRedis) name() string { return "floor-redis" }

func (f *floorRedis) invoke(ctx context.Context, key string, payload []byte) ([]byte, error) {
	k := "floor:" + key
	old, err := f.client.SetArgs(ctx, k, "I", redis.SetArgs{Mode: "NX", Get: true, TTL: time.Hour}).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		if err := f.client.Set(ctx, k, append([]byte{'C'}, payload...), time.Hour).Err(); err != nil {
			return nil, err
		}
		return payload, nil
	case err != nil:
		return nil, err
	case len(old) == 0 || old[0] != 'C':
		return nil, errors.New("in progress")
	default:
		return old[1:], nil
	}
}

func (f *floorRedis) seed(ctx context.Context, s spec) error {
	for _, k := range s.keys {
		if _, err := f.invoke(ctx, k, s.payload); err != nil {
			return err
		}
	}
	return nil
}

func (f *floorRedis) run(ctx context.Context, s spec) (outcome, error) {
	out := loop(ctx, s, func(ctx context.Context, key string) error {
		out, err := f.invoke(ctx, key, s.payload)
		if err == nil && len(out) != len(s.payload) {
			err = fmt.Errorf("got %d bytes, want %d", len(out), len(s.payload))
		}
		return err
	})
	f.after(ctx, s)
	return out, nil
}

// powertoolsRedis is Powertools TypeScript's cache persistence layer
// (@aws-lambda-powertools/idempotency/cache) on @redis/client, driven by
// driver.mjs against the bench's redis-server.
type powertoolsRedis struct {
	*powertools
	admin *redis.Client
}

func startPowertoolsRedis(addr string) (*powertoolsRedis, error) {
	p, err := startPowertools("", "", "redis://"+addr)
	if err != nil {
		return nil, err
	}
	return &powertoolsRedis{powertools: p, admin: redis.NewClient(&redis.Options{Addr: addr})}, nil
}

func (p *powertoolsRedis) trips() *atomic.Int64 { return &p.calls }

func (p *powertoolsRedis) run(ctx context.Context, s spec) (outcome, error) {
	out, err := p.powertools.run(ctx, s)
	if err == nil && s.scenario == "new" {
		_ = p.admin.FlushDB(ctx).Err()
	}
	return out, err
}

func (p *powertoolsRedis) close() {
	p.powertools.close()
	_ = p.admin.Close()
}
