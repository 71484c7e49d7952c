package peerproc

import "errors"

// ErrAddrInUse is wrapped by a peer's start error when a port it was to listen on is taken.
var ErrAddrInUse = errors.New("address already in use")

// StartOnFreePorts runs attempt (pick free ports, write the config, start) up to three
// times while it fails with an error wrapping ErrAddrInUse: another process may take a
// probed free port before the peer binds it. With fixed ports it runs once.
func StartOnFreePorts(fixed bool, attempt func() error) error {
	for n := 1; ; n++ {
		err := attempt()
		if err == nil || fixed || n == 3 || !errors.Is(err, ErrAddrInUse) {
			return err
		}
	}
}
