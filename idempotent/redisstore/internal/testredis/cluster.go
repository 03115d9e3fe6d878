package testredis

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster starts a private one-node Redis Cluster (cluster mode on, all
// 16384 slots on the one node) for tb, stopped when tb ends, and returns a
// cluster client of it. Slots, hash tags, MOVED handling and the cluster
// client's script routing all apply, as on MemoryDB or ElastiCache with
// cluster mode; only resharding is missing.
func Cluster(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("testredis: redis-server is not installed: run `make redis-install`: %v", err)
	}
	dir := tb.TempDir()
	var addr string
	var cmd *exec.Cmd
	var exited <-chan struct{}
	for range 3 {
		if addr, cmd, exited, err = launch(bin, dir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"); err == nil {
			break
		}
	}
	if err != nil {
		tb.Fatalf("testredis: %v", err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })

	ctx := context.Background()
	node := redis.NewClient(&redis.Options{Addr: addr})
	defer node.Close()
	if err := node.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		tb.Fatalf("testredis: CLUSTER ADDSLOTSRANGE: %v", err)
	}
	deadline := time.Now().Add(startTimeout)
	for {
		info, err := node.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testredis: cluster not ok after %s: %v %s", startTimeout, err, info)
		}
		time.Sleep(25 * time.Millisecond)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}
