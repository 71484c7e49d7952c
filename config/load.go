package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the config file at path and returns it like [Parse] does.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: failed to read %s: %w", path, err)
	}
	return Parse(data)
}

// Parse decodes a YAML config, fills the defaults and validates it. Decoding is strict: a key
// that is not part of the config is a problem, reported with its key path and line. When
// anything is wrong, the error is an [*Errors] listing every problem and the Config is nil.
func Parse(data []byte) (*Config, error) {
	c := &Config{}
	c.presetBools()
	errs := &Errors{}
	if !decode(data, c, errs) {
		return nil, errs
	}
	c.Defaults()
	for k, m := range c.Modules {
		m.key = "modules." + k
		c.Modules[k] = m
	}
	if err := c.Validate(); err != nil {
		var verrs *Errors
		if errors.As(err, &verrs) {
			for _, p := range verrs.Problems {
				if !errs.Has(p.Key) {
					errs.Problems = append(errs.Problems, p)
				}
			}
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode decodes data into c, recording every decoding problem in errs. It returns false
// when the file as a whole could not be decoded, so that validating c would be noise.
func decode(data []byte, c *Config, errs *Errors) bool {
	var root yaml.Node
	nodes := yaml.NewDecoder(bytes.NewReader(data))
	if err := nodes.Decode(&root); err != nil {
		if !errors.Is(err, io.EOF) {
			errs.Add("", err.Error())
			return false
		}
		return true
	}
	var extra yaml.Node
	if err := nodes.Decode(&extra); !errors.Is(err, io.EOF) {
		errs.Add("", "want a single YAML document")
		return false
	}
	if doc := documentContent(&root); doc == nil || (doc.Kind == yaml.ScalarNode && doc.Tag == "!!null") {
		return true
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(c)
	if err == nil {
		return true
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		errs.Add("", err.Error())
		return false
	}
	idx := newKeyIndex(&root)
	for _, msg := range te.Errors {
		errs.Problems = append(errs.Problems, idx.problem(msg))
	}
	return true
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

// keyIndex maps lines of the file to the key paths found on them, to turn yaml.v3's
// "line N: …" messages into problems with key paths.
type keyIndex struct {
	// keys maps a line and a key name to the key's path: "field X not found" names the key.
	keys map[lineKey]string
	// values maps a line to the paths of the values (leaves first) that start on it.
	values map[int][]string
}

type lineKey struct {
	line int
	name string
}

func newKeyIndex(root *yaml.Node) *keyIndex {
	idx := &keyIndex{keys: map[lineKey]string{}, values: map[int][]string{}}
	idx.walk(documentContent(root), "", 0)
	return idx
}

func (idx *keyIndex) walk(n *yaml.Node, path string, depth int) {
	if n == nil || depth > 100 {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinKey(path, k.Value)
			idx.keys[lineKey{k.Line, k.Value}] = p
			idx.walk(v, p, depth+1)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			idx.walk(v, path+"["+strconv.Itoa(i)+"]", depth+1)
		}
	}
	// A block mapping or sequence "starts" on the line of its first entry, which belongs
	// to that entry; only scalars and flow collections are recorded on their line.
	if path != "" && (n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode || n.Style&yaml.FlowStyle != 0) {
		idx.values[n.Line] = append(idx.values[n.Line], path)
	}
}

func joinKey(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

var (
	yamlLineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlNotFoundRE = regexp.MustCompile(`^field (.*) not found in type \S+$`)
)

// problem turns one yaml.v3 type error message into a problem with a key path.
func (idx *keyIndex) problem(msg string) Problem {
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return Problem{Message: msg}
	}
	line, _ := strconv.Atoi(m[1])
	text := m[2]
	if nf := yamlNotFoundRE.FindStringSubmatch(text); nf != nil {
		key, ok := idx.keys[lineKey{line, nf[1]}]
		if !ok {
			key = nf[1]
		}
		return Problem{Key: key, Message: fmt.Sprintf("unknown key (line %d)", line)}
	}
	return Problem{Key: commonPrefix(idx.values[line]), Message: fmt.Sprintf("%s (line %d)", text, line)}
}

// commonPrefix is the longest key path that every one of keys is part of; for the usual
// one key per line it is that key.
func commonPrefix(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	prefix := keys[0]
	for _, k := range keys[1:] {
		n := 0
		for n < len(prefix) && n < len(k) && prefix[n] == k[n] {
			n++
		}
		prefix = prefix[:n]
	}
	for prefix != "" && !isPathPrefixOfAll(prefix, keys) {
		prefix = prefix[:max(strings.LastIndexAny(prefix, ".["), 0)]
	}
	return prefix
}

// isPathPrefixOfAll reports whether prefix ends at a key boundary in every one of keys.
func isPathPrefixOfAll(prefix string, keys []string) bool {
	for _, k := range keys {
		if len(k) > len(prefix) && k[len(prefix)] != '.' && k[len(prefix)] != '[' {
			return false
		}
	}
	return true
}
