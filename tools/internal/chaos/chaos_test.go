package chaos_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
	"github.com/idemlambda/idemlambda/tools/internal/chaos"
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
		// Few attempts while faults are on, so that some operations are
		// set aside and finish in the drain phase.
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
	if r.Faults.Faults() == 0 {
		t.Error("no fault was injected")
	}
}

// forgetfulStore breaks the contract on purpose: every Acquire succeeds,
// as if the conditional write had no condition.
type forgetfulStore struct{ idempotent.Store }

func (s forgetfulStore) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	existing, acquired, err := s.Store.Acquire(ctx, rec, now)
	if err != nil || acquired {
		return existing, acquired, err
	}
	// Take the key anyway: seen from far in the future every record is
	// expired, so the conditional write replaces it.
	_, _, err = s.Store.Acquire(ctx, rec, now.Add(1000*time.Hour))
	return nil, err == nil, err
}

// TestChaosDetectsBrokenStore runs the workload, without faults, on a store
// whose Acquire never refuses: the checker must report duplicate
// completions and divergent answers.
func TestChaosDetectsBrokenStore(t *testing.T) {
	client := testdynamo.Client(t)
	table := testdynamo.NewTable(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := chaos.Run(ctx, chaos.Target{Endpoint: testdynamo.Endpoint(t), Table: table}, chaos.Profile{
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
