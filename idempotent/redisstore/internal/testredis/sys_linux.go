package testredis

import "syscall"

// sysProcAttr kills the server when the test binary dies, even without Main.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
