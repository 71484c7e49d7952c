package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// ErrModuleConfig is wrapped by every error of [ModuleConfig.Decode].
var ErrModuleConfig = errors.New("config: invalid module section")

const (
	enabledKey     = "enabled"
	permissionsKey = "permissions"
)

// ModuleConfig is one module's section under "modules". Enabled and Permissions are common
// to every module; the rest of the section is kept as YAML for the module to decode with
// [ModuleConfig.Decode].
//
// A module's tests can build one with yaml.Unmarshal([]byte("enabled: true\nkey: value"), &m).
type ModuleConfig struct {
	// Enabled turns the module on. Default false.
	Enabled bool
	// Permissions are the Matrix users who may use the module (the core refuses everything
	// else from them before the module sees it): user IDs, "*:<domain>" or "*".
	// Default: every user of homeserver.domain.
	Permissions []string
	// options is the section without the "enabled" key: a mapping node, or nil when empty.
	options *yaml.Node
	// key is the section's key path ("modules.<id>") for error messages; set by Parse.
	key string
}

// UnmarshalYAML keeps the section as a node. Problems are returned as a YAML type error with
// their line, so that decoding of the whole file goes on.
func (m *ModuleConfig) UnmarshalYAML(n *yaml.Node) error {
	*m = ModuleConfig{}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a mapping with at least \"enabled\"", n.Line)}}
	}
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: n.Tag, Style: n.Style, Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == enabledKey {
			if err := v.Decode(&m.Enabled); err != nil {
				return err
			}
			continue
		}
		if k.Kind == yaml.ScalarNode && k.Value == permissionsKey {
			if err := v.Decode(&m.Permissions); err != nil {
				return err
			}
			continue
		}
		rest.Content = append(rest.Content, k, v)
	}
	if len(rest.Content) > 0 {
		m.options = rest
	}
	return nil
}

// MarshalYAML writes the section back, "enabled" first.
func (m ModuleConfig) MarshalYAML() (any, error) {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	out.Content = append(out.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: enabledKey},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(m.Enabled)})
	if len(m.Permissions) > 0 {
		list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, p := range m.Permissions {
			list.Content = append(list.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p})
		}
		out.Content = append(out.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: permissionsKey}, list)
	}
	if m.options != nil {
		out.Content = append(out.Content, m.options.Content...)
	}
	return out, nil
}

// HasOptions reports whether the section holds keys besides "enabled" and "permissions".
func (m ModuleConfig) HasOptions() bool { return m.options != nil }

// Decode decodes the section, without "enabled" and "permissions", into v (a pointer to the
// module's options struct). Decoding is strict: a key that v has no field for is an error.
// The error is an [*Errors] (errors.As finds it) whose problems name the full key path and
// the line in the config file, without Go type names; it matches [ErrModuleConfig] and
// [ErrInvalid]. An empty section leaves v untouched, so v may carry the module's defaults.
func (m ModuleConfig) Decode(v any) error {
	if m.options == nil {
		return nil
	}
	msgs, err := decodeStrict(m.options, v)
	if err != nil {
		key := m.key
		if key == "" {
			key = "module section"
		}
		return fmt.Errorf("%w: %s: %w", ErrModuleConfig, key, err)
	}
	if len(msgs) == 0 {
		return nil
	}
	idx := newKeyIndex(m.options, m.key)
	idx.types = typeNames(v)
	errs := &Errors{}
	for _, msg := range msgs {
		errs.Problems = append(errs.Problems, idx.problem(msg))
	}
	return &moduleError{errs}
}

// moduleError is the error of [ModuleConfig.Decode].
type moduleError struct{ errs *Errors }

func (e *moduleError) Error() string { return e.errs.Error() }

func (e *moduleError) Unwrap() error { return e.errs }

func (e *moduleError) Is(target error) bool { return target == ErrModuleConfig }

// decodeStrict decodes the tree n into v, rejecting unknown keys. yaml.Node.Decode cannot
// reject them; only a Decoder can, so the tree is encoded again and decoded strictly. It
// returns the messages of yaml.v3's type error with their lines mapped back to n's, or err
// when decoding failed as a whole.
func decodeStrict(n *yaml.Node, v any) (msgs []string, err error) {
	opts, err := resolveAliases(n, 0, new(int))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(opts); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	var copied yaml.Node
	if err := yaml.Unmarshal(buf.Bytes(), &copied); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	err = dec.Decode(v)
	var te *yaml.TypeError
	if err == nil || errors.Is(err, io.EOF) {
		return nil, nil
	} else if !errors.As(err, &te) {
		return nil, err
	}
	lines := map[int]int{}
	mapLines(&copied, opts, lines)
	msgs = make([]string, len(te.Errors))
	for i, msg := range te.Errors {
		msgs[i] = remapLine(msg, lines)
	}
	return msgs, nil
}

// Limits on the copy made by resolveAliases, against "billion laughs" documents.
const (
	maxAliasDepth = 64
	maxAliasNodes = 100_000
)

// errTooLarge is returned when a section expands beyond maxAliasNodes.
var errTooLarge = errors.New("section too large or too deeply nested after expanding aliases")

// resolveAliases copies n, replacing every alias by a copy of its anchored node, so that the
// copy can be encoded alone even when an alias points to an anchor outside the section.
func resolveAliases(n *yaml.Node, depth int, count *int) (*yaml.Node, error) {
	*count++
	if depth > maxAliasDepth || *count > maxAliasNodes {
		return nil, errTooLarge
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return resolveAliases(n.Alias, depth+1, count)
	}
	c := *n
	c.Anchor = ""
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, sub := range n.Content {
		r, err := resolveAliases(sub, depth+1, count)
		if err != nil {
			return nil, err
		}
		c.Content[i] = r
	}
	return &c, nil
}

// mapLines records, for nodes of two trees of the same shape, the line in b of each line in a.
func mapLines(a, b *yaml.Node, lines map[int]int) {
	if a == nil || b == nil {
		return
	}
	if a.Kind == yaml.DocumentNode && len(a.Content) == 1 {
		a = a.Content[0]
	}
	// Children first: a collection shares its line with its first entry, which wins.
	if a.Kind != yaml.AliasNode && b.Kind != yaml.AliasNode && len(a.Content) == len(b.Content) {
		for i := range a.Content {
			mapLines(a.Content[i], b.Content[i], lines)
		}
	}
	if _, ok := lines[a.Line]; !ok {
		lines[a.Line] = b.Line
	}
}

var lineRE = regexp.MustCompile(`^line (\d+): `)

// remapLine rewrites the "line N: " prefix of a yaml.v3 message through lines.
func remapLine(msg string, lines map[int]int) string {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	n, _ := strconv.Atoi(m[1])
	if orig, ok := lines[n]; ok {
		n = orig
	}
	return fmt.Sprintf("line %d: %s", n, msg[len(m[0]):])
}
