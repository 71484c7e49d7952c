//go:build !linux

package peerproc

import (
	"errors"
	"syscall"
)

// Supported reports whether peers can be run here: only on Linux (process groups that die
// with the test).
func Supported() error { return errors.New("peerproc: test peers run on Linux only") }

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(int, syscall.Signal) error { return Supported() }
