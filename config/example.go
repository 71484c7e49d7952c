package config

import _ "embed"

// Example is a commented config file documenting every key, with values that work for a
// local homeserver at http://127.0.0.1:8008 with the server name "localhost". It is what
// "switchboard -e" writes.
//
//go:embed example.yaml
var Example []byte
