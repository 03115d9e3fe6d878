package rie

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// invokeAll runs the actions at once and returns their replies in order.
func invokeAll(t *testing.T, fn *Function, action string, msgs ...string) []echoReply {
	t.Helper()
	replies := make([]echoReply, len(msgs))
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Go(func() {
			var res Result
			res, replies[i], errs[i] = invokeEcho(t, fn, action, m)
			if errs[i] == nil && res.Err != nil {
				errs[i] = res.Err
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("invocation %d: %v", i, err)
		}
	}
	return replies
}

// TestManagedOverlappingInvocations: with MaxConcurrency 3, three
// invocations are inside one bootstrap process at once. Each "meet" returns
// only once all three are in its handler (it would time out otherwise), and
// the times the function measured show every one started before every
// other ended.
func TestManagedOverlappingInvocations(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxConcurrency = 3
	fn := start(t, cfg)
	replies := invokeAll(t, fn, "meet", "3", "3", "3")
	for i, a := range replies {
		if a.PID != replies[0].PID {
			t.Fatalf("invocation %d ran in process %d, invocation 0 in %d: want one execution environment", i, a.PID, replies[0].PID)
		}
		if a.Env["AWS_LAMBDA_MAX_CONCURRENCY"] != "3" || a.Env["LAMBDA_TASK_ROOT"] != managedTaskRoot {
			t.Fatalf("environment %v", a.Env)
		}
		for j, b := range replies {
			if i != j && !(a.StartedNs < b.EndedNs) {
				t.Fatalf("invocation %d started at %d, after invocation %d ended at %d", i, a.StartedNs, j, b.EndedNs)
			}
		}
	}
}

// TestManagedQueuesBeyondMaxConcurrency: one environment takes at most
// MaxConcurrency invocations (the emulator refuses one more with "no idle
// runtimes"); the others wait for a free one, as they do for a free
// environment.
func TestManagedQueuesBeyondMaxConcurrency(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxConcurrency = 2
	fn := start(t, cfg)
	msgs := make([]string, 6)
	for i := range msgs {
		msgs[i] = "2" // pairs meet
	}
	replies := invokeAll(t, fn, "meet", msgs...)
	for i, r := range replies {
		if r.PID != replies[0].PID {
			t.Fatalf("invocation %d: process %d, want %d", i, r.PID, replies[0].PID)
		}
	}
}

// TestManagedTimeoutKeepsTheRuntime: in managed-instances mode a timed-out
// invocation is reported (ErrTimeout) but its runtime is not stopped, as
// on Lambda Managed Instances; handler errors are still function errors.
func TestManagedTimeoutKeepsTheRuntime(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxConcurrency = 2
	cfg.Timeout = time.Second
	fn := start(t, cfg)
	_, before, err := invokeEcho(t, fn, "echo", "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := invokeEcho(t, fn, "hang", ""); !errors.Is(err, ErrTimeout) {
		t.Fatalf("hang: %v, want ErrTimeout", err)
	}
	res, _, err := invokeEcho(t, fn, "error", "boom")
	if err != nil || res.Err == nil || res.Err.Type != "echoError" {
		t.Fatalf("error: %+v %v", res, err)
	}
	_, after, err := invokeEcho(t, fn, "echo", "b")
	if err != nil {
		t.Fatal(err)
	}
	if after.PID != before.PID {
		t.Fatalf("process %d after the timeout, %d before: the runtime was restarted", after.PID, before.PID)
	}
}

// TestManagedRuntimeExit: the bootstrap exiting mid-invocation is ErrExited;
// the emulator of that mode exits with it, and the next invocation starts a
// new one.
func TestManagedRuntimeExit(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxConcurrency = 2
	fn := start(t, cfg)
	_, before, err := invokeEcho(t, fn, "echo", "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := invokeEcho(t, fn, "exit", ""); !errors.Is(err, ErrExited) {
		t.Fatalf("exit: %v, want ErrExited", err)
	}
	<-fn.instances[0].exited // the emulator goes down with its runtime
	_, after, err := invokeEcho(t, fn, "echo", "b")
	if err != nil {
		t.Fatal(err)
	}
	if after.PID == before.PID {
		t.Fatal("same process after the runtime exited")
	}
}

func TestManagedConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Config)
	}{
		{"negative", func(c *Config) { c.MaxConcurrency = -1 }},
		{"binary not named bootstrap", func(c *Config) { c.MaxConcurrency = 2; c.Binary = rieBinary }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.edit(&cfg)
			if fn, err := Start(t.Context(), cfg); err == nil {
				fn.Close()
				t.Fatalf("Start accepted %+v", cfg)
			}
		})
	}
}

// TestManagedInitError: the mode inits at start; a failed init brings the
// emulator down, so Start or the first Invoke fails: nothing is served.
func TestManagedInitError(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxConcurrency = 2
	cfg.Env["ECHO_INIT"] = "error"
	fn, err := Start(t.Context(), cfg)
	if err != nil {
		return // the emulator was gone before it listened
	}
	defer fn.Close()
	res, _, err := invokeEcho(t, fn, "echo", "a")
	if err == nil {
		t.Fatalf("an invocation succeeded after a failed init: %+v", res)
	}
}
