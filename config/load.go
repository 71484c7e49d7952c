package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// ModuleCheck checks one module's section the way the module will when it starts (decode,
// validate, construct without I/O), so that its problems are listed together with the
// core's. c is the decoded config with its defaults; it may have problems of its own. The
// error's lines of the form "modules.<id>.<key>: message" (as [ModuleConfig.Decode] and the
// modules' Validate methods write them) become problems with that key.
type ModuleCheck func(c *Config, id string, section ModuleConfig) error

// Load reads the config file at path and returns it like [Parse] does. When the file does
// not exist, the error matches [os.ErrNotExist].
func Load(path string) (*Config, error) { return LoadChecked(path, nil) }

// LoadChecked is [Load] with [ParseChecked].
func LoadChecked(path string, check ModuleCheck) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: failed to read %s: %w", path, err)
	}
	return ParseChecked(data, check)
}

// Parse decodes a YAML config, fills the defaults and validates it. Decoding is strict: a key
// that is not part of the config is a problem, reported with its key path and line, and so
// is a key given twice. Secrets may come from files and environment variables (see
// [EnvPrefix]). When anything is wrong, the error is an [*Errors] listing every problem and
// the Config is nil.
func Parse(data []byte) (*Config, error) { return ParseChecked(data, nil) }

// ParseChecked is [Parse] that also runs check, when not nil, on every module section
// (enabled or not, in the order of the module IDs) and lists its problems with the core's.
func ParseChecked(data []byte, check ModuleCheck) (*Config, error) {
	return osSecrets.parse(data, check)
}

func (s secretSource) parse(data []byte, check ModuleCheck) (*Config, error) {
	c := &Config{}
	c.presetBools()
	errs := &Errors{}
	root, ok := parseDocument(data, errs)
	if !ok {
		return nil, errs
	}
	removeDuplicates(root, "", 0, errs)
	var origins map[string]string
	if root.Kind == yaml.MappingNode {
		origins = s.applySecrets(root, errs)
	}
	idx := newKeyIndex(root, "")
	idx.origins = origins
	idx.types = typeNames(c)
	msgs, err := decodeStrict(root, c)
	if err != nil {
		errs.Add("", err.Error())
		return nil, errs
	}
	for _, msg := range msgs {
		errs.Problems = append(errs.Problems, idx.problem(msg))
	}
	c.restoreModules(root)
	c.Defaults()
	for k, m := range c.Modules {
		m.key = "modules." + k
		c.Modules[k] = m
	}
	var verrs *Errors
	if errors.As(c.Validate(), &verrs) {
		idx.addNew(errs, verrs.Problems)
	}
	if check != nil {
		ids := make([]string, 0, len(c.Modules))
		for k := range c.Modules {
			ids = append(ids, k)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if err := check(c, id, c.Modules[id]); err != nil {
				idx.addNew(errs, moduleProblems(id, err))
			}
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseDocument parses data into a node tree and returns its content: a mapping for a
// config, an empty mapping for an empty file. It returns false when the file as a whole is
// unusable, with the problem in errs.
func parseDocument(data []byte, errs *Errors) (*yaml.Node, bool) {
	var root yaml.Node
	nodes := yaml.NewDecoder(bytes.NewReader(data))
	if err := nodes.Decode(&root); err != nil {
		if !errors.Is(err, io.EOF) {
			errs.Add("", err.Error())
			return nil, false
		}
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, true
	}
	var extra yaml.Node
	if err := nodes.Decode(&extra); !errors.Is(err, io.EOF) {
		errs.Add("", "want a single YAML document")
		return nil, false
	}
	doc := documentContent(&root)
	if doc == nil || (doc.Kind == yaml.ScalarNode && doc.Tag == "!!null") {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, true
	}
	return doc, true
}

// restoreModules points the modules' sections at the nodes of root, which carry the lines of
// the file (decoding went through a copy).
func (c *Config) restoreModules(root *yaml.Node) {
	if root.Kind != yaml.MappingNode {
		return
	}
	i := mappingIndex(root, "modules")
	if i < 0 {
		return
	}
	mods := deref(root.Content[i+1])
	if mods.Kind != yaml.MappingNode {
		return
	}
	for j := 0; j+1 < len(mods.Content); j += 2 {
		m, ok := c.Modules[mods.Content[j].Value]
		if !ok {
			continue
		}
		var orig ModuleConfig
		if orig.UnmarshalYAML(deref(mods.Content[j+1])) == nil {
			m.options = orig.options
			c.Modules[mods.Content[j].Value] = m
		}
	}
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxAliasDepth; i++ {
		n = n.Alias
	}
	return n
}

func documentContent(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return n.Content[0]
	}
	return n
}

// removeDuplicates reports every key given twice in a mapping and drops the repetitions, so
// that decoding sees the first value only and gives no further messages about the key.
func removeDuplicates(n *yaml.Node, path string, depth int, errs *Errors) {
	if n == nil || depth > 100 {
		return
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for i, v := range n.Content {
			removeDuplicates(v, fmt.Sprintf("%s[%d]", path, i), depth+1, errs)
		}
	case yaml.MappingNode:
		first := map[string]int{}
		out := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag != "!!merge" && k.Value != "<<" {
				if line, dup := first[k.Value]; dup {
					errs.Add(joinKey(path, k.Value), fmt.Sprintf("key given twice, at lines %d and %d; keep one", line, k.Line))
					continue
				}
				first[k.Value] = k.Line
			}
			out = append(out, k, v)
			removeDuplicates(v, joinKey(path, k.Value), depth+1, errs)
		}
		clear(n.Content[len(out):])
		n.Content = out
	}
}

// moduleProblems turns a module's error into problems with key paths under modules.<id>.
func moduleProblems(id string, err error) []Problem {
	var errs *Errors
	if errors.As(err, &errs) {
		return errs.Problems
	}
	prefix := "modules." + id
	var out []Problem
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, msg, ok := strings.Cut(line, ": ")
		if ok && !strings.ContainsAny(k, " \t") && (k == prefix || strings.HasPrefix(k, prefix+".") || strings.HasPrefix(k, prefix+"[")) {
			out = append(out, Problem{Key: k, Message: msg})
			continue
		}
		out = append(out, Problem{Key: prefix, Message: line})
	}
	return out
}
