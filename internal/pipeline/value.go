package pipeline

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the size of the configuration once aliases and extends:
// are expanded, so that a small file cannot make Parse do unbounded work.
const maxNodes = 1 << 20

// kind is the type of a configuration value.
type kind uint8

const (
	kNull kind = iota
	kString
	kInt
	kFloat
	kBool
	kList
	kMap
	kRef // a !reference tag, resolved before the configuration is read
)

// value is an immutable YAML value with aliases and merge keys resolved.
// Values may be shared between several places of the tree.
type value struct {
	kind  kind
	line  int
	text  string   // scalars: the literal text; kRef: the reference, e.g. "[.a, script]"
	ref   []string // kRef: the path the reference names
	file  string   // the file the value comes from; "" for the main one
	list  []*value // kList
	keys  []string // kMap, in order
	vals  []*value // kMap, parallel to keys
	index map[string]int
	size  int // number of nodes, counted as if nothing were shared (saturates)
}

func newMap(line int) *value {
	return &value{kind: kMap, line: line, index: map[string]int{}, size: 1}
}

// get returns the value for key in a map; ok is false when it is absent.
func (v *value) get(key string) (*value, bool) {
	if v == nil || v.kind != kMap {
		return nil, false
	}
	i, ok := v.index[key]
	if !ok {
		return nil, false
	}
	return v.vals[i], true
}

// set adds or replaces key in a map under construction. A replaced key keeps
// its position.
func (v *value) set(key string, x *value) {
	if i, ok := v.index[key]; ok {
		v.size = addSize(v.size-v.vals[i].size, x.size)
		v.vals[i] = x
		return
	}
	v.index[key] = len(v.keys)
	v.keys = append(v.keys, key)
	v.vals = append(v.vals, x)
	v.size = addSize(v.size, x.size)
}

// without returns a copy of map v with key removed.
func (v *value) without(key string) *value {
	out := newMap(v.line)
	for i, k := range v.keys {
		if k != key {
			out.set(k, v.vals[i])
		}
	}
	return out
}

// isNull reports whether v stands for "not given": absent, null, or an
// unsupported !reference used where a single value is expected.
func (v *value) isNull() bool {
	return v == nil || v.kind == kNull || v.kind == kRef
}

func addSize(a, b int) int {
	if a+b > maxNodes {
		return maxNodes + 1
	}
	return a + b
}

// deepMerge returns over merged onto base the way GitLab's extends: does:
// maps are merged key by key, recursively; any other value in over
// replaces the one in base.
func deepMerge(base, over *value) *value {
	if base == nil || base.kind != kMap || over.kind != kMap {
		return over
	}
	out := newMap(over.line)
	out.file = over.file
	for i, k := range base.keys {
		out.set(k, base.vals[i])
	}
	for i, k := range over.keys {
		if b, ok := out.get(k); ok {
			out.set(k, deepMerge(b, over.vals[i]))
		} else {
			out.set(k, over.vals[i])
		}
	}
	return out
}

// converter turns a yaml.Node tree into values.
type converter struct {
	file     string
	done     map[*yaml.Node]*value
	active   map[*yaml.Node]bool
	warnings []string
}

func newConverter() *converter {
	return &converter{done: map[*yaml.Node]*value{}, active: map[*yaml.Node]bool{}}
}

func (c *converter) convert(n *yaml.Node) (*value, error) {
	if v, ok := c.done[n]; ok {
		return v, nil
	}
	if c.active[n] {
		return nil, &Error{Line: n.Line, Msg: "an alias refers to a value that contains it"}
	}
	c.active[n] = true
	v, err := c.convertNode(n)
	delete(c.active, n)
	if err != nil {
		return nil, err
	}
	if v.size > maxNodes {
		return nil, &Error{Line: n.Line, Msg: fmt.Sprintf("the configuration is too large once aliases are expanded (more than %d values)", maxNodes)}
	}
	if v.file == "" {
		v.file = c.file
	}
	c.done[n] = v
	return v, nil
}

func (c *converter) convertNode(n *yaml.Node) (*value, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return &value{kind: kNull, line: n.Line, size: 1}, nil
		}
		return c.convert(n.Content[0])
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, &Error{Line: n.Line, Msg: fmt.Sprintf("unknown anchor %q", n.Value)}
		}
		return c.convert(n.Alias)
	case yaml.ScalarNode:
		if n.Tag == "!reference" {
			return nil, &Error{Line: n.Line, Msg: fmt.Sprintf("!reference %s: a reference must be a sequence such as [.job, script]", n.Value)}
		}
		v := &value{line: n.Line, text: n.Value, size: 1}
		switch n.ShortTag() {
		case "!!null":
			v.kind = kNull
		case "!!bool":
			v.kind = kBool
		case "!!int":
			v.kind = kInt
		case "!!float":
			v.kind = kFloat
		default:
			v.kind = kString
		}
		return v, nil
	case yaml.SequenceNode:
		if n.Tag == "!reference" {
			v := &value{kind: kRef, line: n.Line, text: referenceText(n), size: 1}
			for _, c := range n.Content {
				if c.Kind != yaml.ScalarNode {
					return nil, &Error{Line: c.Line, Msg: fmt.Sprintf("!reference %s: each element must be a name", v.text)}
				}
				v.ref = append(v.ref, c.Value)
			}
			if len(v.ref) == 0 {
				return nil, &Error{Line: n.Line, Msg: "!reference []: a reference names at least a job or template"}
			}
			return v, nil
		}
		v := &value{kind: kList, line: n.Line, size: 1}
		for _, item := range n.Content {
			x, err := c.convert(item)
			if err != nil {
				return nil, err
			}
			v.list = append(v.list, x)
			v.size = addSize(v.size, x.size)
		}
		return v, nil
	case yaml.MappingNode:
		return c.convertMap(n)
	}
	return nil, &Error{Line: n.Line, Msg: "unsupported YAML node"}
}

// convertMap builds a map, applying merge keys: explicit keys win over
// merged ones, and among merged maps the first one listed wins. Merged keys
// take the position of the merge key. A key given twice keeps its first
// position and takes the last value, as in GitLab.
func (c *converter) convertMap(n *yaml.Node) (*value, error) {
	if len(n.Content)%2 != 0 {
		return nil, &Error{Line: n.Line, Msg: "malformed mapping"}
	}
	explicit := map[string]*value{}
	firstLine := map[string]int{}
	for i := 0; i < len(n.Content); i += 2 {
		k := n.Content[i]
		if isMergeKey(k) {
			continue
		}
		key, err := keyText(k)
		if err != nil {
			return nil, err
		}
		if first, dup := firstLine[key]; dup {
			name := c.file
			if name == "" {
				name = FileName
			}
			c.warnings = append(c.warnings, fmt.Sprintf("%s:%d: key %q is defined more than once (first at line %d); the last definition wins", name, k.Line, key, first))
		} else {
			firstLine[key] = k.Line
		}
		v, err := c.convert(n.Content[i+1])
		if err != nil {
			return nil, err
		}
		explicit[key] = v
	}
	out := newMap(n.Line)
	for i := 0; i < len(n.Content) && out.size <= maxNodes; i += 2 {
		k := n.Content[i]
		if !isMergeKey(k) {
			key, _ := keyText(k)
			if _, done := out.get(key); !done {
				out.set(key, explicit[key])
			}
			continue
		}
		v, err := c.convert(n.Content[i+1])
		if err != nil {
			return nil, err
		}
		if err := mergeInto(out, v, explicit); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

// mergeInto applies the value of a merge key (a map or a list of maps) to
// out, skipping keys that are already in out; keys given explicitly take
// their explicit value.
func mergeInto(out, src *value, explicit map[string]*value) error {
	var srcs []*value
	switch src.kind {
	case kMap:
		srcs = []*value{src}
	case kList:
		srcs = src.list
	default:
		return &Error{Line: src.line, Msg: "a merge key (<<) must refer to a map or a list of maps"}
	}
	for _, m := range srcs {
		if m.kind != kMap {
			return &Error{Line: m.line, Msg: "a merge key (<<) must refer to a map or a list of maps"}
		}
		for i, k := range m.keys {
			if _, ok := out.get(k); ok {
				continue
			}
			if x, ok := explicit[k]; ok {
				out.set(k, x)
			} else {
				out.set(k, m.vals[i])
			}
		}
	}
	return nil
}

func keyText(k *yaml.Node) (string, error) {
	for k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		return "", &Error{Line: k.Line, Msg: "map keys must be strings"}
	}
	return k.Value, nil
}

// referenceText renders a !reference sequence for messages.
func referenceText(n *yaml.Node) string {
	parts := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		if c.Kind == yaml.ScalarNode {
			parts = append(parts, c.Value)
		} else {
			parts = append(parts, "...")
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
