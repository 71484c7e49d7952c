//go:build !linux

package peerproc

import "context"

// LockFile is not supported off Linux, where the test peers do not run.
func LockFile(context.Context, string, string) (func(), error) { return nil, Supported() }
