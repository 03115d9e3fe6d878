//go:build unix

package rie

import (
	"errors"
	"syscall"
	"testing"
)

// TestCloseEndsTheRuntime: Close leaves no bootstrap behind.
func TestCloseEndsTheRuntime(t *testing.T) {
	fn := start(t, testConfig(t))
	_, reply, err := invokeEcho(t, fn, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(reply.PID, 0); err != nil {
		t.Fatalf("the runtime (pid %d) is not running before Close: %v", reply.PID, err)
	}
	if err := fn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(reply.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("after Close, signalling the runtime (pid %d) gives %v, want ESRCH: it outlived its emulator", reply.PID, err)
	}
}
