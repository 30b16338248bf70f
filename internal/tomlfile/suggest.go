package tomlfile

import (
	"encoding"
	"reflect"
	"strings"
)

// Keys returns the dotted keys a value of v's type takes (as [Decode]
// does: from the fields' toml tags), tables and their keys alike. An array
// of tables contributes its keys without an index ("runners.name"), as an
// [Error]'s Key names them.
func Keys(v any) []string {
	var keys []string
	addKeys(reflect.TypeOf(v), "", &keys, map[reflect.Type]bool{})
	return keys
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func addKeys(t reflect.Type, prefix string, keys *[]string, seen map[reflect.Type]bool) {
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct || seen[t] || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return
	}
	seen[t] = true
	defer delete(seen, t)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			addKeys(f.Type, prefix, keys, seen)
			continue
		}
		if name == "" {
			name = f.Name
		}
		*keys = append(*keys, prefix+name)
		addKeys(f.Type, prefix+name+".", keys, seen)
	}
}

// Suggest returns the key of known closest to key, an unknown dotted key,
// or "" when none is close: a key of the same table whose name differs
// only in case, '-' for '_', or by a few edits (insertions, deletions,
// substitutions or swaps of adjacent letters, at most one per three
// letters, and at most two).
func Suggest(key string, known []string) string {
	table, name := splitKey(key)
	best, bestDist := "", 0
	for _, k := range known {
		kt, kn := splitKey(k)
		if kt != table {
			continue
		}
		d := editDistance(normalizeKey(name), normalizeKey(kn))
		limit := min(2, max(1, len(kn)/3))
		if d <= limit && (best == "" || d < bestDist) {
			best, bestDist = k, d
		}
	}
	return best
}

func splitKey(key string) (table, name string) {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}

func normalizeKey(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "-", "_")
}

// editDistance is the optimal string alignment distance between a and b
// (Levenshtein with swaps of adjacent bytes). Keys are short: it is
// quadratic.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return max(len(a), len(b))
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
