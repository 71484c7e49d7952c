//go:build !linux

package dendrite

import (
	"context"
	"errors"
	"os"
	"syscall"
)

var errPlatform = errors.New("dendrite: the test harness runs on Linux only")

func platformSupported() error { return errPlatform }

func lockFile(context.Context, string) (func(), error) { return nil, errPlatform }

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(pid int, sig syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Signal(sig)
}
