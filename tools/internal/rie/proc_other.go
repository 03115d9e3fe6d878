//go:build !unix

package rie

import "os/exec"

func ownProcessGroup(*exec.Cmd) {}

func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

func terminate(cmd *exec.Cmd) { killProcessGroup(cmd) }
