//go:build !linux

package testredis

import "syscall"

// sysProcAttr: only Linux can tie the server's life to ours; elsewhere Main
// stops it.
func sysProcAttr() *syscall.SysProcAttr { return nil }
