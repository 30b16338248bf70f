// Package varexpand expands CI/CD variable references the way GitLab and
// GitLab Runner do before a job's script runs
// (docs.gitlab.com/ee/ci/variables/, "Use CI/CD variables in other
// variables" and "Use the $ character in CI/CD variables"):
//
//   - $NAME and ${NAME} stand for the value of variable NAME, itself
//     expanded; an undefined variable expands to "";
//   - $$ stands for a literal $;
//   - a variable marked raw (`expand: false`) is never expanded, and its
//     value is inserted as is where it is referenced;
//   - the variables of a reference cycle keep their values as written
//     (GitLab refuses such a job).
package varexpand

import "strings"

// maxValue bounds the length of one expanded value, so that variables
// referencing each other cannot build an unbounded string.
const maxValue = 1 << 20

// Var is one variable. When a key appears more than once, the last one
// wins.
type Var struct {
	Key   string
	Value string
	Raw   bool
}

// Lookup returns a variable's value; ok is false when it is not defined.
type Lookup func(name string) (string, bool)

// Value expands the references in s with lookup, which returns final
// (already expanded) values.
func Value(s string, lookup Lookup) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		name, n, ok := reference(s[i:])
		switch {
		case s[i+1] == '$':
			b.WriteByte('$')
			i += 2
			continue
		case !ok:
			b.WriteByte('$')
			i++
			continue
		}
		if v, ok := lookup(name); ok {
			if b.Len()+len(v) > maxValue {
				v = v[:max(0, maxValue-b.Len())]
			}
			b.WriteString(v)
		}
		i += n
	}
	return b.String()
}

// reference reads $NAME or ${NAME} at the start of s.
func reference(s string) (name string, n int, ok bool) {
	if len(s) > 2 && s[1] == '{' {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", 0, false
		}
		name = s[2:end]
		if name == "" || !isName(name) {
			return "", 0, false
		}
		return name, end + 1, true
	}
	j := 1
	for j < len(s) && isNameByte(s[j]) {
		j++
	}
	if j == 1 {
		return "", 0, false
	}
	return s[1:j], j, true
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

// Refs returns the names that s references.
func Refs(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			continue
		}
		if s[i+1] == '$' {
			i++
			continue
		}
		if name, n, ok := reference(s[i:]); ok {
			out = append(out, name)
			i += n - 1
		}
	}
	return out
}

// Expander expands variables of a list against each other.
type Expander struct {
	raw   map[string]string
	isRaw map[string]bool
	done  map[string]string
	state map[string]uint8 // 1: expanding, 2: done
}

// New returns an expander over vars (the last of two with one key wins).
func New(vars []Var) *Expander {
	e := &Expander{raw: make(map[string]string, len(vars)), isRaw: make(map[string]bool, len(vars)), done: map[string]string{}, state: map[string]uint8{}}
	for _, v := range vars {
		e.raw[v.Key] = v.Value
		e.isRaw[v.Key] = v.Raw
	}
	for k := range e.cyclic() {
		e.isRaw[k] = true
	}
	return e
}

// cyclic returns the variables that are part of a reference cycle
// (Tarjan's strongly connected components, iteratively). Only variables
// that reference others can be in one: the others (most of them) are left
// out of the graph.
func (e *Expander) cyclic() map[string]bool {
	var refsOf map[string][]string
	for k, v := range e.raw {
		if e.isRaw[k] || !strings.Contains(v, "$") {
			continue
		}
		var rs []string
		for _, r := range Refs(v) {
			if rv, ok := e.raw[r]; ok && !e.isRaw[r] && strings.Contains(rv, "$") {
				rs = append(rs, r)
			}
		}
		if len(rs) > 0 {
			if refsOf == nil {
				refsOf = map[string][]string{}
			}
			refsOf[k] = rs
		}
	}
	if len(refsOf) == 0 {
		return nil
	}
	index := map[string]int{}
	low := map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	out := map[string]bool{}
	refs := func(k string) []string { return refsOf[k] }
	type frame struct {
		k    string
		refs []string
		i    int
	}
	for start := range refsOf {
		if _, seen := index[start]; seen {
			continue
		}
		frames := []frame{{k: start, refs: refs(start)}}
		index[start], low[start] = len(index), len(index)
		stack, onStack[start] = append(stack, start), true
		for len(frames) > 0 {
			f := &frames[len(frames)-1]
			if f.i < len(f.refs) {
				r := f.refs[f.i]
				f.i++
				if _, seen := index[r]; !seen {
					index[r], low[r] = len(index), len(index)
					stack, onStack[r] = append(stack, r), true
					frames = append(frames, frame{k: r, refs: refs(r)})
				} else if onStack[r] {
					low[f.k] = min(low[f.k], index[r])
				}
				continue
			}
			k := f.k
			frames = frames[:len(frames)-1]
			if len(frames) > 0 {
				p := frames[len(frames)-1].k
				low[p] = min(low[p], low[k])
			}
			if low[k] != index[k] {
				continue
			}
			var comp []string
			for {
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[top] = false
				comp = append(comp, top)
				if top == k {
					break
				}
			}
			selfRef := len(comp) == 1 && contains(refs(k), k)
			if len(comp) > 1 || selfRef {
				for _, c := range comp {
					out[c] = true
				}
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Get returns the expanded value of a variable.
func (e *Expander) Get(name string) (string, bool) {
	raw, ok := e.raw[name]
	if !ok {
		return "", false
	}
	if e.isRaw[name] {
		return raw, true
	}
	switch e.state[name] {
	case 2:
		return e.done[name], true
	case 1:
		// Not reached: cycles are raw.
		return raw, true
	}
	e.state[name] = 1
	v := Value(raw, e.Get)
	e.state[name] = 2
	e.done[name] = v
	return v, true
}

// Expand returns the value s expanded against the variables.
func (e *Expander) Expand(s string) string { return Value(s, e.Get) }

// All returns vars with every value that is not raw expanded against the
// others. Each key keeps its position.
func All(vars []Var) []Var {
	e := New(vars)
	out := make([]Var, len(vars))
	for i, v := range vars {
		out[i] = v
		if !v.Raw && !e.isRaw[v.Key] {
			out[i].Value = Value(v.Value, e.Get)
		}
	}
	return out
}
