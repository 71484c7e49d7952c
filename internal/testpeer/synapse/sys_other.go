//go:build !linux

package synapse

import (
	"context"
	"errors"
)

var errPlatform = errors.New("synapse: the test harness runs on Linux only")

func lockFile(context.Context, string) (func(), error) { return nil, errPlatform }
