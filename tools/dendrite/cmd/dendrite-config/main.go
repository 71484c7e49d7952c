// Package main is dendrite-config, which patches, in place, a Dendrite config file written by
// generate-config, so that Switchboard's test harness and demo script need neither yq nor
// python.
//
//	generate-config -ci -dir DATA -server localhost > dendrite.yaml
//	dendrite-config -appservice registration.yaml -private-key matrix_key.pem dendrite.yaml
//
// Paths given to -appservice and -private-key are made absolute. The registration shared
// secret is read from the environment variable DENDRITE_REGISTRATION_SHARED_SECRET (when
// set) so that it never shows up in a process list. Key order and comments of the file are
// kept; the file is rewritten with mode 0600 because it holds secrets.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// secretEnv names the environment variable that carries client_api.registration_shared_secret.
const secretEnv = "DENDRITE_REGISTRATION_SHARED_SECRET"

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dendrite-config:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("dendrite-config", flag.ContinueOnError)
	var appservices, sets listFlag
	fs.Var(&appservices, "appservice", "application service registration `file` for app_service_api.config_files (repeatable; replaces the list)")
	privateKey := fs.String("private-key", "", "`path` of the Ed25519 signing key for global.private_key")
	logLevel := fs.String("log-level", "", "`level` for every entry of logging (trace, debug, info, warn, error)")
	fs.Var(&sets, "set", "`key.path=value` to set, value in YAML syntax, list items by index (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: dendrite-config [flags] dendrite.yaml\n\n"+
			"Patches a Dendrite config file in place. The environment variable %s,\n"+
			"when set, becomes client_api.registration_shared_secret.\n\n", secretEnv)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("expected exactly one config file")
	}
	path := fs.Arg(0)

	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("failed to read config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("failed to parse %s: %w", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s: top level is not a mapping", path)
	}
	root := doc.Content[0]

	if len(appservices) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, f := range appservices {
			abs, err := filepath.Abs(f)
			if err != nil {
				return fmt.Errorf("failed to resolve registration file %q: %w", f, err)
			}
			seq.Content = append(seq.Content, stringNode(abs))
		}
		if err := setPath(root, []string{"app_service_api", "config_files"}, seq); err != nil {
			return err
		}
	}
	if *privateKey != "" {
		abs, err := filepath.Abs(*privateKey)
		if err != nil {
			return fmt.Errorf("failed to resolve private key %q: %w", *privateKey, err)
		}
		if err := setPath(root, []string{"global", "private_key"}, stringNode(abs)); err != nil {
			return err
		}
	}
	if secret, ok := os.LookupEnv(secretEnv); ok {
		if err := setPath(root, []string{"client_api", "registration_shared_secret"}, stringNode(secret)); err != nil {
			return err
		}
	}
	if *logLevel != "" {
		logging := lookup(root, "logging")
		if logging == nil || logging.Kind != yaml.SequenceNode {
			return errors.New("logging: not a list")
		}
		for i := range logging.Content {
			if err := setPath(logging, []string{strconv.Itoa(i), "level"}, stringNode(*logLevel)); err != nil {
				return err
			}
		}
	}
	for _, s := range sets {
		key, value, ok := strings.Cut(s, "=")
		if !ok || key == "" {
			return fmt.Errorf("-set %q: want key.path=value", s)
		}
		var v yaml.Node
		if err := yaml.Unmarshal([]byte(value), &v); err != nil {
			return fmt.Errorf("-set %s: failed to parse value: %w", key, err)
		}
		val := stringNode("")
		if len(v.Content) == 1 {
			val = v.Content[0]
		}
		if err := setPath(root, strings.Split(key, "."), val); err != nil {
			return err
		}
	}

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("failed to encode config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("failed to encode config: %w", err)
	}
	return writeFile(path, buf.Bytes())
}

func stringNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

// lookup returns the value of key in mapping m, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setPath sets the value at keys below n, creating missing mappings on the way.
func setPath(n *yaml.Node, keys []string, val *yaml.Node) error {
	for depth, key := range keys {
		last := depth == len(keys)-1
		where := strings.Join(keys[:depth+1], ".")
		switch n.Kind {
		case yaml.MappingNode:
			next := lookup(n, key)
			if next == nil {
				next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
				n.Content = append(n.Content, stringNode(key), next)
			}
			if last {
				*next = *val
				return nil
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(n.Content) {
				return fmt.Errorf("%s: no such list item", where)
			}
			if last {
				n.Content[i] = val
				return nil
			}
			n = n.Content[i]
		default:
			return fmt.Errorf("%s: parent is neither a mapping nor a list", where)
		}
	}
	return errors.New("empty key path")
}

// writeFile replaces path atomically with data, mode 0600.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dendrite-config-*")
	if err != nil {
		return fmt.Errorf("failed to write config: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to write config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("failed to write config: %w", err)
	}
	return nil
}
