package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestChaosHTTP runs chaos-http at a size CI affords (make chaos runs the
// full one): the invariants hold on every run whatever the faults hit, so
// the test can fail only on a real duplicate, divergence or lost answer.
func TestChaosHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the functions and starts the local stack")
	}
	logs := &lockedBuffer{}
	c := defaultChaosHTTP()
	c.keys, c.workers = 24, 4
	o := options{
		template:  "../../../template.yaml",
		buildDir:  t.TempDir(),
		dynalite:  "dynalite",
		region:    "us-east-1",
		params:    paramFlag{},
		instances: 2,
		logs:      logs,
	}
	r, err := runChaosHTTP(context.Background(), repoTemplate(t), o, c, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	var out strings.Builder
	r.print(&out)
	t.Log(out.String())
	if err := r.err(); err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	if r.Keys != 24 || r.Requests < 2*24 || r.APIFaults == 0 || r.Payments+r.Unanswered-r.Recovered < 24 {
		t.Fatalf("report %+v: the run did not exercise what it claims", r)
	}
}
