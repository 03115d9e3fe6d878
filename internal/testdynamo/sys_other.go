//go:build !linux

package testdynamo

import "syscall"

// sysProcAttr: only Linux can tie the server's life to ours; elsewhere Main
// stops it.
func sysProcAttr() *syscall.SysProcAttr { return nil }
