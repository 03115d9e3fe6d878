package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

var prefixes atomic.Int64

// Prefix returns a key prefix no other test in this binary (nor any other
// binary sharing the server: it holds the process id) uses.
func Prefix(tb testing.TB) string {
	tb.Helper()
	return fmt.Sprintf("test:%d:%d:", pid, prefixes.Add(1))
}

// Client returns a client of the local server, closed when tb ends.
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(Options(tb))
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// CountingClient returns a client of the local server and the Counter of
// the commands it sends.
func CountingClient(tb testing.TB) (*redis.Client, *Counter) {
	tb.Helper()
	c := Client(tb)
	n := &Counter{}
	c.AddHook(n)
	return c, n
}

// Counter is a go-redis hook that counts the commands a client sends, by
// name (upper case), and each pipeline as one "PIPELINE" round trip. It is
// safe for concurrent use.
type Counter struct {
	mu sync.Mutex
	n  map[string]int
}

var _ redis.Hook = (*Counter)(nil)

func (c *Counter) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name]++
}

// DialHook implements redis.Hook; dials are not counted.
func (c *Counter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

// ProcessHook implements redis.Hook.
func (c *Counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(strings.ToUpper(cmd.Name()))
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *Counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.add("PIPELINE")
		return next(ctx, cmds)
	}
}

// Count returns how many commands named name (case-insensitive) were sent.
func (c *Counter) Count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[strings.ToUpper(name)]
}

// Total returns how many round trips were made.
func (c *Counter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := 0
	for _, v := range c.n {
		t += v
	}
	return t
}

// Reset forgets every count.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = nil
}

// String lists the counts, sorted by name.
func (c *Counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.n))
	for k := range c.n {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, c.n[k])
	}
	return b.String()
}

var pid = os.Getpid()
