// Package main is the synapsectl command, scripts/demo's helper for running Synapse: it installs the pinned
// Synapse, writes the same homeserver.yaml as the test harness (internal/testpeer/synapse)
// and registers users with the registration shared secret.
//
//	synapsectl install                         prints the virtualenv's python
//	synapsectl config -dir D -port P -registration R
//	synapsectl register -dir D -url URL -user U -password-file F
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"maunium.net/go/mautrix"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/synapse"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "synapsectl:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: synapsectl install|config|register [flags]")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	fs := flag.NewFlagSet("synapsectl "+args[0], flag.ContinueOnError)
	dir := fs.String("dir", "", "the homeserver's directory (config, keys, data)")
	switch args[0] {
	case "install":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		venv, err := synapse.Install(ctx)
		if err != nil {
			return err
		}
		fmt.Println(filepath.Join(venv, "bin", "python"))
		return nil
	case "config":
		port := fs.Int("port", 8008, "port on 127.0.0.1")
		name := fs.String("server-name", "localhost", "the Matrix server name")
		reg := fs.String("registration", "", "the appservice registration file")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dir == "" {
			return errors.New("config: -dir is required")
		}
		var regs []string
		if *reg != "" {
			regs = []string{*reg}
		}
		_, err := synapse.WriteConfig(*dir, *name, *port, regs)
		return err
	case "register":
		url := fs.String("url", "", "the homeserver's base URL")
		user := fs.String("user", "", "the localpart")
		pwFile := fs.String("password-file", "", "file holding the password (kept out of the process list)")
		admin := fs.Bool("admin", false, "register a server admin")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dir == "" || *url == "" || *user == "" || *pwFile == "" {
			return errors.New("register: -dir, -url, -user and -password-file are required")
		}
		pw, err := os.ReadFile(*pwFile)
		if err != nil {
			return err
		}
		secret, err := synapse.SharedSecret(*dir)
		if err != nil {
			return err
		}
		cli, err := synapse.RegisterWithSecret(ctx, *url, secret, *user, strings.TrimSpace(string(pw)), *admin)
		if errors.Is(err, mautrix.MUserInUse) {
			fmt.Printf("@%s already exists\n", *user)
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Printf("registered %s\n", cli.UserID)
		return nil
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
}
