package redisstore_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// resent runs every EVALSHA and SET twice against the real server and
// answers with the second reply, as go-redis does when the first reply is
// lost after the command ran (it resends on EOF by default).
type resent struct {
	redisstore.Client
	on atomic.Bool
}

func (r *resent) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	if r.on.Load() {
		if err := r.Client.EvalSha(ctx, sha1, keys, args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return redis.NewCmdResult(nil, err)
		}
	}
	return r.Client.EvalSha(ctx, sha1, keys, args...)
}

func (r *resent) SetArgs(ctx context.Context, key string, value any, a redis.SetArgs) *redis.StatusCmd {
	if r.on.Load() {
		if err := r.Client.SetArgs(ctx, key, value, a).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return redis.NewStatusResult("", err)
		}
	}
	return r.Client.SetArgs(ctx, key, value, a)
}

// TestAnswerLost: a write that landed but whose answer was lost, resent,
// recognises its own owner token. Acquire reports the key acquired, Complete
// success; Release, whose first run deleted the record, reports ErrLeaseLost
// (the core logs it and returns the handler's error all the same). A resent
// write never passes another owner's fence.
func TestAnswerLost(t *testing.T) {
	client := testredis.Client(t)
	// Teach the server the scripts, so every call below is one EVALSHA.
	warm := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
	if _, _, err := warm.Acquire(t.Context(), held("w"), now); err != nil {
		t.Fatal(err)
	}
	_ = warm.Complete(t.Context(), done(held("w"), []byte("x"), now))
	_ = warm.Release(t.Context(), testKey, "w")
	_, _ = warm.Get(t.Context(), testKey)

	lossy := &resent{Client: client}
	store := redisstore.New(lossy, redisstore.WithKeyPrefix(testredis.Prefix(t)))
	lossy.on.Store(true)

	if _, ok, err := store.Acquire(t.Context(), held("owner-1"), now); err != nil || !ok {
		t.Fatalf("resent Acquire = %v, %v; want acquired", ok, err)
	}
	if _, ok, err := store.Acquire(t.Context(), held("owner-2"), now); err != nil || ok {
		t.Fatalf("resent Acquire by another owner = %v, %v; want a conflict", ok, err)
	}
	result := done(held("owner-1"), []byte(`{"charge":"ch_1"}`), now.Add(time.Hour))
	if err := store.Complete(t.Context(), result); err != nil {
		t.Fatalf("resent Complete = %v, want success", err)
	}
	got, err := store.Get(t.Context(), testKey)
	if err != nil || got == nil || got.Status != idempotent.StatusCompleted || string(got.Data) != `{"charge":"ch_1"}` {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	// The same owner completing again with other data is not a resend.
	other := done(held("owner-1"), []byte(`{"charge":"ch_2"}`), now.Add(time.Hour))
	if err := store.Complete(t.Context(), other); !errors.Is(err, idempotent.ErrLeaseLost) {
		t.Fatalf("Complete with other data = %v, want ErrLeaseLost", err)
	}

	key2 := held("owner-3")
	key2.ID = "orders#other"
	if _, ok, err := store.Acquire(t.Context(), key2, now); err != nil || !ok {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	if err := store.Release(t.Context(), key2.ID, "owner-3"); !errors.Is(err, idempotent.ErrLeaseLost) {
		t.Fatalf("resent Release = %v, want ErrLeaseLost (the first run deleted it)", err)
	}
	if rec, err := store.Get(t.Context(), key2.ID); err != nil || rec != nil {
		t.Fatalf("Get after Release = %+v, %v; want none", rec, err)
	}
}

// dropProxy relays TCP between go-redis and the server. After arm(), it
// reads the server's next reply to the client and closes the client's
// connection instead of forwarding it: the command ran, its answer is lost.
type dropProxy struct {
	ln      net.Listener
	target  string
	armed   atomic.Bool
	dropped atomic.Int32
	wg      sync.WaitGroup
}

func newDropProxy(t *testing.T, target string) *dropProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, target: target}
	p.wg.Go(p.serve)
	t.Cleanup(func() { _ = ln.Close(); p.wg.Wait() })
	return p
}

func (p *dropProxy) addr() string { return p.ln.Addr().String() }

func (p *dropProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.wg.Go(func() { _, _ = io.Copy(s, c); _ = s.Close() })
		p.wg.Go(func() {
			defer c.Close()
			defer s.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 && p.armed.CompareAndSwap(true, false) {
					p.dropped.Add(1)
					return // the reply is lost; both connections close
				}
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
	}
}

// TestAnswerLostOnTheWire drops the reply of a script that ran, at the TCP
// level, and lets go-redis do what it does by default: resend the command on
// a new connection. Acquire and Complete must still succeed, and the run must
// happen once.
func TestAnswerLostOnTheWire(t *testing.T) {
	proxy := newDropProxy(t, testredis.Addr(t))
	opts := testredis.Options(t)
	opts.Addr = proxy.addr()
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	calls := &testredis.Counter{}
	client.AddHook(calls)
	store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
	clk := &clock{t: now}
	dopts := []idempotent.Option{idempotent.WithName("orders"), idempotent.WithClock(clk.Now)}

	// Warm the connection and the script cache.
	if _, err := idempotent.Do(t.Context(), idempotent.New(store, dopts...), "charge", "warm-up", func(context.Context) (int, error) { return 0, nil }); err != nil {
		t.Fatal(err)
	}

	// The store alone, below the core's own lost-answer checks.
	t.Run("store", func(t *testing.T) {
		proxy.armed.Store(true)
		if _, ok, err := store.Acquire(t.Context(), held("owner-1"), now); err != nil || !ok {
			t.Fatalf("Acquire whose answer was lost = %v, %v; want acquired", ok, err)
		}
		proxy.armed.Store(true)
		if err := store.Complete(t.Context(), done(held("owner-1"), []byte("ok"), now.Add(time.Hour))); err != nil {
			t.Fatalf("Complete whose answer was lost = %v; want success", err)
		}
		if n := proxy.dropped.Swap(0); n != 2 {
			t.Fatalf("the proxy dropped %d replies, want 2", n)
		}
	})

	// armingScripter arms the proxy before the n-th command of the run:
	// 1 = acquire (SET), 2 = complete (EVALSHA).
	for _, tt := range []struct {
		name string
		drop int
	}{{"acquire answer lost", 1}, {"complete answer lost", 2}} {
		t.Run(tt.name, func(t *testing.T) {
			runs := 0
			lossy := &armingScripter{Client: client, proxy: proxy, at: tt.drop}
			s := redisstore.New(lossy, redisstore.WithKeyPrefix(testredis.Prefix(t)))
			fn := func(context.Context) (string, error) { runs++; return "paid", nil }
			out, err := idempotent.Do(t.Context(), idempotent.New(s, dopts...), "charge", "order-1", fn)
			if err != nil || out != "paid" {
				t.Fatalf("Do = %q, %v; want paid", out, err)
			}
			if proxy.dropped.Load() == 0 {
				t.Fatal("the proxy dropped no reply: the test proves nothing")
			}
			proxy.dropped.Store(0)
			again, err := idempotent.Do(t.Context(), idempotent.New(s, dopts...), "charge", "order-1", fn)
			if err != nil || again != "paid" || runs != 1 {
				t.Fatalf("replay = %q, %v after %d runs; want paid after 1", again, err, runs)
			}
		})
	}
}

// armingScripter arms the proxy just before the at-th command the store
// sends through it (EVALSHA or SET).
type armingScripter struct {
	redisstore.Client
	proxy *dropProxy
	at    int
	n     int
}

func (a *armingScripter) arm() {
	a.n++
	if a.n == a.at {
		a.proxy.armed.Store(true)
	}
}

func (a *armingScripter) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	a.arm()
	return a.Client.EvalSha(ctx, sha1, keys, args...)
}

func (a *armingScripter) SetArgs(ctx context.Context, key string, value any, arg redis.SetArgs) *redis.StatusCmd {
	a.arm()
	return a.Client.SetArgs(ctx, key, value, arg)
}
