package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/internal/benchdata"

	"github.com/idemlambda/idemlambda/tools/internal/redisserver"
)

// TestRedisSidesRoundTrips runs both Redis sides against the bench's own
// redis-server and checks what make bench reports for them: 2 round trips
// per new key and 1 per replay (once the server knows idemlambda's scripts),
// every invocation answered with the result.
func TestRedisSidesRoundTrips(t *testing.T) {
	rs, err := redisserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	payload := benchdata.JSON(20480, 1)
	sides := []interface {
		impl
		counted
	}{&oursRedis{newRedisSide(rs.Addr)}, &floorRedis{newRedisSide(rs.Addr)}}
	for _, side := range sides {
		t.Run(side.name(), func(t *testing.T) {
			base := spec{workers: 2, dur: time.Hour, minOps: 40, maxOps: 40, payload: payload}
			warm := base
			warm.scenario, warm.keys = "replay", []string{"warm-" + side.name()}
			if err := side.seed(t.Context(), warm); err != nil { // teaches the server the scripts
				t.Fatal(err)
			}
			for _, tt := range []struct {
				scenario string
				want     int64
			}{{"new", 2}, {"replay", 1}} {
				s := base
				s.scenario, s.prefix = tt.scenario, fmt.Sprintf("t-%s", side.name())
				if tt.scenario == "replay" {
					s.keys = []string{"r1-" + side.name(), "r2-" + side.name()}
					if err := side.seed(t.Context(), s); err != nil {
						t.Fatal(err)
					}
				}
				side.trips().Store(0)
				out, err := side.run(t.Context(), s)
				if err != nil || out.errors != 0 || len(out.lat) != s.maxOps {
					t.Fatalf("%s: run = %d ok, %d failed (%s), %v", tt.scenario, len(out.lat), out.errors, out.firstErr, err)
				}
				if got := side.trips().Load(); got != tt.want*int64(s.maxOps) {
					t.Fatalf("%s: %d round trips for %d invocations, want %d each", tt.scenario, got, s.maxOps, tt.want)
				}
			}
		})
	}
}

// TestPowertoolsRedisRoundTrips runs powertools-ts-redis (driver.mjs on Node)
// against the bench's redis-server and checks the calls its driver reports
// against the server's own count (INFO commandstats, whose GET, SET and DEL
// only this side sends here): Powertools' cache layer sends SET NX and SET for
// a new key, SET NX and GET for a replay.
func TestPowertoolsRedisRoundTrips(t *testing.T) {
	t.Chdir("../..") // the driver's paths are from the repository root
	needPowertools(t, "@aws-lambda-powertools/idempotency")
	rs, err := redisserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	side, err := startPowertoolsRedis(rs.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(side.close)
	file := filepath.Join(t.TempDir(), "payload.json")
	payload := benchdata.JSON(20480, 1)
	if err := os.WriteFile(file, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		scenario string
		want     int64
	}{{"new", 2}, {"replay", 2}} {
		s := spec{scenario: tt.scenario, workers: 2, dur: time.Hour, minOps: 40, maxOps: 40, payload: payload, file: file, prefix: "t"}
		if tt.scenario == "replay" {
			s.keys = []string{"r1", "r2"}
			if err := side.seed(t.Context(), s); err != nil {
				t.Fatal(err)
			}
		}
		before := serverCalls(t, side.admin)
		side.trips().Store(0)
		out, err := side.run(t.Context(), s)
		if err != nil || out.errors != 0 || len(out.lat) != s.maxOps {
			t.Fatalf("%s: run = %d ok, %d failed (%s), %v", tt.scenario, len(out.lat), out.errors, out.firstErr, err)
		}
		got := side.trips().Load()
		if server := serverCalls(t, side.admin) - before; got != server {
			t.Fatalf("%s: the driver counted %d commands, the server %d", tt.scenario, got, server)
		}
		if got != tt.want*int64(s.maxOps) {
			t.Fatalf("%s: %d round trips for %d invocations, want %d each", tt.scenario, got, s.maxOps, tt.want)
		}
	}
}

// serverCalls is the number of GET, SET and DEL commands the server ran.
func serverCalls(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	info, err := c.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(info, "\n") {
		for _, name := range []string{"get", "set", "del"} {
			rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+name+":calls=")
			if !ok {
				continue
			}
			calls, _, _ := strings.Cut(rest, ",")
			v, err := strconv.ParseInt(calls, 10, 64)
			if err != nil {
				t.Fatalf("INFO commandstats: %q", line)
			}
			n += v
		}
	}
	return n
}
