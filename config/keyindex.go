package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// keyIndex maps lines of the file to the key paths found on them, to turn yaml.v3's
// "line N: …" messages into problems with key paths, and key paths to their lines, to add
// the line to problems found later.
type keyIndex struct {
	// keys maps a line and a key name to the key's path: "field X not found" names the key.
	keys map[lineKey]string
	// values maps a line to the values (leaves first) that start on it.
	values map[int][]valueAt
	// lines maps a key path to the line of its key (or list item).
	lines map[string]int
	// origins says, by key path, where a secret set from a file or the environment came
	// from; may be nil.
	origins map[string]string
	// types maps the names of the Go types decoded into to the types, to describe them
	// without their names; may be nil.
	types map[string]reflect.Type
}

// valueAt is a value's key path and, for a scalar, its text.
type valueAt struct {
	path, text string
}

type lineKey struct {
	line int
	name string
}

// newKeyIndex indexes the tree under n, whose key path is base ("" for the whole file).
func newKeyIndex(n *yaml.Node, base string) *keyIndex {
	idx := &keyIndex{keys: map[lineKey]string{}, values: map[int][]valueAt{}, lines: map[string]int{}}
	idx.walk(documentContent(n), base, 0)
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
			if k.Line > 0 {
				idx.lines[p] = k.Line
			}
			idx.walk(v, p, depth+1)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			if v.Line > 0 {
				idx.lines[p] = v.Line
			}
			idx.walk(v, p, depth+1)
		}
	}
	// A block mapping or sequence "starts" on the line of its first entry, which belongs
	// to that entry; only scalars and flow collections are recorded on their line.
	if path != "" && (n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode || n.Style&yaml.FlowStyle != 0) {
		v := valueAt{path: path}
		if n.Kind == yaml.ScalarNode {
			v.text = n.Value
		}
		idx.values[n.Line] = append(idx.values[n.Line], v)
	}
}

func joinKey(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

var (
	yamlLineRE      = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlNotFoundRE  = regexp.MustCompile(`^field (.*?) not found in type .+$`)
	yamlUnmarshalRE = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")
	yamlDuplicateRE = regexp.MustCompile(`^mapping key "(.*)" already defined at line (\d+)$`)
)

// problem turns one yaml.v3 type error message into a problem with a key path.
func (idx *keyIndex) problem(msg string) Problem {
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return Problem{Message: idx.describe(msg)}
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
	if d := yamlDuplicateRE.FindStringSubmatch(text); d != nil {
		key, ok := idx.keys[lineKey{line, d[1]}]
		if !ok {
			key = d[1]
		}
		return Problem{Key: key, Message: fmt.Sprintf("key given twice, at lines %s and %d; keep one", d[2], line)}
	}
	return Problem{Key: idx.keyOfValue(line, text), Message: fmt.Sprintf("%s (line %d)", idx.describe(text), line)}
}

// keyOfValue is the key path of the value a message about line is about: the one value on
// the line, the one whose text the message quotes, or what the values have in common.
func (idx *keyIndex) keyOfValue(line int, text string) string {
	values := idx.values[line]
	if u := yamlUnmarshalRE.FindStringSubmatch(text); u != nil && u[2] != "" && len(values) > 1 {
		// yaml.v3 quotes at most 10 bytes of the value: 7 and "...".
		quoted, cut := strings.CutSuffix(u[2], "...")
		var match []valueAt
		for _, v := range values {
			if v.text == quoted || cut && strings.HasPrefix(v.text, quoted) {
				match = append(match, v)
			}
		}
		if len(match) == 1 {
			return match[0].path
		}
	}
	paths := make([]string, len(values))
	for i, v := range values {
		paths[i] = v.path
	}
	return commonPrefix(paths)
}

// describe rewrites yaml.v3's "cannot unmarshal !!str `x` into pkg.Type" without Go's
// type names.
func (idx *keyIndex) describe(text string) string {
	u := yamlUnmarshalRE.FindStringSubmatch(text)
	if u == nil {
		return text
	}
	got := map[string]string{
		"str": "a string", "int": "a number", "float": "a number", "bool": "true or false",
		"seq": "a list", "map": "a mapping", "null": "nothing", "timestamp": "a timestamp",
	}[u[1]]
	if u[2] != "" {
		got = strconv.Quote(u[2])
	} else if got == "" {
		got = "a " + u[1]
	}
	return fmt.Sprintf("want %s, got %s", idx.wantOf(u[3]), got)
}

// wantOf describes the Go type named name.
func (idx *keyIndex) wantOf(name string) string {
	if t, ok := idx.types[name]; ok {
		return kindOf(t)
	}
	name = strings.TrimLeft(name, "*")
	switch {
	case strings.HasPrefix(name, "[]"):
		return "a list"
	case strings.HasPrefix(name, "map["):
		return "a mapping"
	case name == "string":
		return "a string"
	case name == "bool":
		return "true or false"
	case strings.HasPrefix(name, "int"), strings.HasPrefix(name, "uint"):
		return "a whole number"
	case strings.HasPrefix(name, "float"):
		return "a number"
	}
	return "another kind of value (see switchboard -e)"
}

var durationType = reflect.TypeFor[Duration]()

func kindOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType || t.String() == "time.Duration" {
		return `a duration such as "30s"`
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number >= 0"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return "another kind of value (see switchboard -e)"
}

// typeNames maps the name of every type reachable from v's type (through pointers, fields,
// slices and maps) to the type.
func typeNames(v any) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var visit func(t reflect.Type, depth int)
	visit = func(t reflect.Type, depth int) {
		if t == nil || depth > 32 {
			return
		}
		if _, seen := out[t.String()]; seen {
			return
		}
		out[t.String()] = t
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			visit(t.Elem(), depth+1)
		case reflect.Map:
			visit(t.Key(), depth+1)
			visit(t.Elem(), depth+1)
		case reflect.Struct:
			for i := range t.NumField() {
				visit(t.Field(i).Type, depth+1)
			}
		}
	}
	visit(reflect.TypeOf(v), 0)
	return out
}

// annotate adds where the value of p's key is: its line, or where a secret came from.
func (idx *keyIndex) annotate(p Problem) Problem {
	if strings.Contains(p.Message, "(line ") || strings.Contains(p.Message, "(from ") {
		return p
	}
	if o, ok := idx.origins[p.Key]; ok {
		p.Message += " (" + o + ")"
	} else if line, ok := idx.lines[p.Key]; ok {
		p.Message += fmt.Sprintf(" (line %d)", line)
	}
	return p
}

// addNew adds the problems, with their lines, whose keys have no problem in errs yet: a
// value that could not be decoded is not validated again.
func (idx *keyIndex) addNew(errs *Errors, problems []Problem) {
	had := map[string]bool{}
	for _, p := range errs.Problems {
		had[p.Key] = true
	}
	for _, p := range problems {
		if !had[p.Key] {
			errs.Problems = append(errs.Problems, idx.annotate(p))
		}
	}
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
