package chaos_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/tools/internal/chaos"
	"github.com/idemlambda/idemlambda/tools/internal/redisserver"
)

// The Redis chaos test runs against a private redis-server this test binary
// starts on a free loopback port (redisserver: no persistence, never
// evicting, as redis/ctl.sh starts one) and TestMain stops.
var redisServer struct {
	once sync.Once
	srv  *redisserver.Server
	err  error
}

// redisAddr returns host:port of the private redis-server, starting it on
// first use; it fails tb when redis-server is missing or does not answer.
func redisAddr(tb testing.TB) string {
	tb.Helper()
	redisServer.once.Do(func() { redisServer.srv, redisServer.err = redisserver.Start() })
	if redisServer.err != nil {
		tb.Fatalf("redis: %v", redisServer.err)
	}
	return redisServer.srv.Addr
}

func stopRedis() { redisServer.srv.Close() }

// TestChaosRedis is TestChaos on the Redis store through the TCP fault
// proxy (reset, delay, answer lost after the command ran), checked by the
// same history checker. make chaos runs the long profile.
func TestChaosRedis(t *testing.T) {
	addr := redisAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := chaos.Run(ctx, chaos.Target{Redis: addr, KeyPrefix: "chaos-test:"}, chaos.Profile{
		Seed:          1,
		Clients:       4,
		OpsPerClient:  12,
		Containers:    3,
		Faults:        chaos.DefaultRedisFaults(),
		Crash:         0.08,
		Slow:          0.08,
		Fail:          0.08,
		Dup:           0.15,
		FaultAttempts: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r.Print(&out)
	t.Log("\n" + out.String())
	if r.Violations() != 0 {
		t.Errorf("%d invariant violations: %s", r.Violations(), r.Summary())
	}
	if r.Ops != 48 {
		t.Errorf("ops = %d, want 48", r.Ops)
	}
	if r.Records != 48 {
		t.Errorf("records = %d, want 48 (one per operation, read through the store)", r.Records)
	}
	if !strings.HasPrefix(r.Summary(), "chaos-redis: ") {
		t.Errorf("summary %q does not name the Redis run", r.Summary())
	}
	for _, k := range []string{"reset", "drop", "delay"} {
		found := false
		for kind, m := range r.Faults.Injected {
			if kind.String() == k && len(m) > 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s fault was injected", k)
		}
	}
}

// TestChaosRedisDetectsBrokenStore runs the workload on the Redis store,
// without faults, through a store whose Acquire never refuses: the checker
// must report duplicate completions and divergent answers.
func TestChaosRedisDetectsBrokenStore(t *testing.T) {
	addr := redisAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := chaos.Run(ctx, chaos.Target{Redis: addr, KeyPrefix: "chaos-broken:"}, chaos.Profile{
		Seed:         2,
		Clients:      2,
		OpsPerClient: 6,
		Containers:   2,
		Dup:          1,
		Paths:        []string{"do", "wrap"},
		StoreHook:    func(s idempotent.Store) idempotent.Store { return forgetfulStore{s} },
	})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r.Print(&out)
	t.Log("\n" + out.String())
	if r.Duplicates == 0 || r.Divergent == 0 {
		t.Errorf("a store without conditions went unnoticed: %s", r.Summary())
	}
}
