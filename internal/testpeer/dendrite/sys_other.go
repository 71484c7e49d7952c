//go:build !linux

package dendrite

import (
	"context"
	"errors"
)

var errPlatform = errors.New("dendrite: the test harness runs on Linux only")

func lockFile(context.Context, string) (func(), error) { return nil, errPlatform }
