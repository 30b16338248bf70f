package pipeline

import (
	"fmt"
	"strconv"
	"strings"
)

// maxParallel is the most jobs parallel: may make of one job (GitLab: 200).
const maxParallel = 200

// instance is one job that parallel: makes.
type instance struct {
	name       string
	vars       []Variable // the matrix variables
	matrix     map[string]string
	index, tot int
	base       string
}

// instances returns the jobs that parallel: makes of job name (docs:
// ci/yaml "parallel", "parallel:matrix"): "name 1/N" ... "name N/N" for a
// number, "name: [v1, v2]" for each combination of a matrix entry's
// values. Without parallel:, the job itself.
func (p *parser) instances(name string, m *value) ([]instance, error) {
	v, ok := m.get("parallel")
	if !ok || v.isNull() {
		return []instance{{name: name}}, nil
	}
	s := &scope{p: p, job: name}
	switch v.kind {
	case kInt:
		n, err := strconv.Atoi(v.text)
		if err != nil || n < 1 || n > maxParallel {
			return nil, s.errf(v, "parallel must be a number from 1 to %d", maxParallel)
		}
		if n == 1 {
			return []instance{{name: name}}, nil
		}
		out := make([]instance, n)
		for i := range out {
			out[i] = instance{name: fmt.Sprintf("%s %d/%d", name, i+1, n), index: i + 1, tot: n, base: name}
		}
		return out, nil
	case kMap:
	default:
		return nil, s.errf(v, "parallel must be a number or a map with matrix")
	}
	var matrixV *value
	for i, k := range v.keys {
		if k != "matrix" {
			return nil, s.errf(v.vals[i], "parallel: unknown keyword %q", k)
		}
		matrixV = v.vals[i]
	}
	combos, err := s.matrix(matrixV, "parallel:matrix")
	if err != nil {
		return nil, err
	}
	if len(combos) > maxParallel {
		return nil, s.errf(v, "parallel:matrix makes %d jobs, more than %d", len(combos), maxParallel)
	}
	out := make([]instance, 0, len(combos))
	for i, c := range combos {
		vals := make([]string, len(c))
		in := instance{index: i + 1, tot: len(combos), base: name, matrix: map[string]string{}}
		for k, kv := range c {
			vals[k] = kv.Value
			in.vars = append(in.vars, kv)
			in.matrix[kv.Key] = kv.Value
		}
		in.name = fmt.Sprintf("%s: [%s]", name, strings.Join(vals, ", "))
		out = append(out, in)
	}
	return out, nil
}

// matrix decodes a list of matrix entries (maps of names to a value or a
// list of values) into every combination, in GitLab's order: entries in
// order, and within one, the first variable's values vary slowest.
func (s *scope) matrix(v *value, what string) ([][]Variable, error) {
	if v.isNull() || v.kind != kList || len(v.list) == 0 {
		return nil, s.errf(v, "%s must be a list of maps of variables", what)
	}
	var out [][]Variable
	for _, entry := range v.list {
		if entry.kind != kMap || len(entry.keys) == 0 {
			return nil, s.errf(entry, "%s: each entry must be a map of variables to values", what)
		}
		combos := [][]Variable{nil}
		for i, k := range entry.keys {
			x := entry.vals[i]
			var values []string
			if x.kind == kList {
				for _, y := range x.list {
					t, ok := scalarText(y)
					if !ok {
						return nil, s.errf(y, "%s: %s: values must be strings or numbers", what, k)
					}
					values = append(values, t)
				}
			} else if t, ok := scalarText(x); ok {
				values = []string{t}
			} else {
				return nil, s.errf(x, "%s: %s: values must be strings or numbers", what, k)
			}
			next := make([][]Variable, 0, len(combos)*len(values))
			for _, c := range combos {
				for _, val := range values {
					next = append(next, append(append([]Variable(nil), c...), Variable{Key: k, Value: val}))
				}
			}
			if len(next) > maxParallel {
				return nil, s.errf(entry, "%s makes more than %d jobs", what, maxParallel)
			}
			combos = next
		}
		out = append(out, combos...)
		if len(out) > maxParallel {
			return nil, s.errf(v, "%s makes more than %d jobs", what, maxParallel)
		}
	}
	return out, nil
}

// matches reports whether a parallel job's matrix values include every
// value of filter.
func matches(matrix map[string]string, filter []Variable) bool {
	for _, f := range filter {
		if v, ok := matrix[f.Key]; !ok || v != f.Value {
			return false
		}
	}
	return true
}
