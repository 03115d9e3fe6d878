package main

import (
	"fmt"
	"testing"
	"time"

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
