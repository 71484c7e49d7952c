//go:build !linux

package refucrm

import (
	"context"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// lockFile is not supported off Linux, where the reference UCRM does not run.
func lockFile(context.Context, string) (func(), error) { return nil, peerproc.Supported() }
