// Package main is the switchboard command. It runs the Switchboard Matrix application
// service with its bridges and bots. Flags: -c config, -r registration, -g generate the
// registration, -e print the example config.
package main

import (
	"os"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/case116117"
	"github.com/switchboard-matrix/switchboard/bridges/email"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi"
	"github.com/switchboard-matrix/switchboard/bridges/sip"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/daemon"
)

// Version and Commit are set at build time (scripts/package) with
// -ldflags "-X main.Version=… -X main.Commit=…".
var (
	Version = "0.1.0-dev"
	Commit  = "" // the git commit, "+modified" when the tree had changes
)

// modules is the explicit list of bridges and bots this binary can host; each is enabled by
// its section under modules: in the config. The management bot is always on.
var modules = []daemon.ModuleSpec{{
	ID: xmpp.ID,
	New: func(section config.ModuleConfig, _ daemon.Deps) (appservice.Module, error) {
		cfg, err := xmpp.ParseConfig(section)
		if err != nil {
			return nil, err
		}
		return xmpp.New(cfg)
	},
}, {
	ID: email.ID,
	New: func(section config.ModuleConfig, _ daemon.Deps) (appservice.Module, error) {
		cfg, err := email.ParseConfig(section)
		if err != nil {
			return nil, err
		}
		return email.New(cfg)
	},
}, {
	ID: sip.ID,
	New: func(section config.ModuleConfig, _ daemon.Deps) (appservice.Module, error) {
		cfg, err := sip.ParseConfig(section)
		if err != nil {
			return nil, err
		}
		return sip.New(cfg)
	},
}, {
	ID: jitsi.ID,
	New: func(section config.ModuleConfig, deps daemon.Deps) (appservice.Module, error) {
		cfg, err := jitsi.ParseConfig(section, deps.Config.Homeserver.Address)
		if err != nil {
			return nil, err
		}
		return jitsi.New(cfg)
	},
}, {
	ID: case116117.ID,
	New: func(section config.ModuleConfig, _ daemon.Deps) (appservice.Module, error) {
		cfg, err := case116117.ParseConfig(section)
		if err != nil {
			return nil, err
		}
		return case116117.New(cfg)
	},
}}

func main() {
	version := Version
	if Commit != "" {
		version += " (commit " + Commit + ")"
	}
	os.Exit(daemon.Main(version, modules, os.Args[1:], os.Stdout, os.Stderr))
}
