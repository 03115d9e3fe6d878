package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
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

// faultProxy relays TCP between go-redis clients and the server and, for
// each chunk a client sends (one command, for the small commands here),
// injects a fault drawn from a seeded source: reset (the connection closes,
// the command never reaches the server), delay (held 1–20 ms, then sent), or
// drop (sent; the server's reply is read and thrown away and the connection
// closed: the command ran, its answer is lost — the case go-redis answers
// by resending).
type faultProxy struct {
	ln      net.Listener
	target  string
	enabled atomic.Bool
	mu      sync.Mutex
	rng     *rand.Rand
	counts  map[string]int
	wg      sync.WaitGroup
}

func newFaultProxy(t *testing.T, target string, seed uint64) *faultProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, rng: rand.New(rand.NewPCG(seed, 7)), counts: map[string]int{}}
	p.enabled.Store(true)
	p.wg.Go(p.serve)
	t.Cleanup(func() { _ = ln.Close(); p.wg.Wait() })
	return p
}

// fault draws the fault for the next chunk: "", "reset", "delay" or "drop".
func (p *faultProxy) fault() (string, time.Duration) {
	if !p.enabled.Load() {
		return "", 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	x := p.rng.Float64()
	kind := ""
	switch {
	case x < 0.05:
		kind = "reset"
	case x < 0.13:
		kind = "drop"
	case x < 0.18:
		kind = "delay"
	}
	if kind != "" {
		p.counts[kind]++
	}
	return kind, time.Duration(1+p.rng.IntN(20)) * time.Millisecond
}

// injected returns how many faults of each kind were injected.
func (p *faultProxy) injected() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		m[k] = v
	}
	return m
}

func (p *faultProxy) serve() {
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
		var dropReply atomic.Bool
		closeBoth := func() { _ = c.Close(); _ = s.Close() }
		p.wg.Go(func() { // client → server
			defer closeBoth()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					kind, d := p.fault()
					switch kind {
					case "reset":
						return
					case "delay":
						time.Sleep(d)
					case "drop":
						dropReply.Store(true)
					}
					if _, err := s.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
		p.wg.Go(func() { // server → client
			defer closeBoth()
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 && dropReply.Load() {
					return // the command ran; its answer is lost
				}
				if n > 0 {
					if _, err := c.Write(buf[:n]); err != nil {
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

// TestChaos runs a concurrent workload through idempotent.Do on several
// "containers" (own client and store each) sharing one real redis-server
// behind faultProxy, then checks the history: no key completed by two runs
// (duplicates), every caller of a key got the one stored result
// (divergent), every operation got a final answer after faults stopped
// (lost), and no record is left in progress (stuck). Leases are short, so
// writes whose answers were lost and never resent are taken over; the
// invariants are counts and hold whatever the timing.
func TestChaos(t *testing.T) {
	const (
		clients    = 8
		opsPerCl   = 40
		keys       = 30
		containers = 3
		attempts   = 25
	)
	proxy := newFaultProxy(t, testredis.Addr(t), 1)
	prefix := testredis.Prefix(t)
	var stores []*redisstore.Store
	for range containers {
		o := testredis.Options(t)
		o.Addr = proxy.ln.Addr().String()
		o.ReadTimeout, o.WriteTimeout = time.Second, time.Second
		c := redis.NewClient(o)
		t.Cleanup(func() { _ = c.Close() })
		stores = append(stores, redisstore.New(c, redisstore.WithKeyPrefix(prefix)))
	}
	opts := []idempotent.Option{idempotent.WithName("chaos"), idempotent.WithLease(200 * time.Millisecond)}

	var (
		runSeq    atomic.Int64
		mu        sync.Mutex
		completed = map[string][]string{} // key → runs whose own result Do returned
		answers   = map[string][]string{} // key → every final answer
		ran       atomic.Int64
	)
	op := func(ctx context.Context, rng *rand.Rand, key string, max int) bool {
		for i := 0; max == 0 || i < max; i++ {
			if ctx.Err() != nil {
				return false
			}
			st := stores[rng.IntN(len(stores))]
			var mine string
			out, err := idempotent.Do(ctx, idempotent.New(st, opts...), "charge", key, func(context.Context) (string, error) {
				ran.Add(1)
				mine = fmt.Sprintf("%s/run-%d", key, runSeq.Add(1))
				return mine, nil
			})
			if err == nil {
				mu.Lock()
				answers[key] = append(answers[key], out)
				if out == mine {
					completed[key] = append(completed[key], mine)
				}
				mu.Unlock()
				return true
			}
			var se *idempotent.StoreError
			if !errors.As(err, &se) && !errors.Is(err, idempotent.ErrInProgress) && !errors.Is(err, idempotent.ErrLeaseLost) {
				t.Errorf("Do(%s) = %v: not a retryable outcome", key, err)
				return true
			}
			time.Sleep(time.Duration(5+rng.IntN(30)) * time.Millisecond)
		}
		return false
	}

	var (
		wg       sync.WaitGroup
		deferred []string
		dmu      sync.Mutex
	)
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(1, uint64(c)))
			for range opsPerCl {
				key := fmt.Sprintf("k%02d", rng.IntN(keys))
				if !op(t.Context(), rng, key, attempts) {
					dmu.Lock()
					deferred = append(deferred, key)
					dmu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	proxy.enabled.Store(false)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	lost := 0
	rng := rand.New(rand.NewPCG(2, 2))
	for _, key := range deferred {
		if !op(ctx, rng, key, 0) {
			lost++
		}
	}

	// Check the history against the server.
	dups, divergent, stuck := 0, 0, 0
	for i := range keys {
		key := fmt.Sprintf("k%02d", i)
		if n := len(completed[key]); n > 1 {
			dups += n - 1
			t.Errorf("%s completed by %d runs: %v", key, n, completed[key])
		}
		if len(answers[key]) == 0 {
			continue
		}
		id := recordID(t, stores[0], key, opts)
		rec, err := stores[0].Get(t.Context(), id)
		if err != nil || rec == nil {
			t.Errorf("%s: Get = %+v, %v", key, rec, err)
			continue
		}
		if rec.Status != idempotent.StatusCompleted {
			stuck++
			continue
		}
		var stored string
		if err := json.Unmarshal(rec.Data, &stored); err != nil {
			t.Errorf("%s: stored data: %v", key, err)
		}
		for _, a := range answers[key] {
			if a != stored {
				divergent++
				t.Errorf("%s: answer %q, stored %q", key, a, stored)
			}
		}
	}
	faults := proxy.injected()
	t.Logf("ops %d, handler runs %d, faults %v, set aside %d; duplicates %d, divergent %d, lost %d, stuck %d",
		clients*opsPerCl, ran.Load(), faults, len(deferred), dups, divergent, lost, stuck)
	if dups+divergent+lost+stuck != 0 {
		t.Fatalf("violations: duplicates %d, divergent %d, lost %d, stuck %d", dups, divergent, lost, stuck)
	}
	if faults["drop"] == 0 || faults["reset"] == 0 {
		t.Fatalf("faults injected %v: the run proves nothing", faults)
	}
}

// recordID finds the record id Do uses for key (the core hashes it): the
// one key of the store's prefix whose record answers for key.
func recordID(t *testing.T, st *redisstore.Store, key string, opts []idempotent.Option) string {
	t.Helper()
	var id string
	probe := probeStore{Store: st, seen: &id}
	_, _ = idempotent.Do(t.Context(), idempotent.New(probe, opts...), "charge", key, func(context.Context) (string, error) { return "", errors.New("probe") })
	return id
}

// probeStore records the id of the first Acquire and acquires nothing.
type probeStore struct {
	*redisstore.Store
	seen *string
}

func (p probeStore) Acquire(_ context.Context, rec idempotent.Record, _ time.Time) (*idempotent.Record, bool, error) {
	*p.seen = rec.ID
	return nil, false, errors.New("probe only")
}
