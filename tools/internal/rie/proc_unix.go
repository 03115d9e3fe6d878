//go:build unix

package rie

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup puts the emulator in a process group of its own, so that
// killProcessGroup also reaches it, and a Ctrl-C at the terminal reaches only
// this process, which then stops the emulators in order. On Linux the
// emulator also gets SIGTERM if this process dies without stopping it
// (killed, a broken stdout pipe), so no emulator outlives it.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = sysProcAttr()
}

// killProcessGroup kills the emulator and every process it started.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}

// terminate asks the emulator to shut down: it kills its runtime and exits.
func terminate(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
}
