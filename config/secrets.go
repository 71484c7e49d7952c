package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Secrets can be kept out of the config file. For every secret key "k" (see [IsSecretKey]):
//
//   - "k_file: /path" in the file reads the value from that file (one trailing newline is
//     dropped, as editors and "echo" add one);
//   - the environment variable SWITCHBOARD_<KEY_PATH> (see [EnvName]) sets the value, and
//     SWITCHBOARD_<KEY_PATH>_FILE reads it from a file (for systemd's credentials).
//
// Precedence: the environment variable, then its _FILE variable, then "k_file", then "k".
// "k" and "k_file" together in the file are an error. Empty variables and an empty "k_file"
// count as unset.
// A variable only applies where the key's parent mapping is in the file (an empty mapping
// such as "uvs: {}" is enough), except for the core's database.uri,
// encryption.pickle_key and provisioning.shared_secret, which always apply.
const (
	// EnvPrefix starts the name of every environment variable read by [Parse].
	EnvPrefix = "SWITCHBOARD_"
	// FileSuffix turns a secret key into the key of its file form.
	FileSuffix    = "_file"
	envFileSuffix = "_FILE"
)

// secretNames are the keys, at any depth below the top level, whose values are secrets.
var secretNames = []string{
	"password", "secret", "auth_token", "token", "access_token", "app_secret",
	"client_secret", "shared_secret", "api_key", "pickle_key",
}

// secretPaths are the core's secret keys, known by their full path: their environment
// variables apply even when their section is missing from the file.
var secretPaths = []string{"database.uri", "encryption.pickle_key", "provisioning.shared_secret"}

// IsSecretKey reports whether the key at path (such as "modules.xmpp.component.secret" or
// "database.uri") holds a secret, so that it accepts the _file and environment forms.
func IsSecretKey(path string) bool {
	if slices.Contains(secretPaths, path) {
		return true
	}
	parent, name := splitLast(path)
	return parent != "" && slices.Contains(secretNames, name)
}

// EnvName is the environment variable of the key at path: [EnvPrefix] followed by the
// path in upper case with every other character than letters and digits replaced by "_".
// "modules.jitsi.uvs.auth_token" is SWITCHBOARD_MODULES_JITSI_UVS_AUTH_TOKEN and
// "modules.email.mailboxes[0].imap.password" SWITCHBOARD_MODULES_EMAIL_MAILBOXES_0_IMAP_PASSWORD.
func EnvName(path string) string {
	var b strings.Builder
	b.WriteString(EnvPrefix)
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == ']':
			continue
		default:
			c = '_'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// splitLast splits "a.b.c" into "a.b" and "c".
func splitLast(path string) (parent, name string) {
	i := strings.LastIndexAny(path, ".]")
	if i < 0 {
		return "", path
	}
	if path[i] == ']' {
		return path[:i+1], ""
	}
	return path[:i], path[i+1:]
}

// secretSource reads secrets; its fields are replaced in tests.
type secretSource struct {
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)
}

var osSecrets = secretSource{lookupEnv: os.LookupEnv, readFile: readSmallFile}

// maxSecretBytes limits a secret file: a path such as /dev/zero must not hang the start.
const maxSecretBytes = 64 << 10

// readSmallFile reads a file of at most maxSecretBytes.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSecretBytes {
		return nil, fmt.Errorf("larger than %d KiB", maxSecretBytes>>10)
	}
	return data, nil
}

// applySecrets replaces the _file forms of secret keys in the tree under root (a mapping)
// by their values and applies the environment variables, recording problems in errs. It
// returns, by key path, where each value set this way came from, for messages.
func (s secretSource) applySecrets(root *yaml.Node, errs *Errors) map[string]string {
	origins := map[string]string{}
	for _, p := range secretPaths {
		if !s.envSet(p) {
			continue
		}
		parent, _ := splitLast(p)
		ensureMapping(root, parent)
	}
	s.walk(root, "", 0, errs, origins)
	return origins
}

func (s secretSource) envSet(path string) bool {
	v, ok := s.lookupEnv(EnvName(path))
	f, fok := s.lookupEnv(EnvName(path) + envFileSuffix)
	return ok && v != "" || fok && f != ""
}

// ensureMapping makes sure the top-level key name of root holds a mapping.
func ensureMapping(root *yaml.Node, name string) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != name {
			continue
		}
		v := root.Content[i+1]
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			*v = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: v.Line, Column: v.Column}
		}
		return
	}
	root.Content = append(root.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name},
		&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"})
}

func (s secretSource) walk(n *yaml.Node, path string, depth int, errs *Errors, origins map[string]string) {
	if n == nil || depth > 100 {
		return
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for i, v := range n.Content {
			s.walk(v, fmt.Sprintf("%s[%d]", path, i), depth+1, errs, origins)
		}
		return
	case yaml.MappingNode:
	default:
		return
	}
	// The file forms in the file.
	for i := 0; i+1 < len(n.Content); {
		k, v := n.Content[i], n.Content[i+1]
		base, isFile := strings.CutSuffix(k.Value, FileSuffix)
		key := joinKey(path, base)
		if k.Kind != yaml.ScalarNode || !isFile || !IsSecretKey(key) {
			i += 2
			continue
		}
		if v.Kind == yaml.ScalarNode && (v.Value == "" || v.Tag == "!!null") {
			n.Content = slices.Delete(n.Content, i, i+2) // empty: no file
			continue
		}
		if j := mappingIndex(n, base); j >= 0 {
			errs.Add(key, fmt.Sprintf("both %s (line %d) and %s (line %d) are set; keep one", base, n.Content[j].Line, k.Value, k.Line))
			n.Content = slices.Delete(n.Content, i, i+2)
			continue
		}
		if v.Kind != yaml.ScalarNode {
			errs.Add(joinKey(path, k.Value), fmt.Sprintf("want the path of a file holding %s (line %d)", base, k.Line))
			n.Content = slices.Delete(n.Content, i, i+2)
			continue
		}
		secret, err := s.readSecret(v.Value)
		if err != nil {
			errs.Add(joinKey(path, k.Value), fmt.Sprintf("%v (line %d)", err, k.Line))
			n.Content = slices.Delete(n.Content, i, i+2)
			continue
		}
		k.Value = base
		n.Content[i+1] = secretNode(secret, v)
		origins[key] = fmt.Sprintf("line %d, read from %s", k.Line, v.Value)
		i += 2
	}
	// The environment.
	for _, name := range secretNames {
		s.applyEnv(n, path, name, errs, origins)
	}
	for _, p := range secretPaths {
		if parent, name := splitLast(p); parent == path && !slices.Contains(secretNames, name) {
			s.applyEnv(n, path, name, errs, origins)
		}
	}
	for i := 1; i < len(n.Content); i += 2 {
		s.walk(n.Content[i], joinKey(path, n.Content[i-1].Value), depth+1, errs, origins)
	}
}

// applyEnv sets the key name of the mapping n at path from its environment variables.
func (s secretSource) applyEnv(n *yaml.Node, path, name string, errs *Errors, origins map[string]string) {
	key := joinKey(path, name)
	if !IsSecretKey(key) {
		return
	}
	env := EnvName(key)
	var secret string
	if v, ok := s.lookupEnv(env); ok && v != "" {
		secret = v
		origins[key] = "from " + env
	} else if f, ok := s.lookupEnv(env + envFileSuffix); ok && f != "" {
		var err error
		if secret, err = s.readSecret(f); err != nil {
			errs.Add(key, fmt.Sprintf("%v (from %s)", err, env+envFileSuffix))
			return
		}
		origins[key] = "read from " + f + " named by " + env + envFileSuffix
	} else {
		return
	}
	if j := mappingIndex(n, name); j >= 0 {
		n.Content[j+1] = secretNode(secret, n.Content[j+1])
		return
	}
	n.Content = append(n.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: secret})
}

// readSecret reads a secret from a file, without its trailing newline.
func (s secretSource) readSecret(path string) (string, error) {
	data, err := s.readFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("cannot read %s: %w", path, err)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if v == "" {
		return "", fmt.Errorf("the file %s is empty", path)
	}
	return v, nil
}

// secretNode is a string node holding secret at the place of old.
func secretNode(secret string, old *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: secret, Line: old.Line, Column: old.Column}
}

// mappingIndex is the index in n.Content of the key name, or -1.
func mappingIndex(n *yaml.Node, name string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == name {
			return i
		}
	}
	return -1
}
