//go:build !linux

package rie

func holdAFunction() {}
