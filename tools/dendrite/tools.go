//go:build tools

// Package dendrite pins the Dendrite homeserver that Switchboard's tests and demo run.
// It is its own module so that Dendrite's dependency versions never steer Switchboard's.
package dendrite

import (
	_ "github.com/matrix-org/dendrite/cmd/create-account"
	_ "github.com/matrix-org/dendrite/cmd/dendrite"
	_ "github.com/matrix-org/dendrite/cmd/generate-config"
	_ "github.com/matrix-org/dendrite/cmd/generate-keys"
)
