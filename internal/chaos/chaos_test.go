package chaos_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/internal/chaos"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// TestChaos runs a seconds-long profile with every fault kind, crashing,
// slow and failing invocations and duplicates, and requires zero invariant
// violations. make chaos runs the long profile.
func TestChaos(t *testing.T) {
	client := testdynamo.Client(t)
	table := testdynamo.NewTable(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := chaos.Run(ctx, chaos.Target{Endpoint: testdynamo.Endpoint(t), Table: table}, chaos.Profile{
		Seed:         1,
		Clients:      4,
		OpsPerClient: 12,
		Containers:   3,
		Faults:       chaos.DefaultFaults(),
		Crash:        0.08,
		Slow:         0.08,
		Fail:         0.08,
		Dup:          0.15,
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
	if r.Faults.Faults() == 0 {
		t.Error("no fault was injected")
	}
}
