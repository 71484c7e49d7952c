// Package main is switchboard-test: switchboard with the test module wired in, for the
// end-to-end and kill -9 crash tests, and the no-op module for the ingest benchmark. It is never shipped.
package main

import (
	"os"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/daemon"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
)

var modules = []daemon.ModuleSpec{{
	ID: testmodule.ID,
	New: func(section config.ModuleConfig, deps daemon.Deps) (appservice.Module, error) {
		var cfg testmodule.Config
		if err := section.Decode(&cfg); err != nil {
			return nil, err
		}
		return testmodule.New(cfg, deps.Store), nil
	},
}, {
	ID: testmodule.NoopID,
	New: func(section config.ModuleConfig, _ daemon.Deps) (appservice.Module, error) {
		var cfg testmodule.NoopConfig
		if err := section.Decode(&cfg); err != nil {
			return nil, err
		}
		return testmodule.NewNoop(cfg), nil
	},
}}

func main() {
	os.Exit(daemon.Main("test", modules, os.Args[1:], os.Stdout, os.Stderr))
}
