package tomlfile

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/wasmrunner/wasmrunner/internal/units"
)

// Checking values against the types they decode into, before decoding, so
// that an error says in TOML terms what the key takes ("http.allow must be
// a list of strings, not a string; e.g. allow = ["example.com"]"), with the
// file's line, instead of naming Go types; and so that a size or duration
// written as a plain number is an error (the decoder would store it as
// bytes or nanoseconds).
//
// A field's `example` tag, if any, is the value its messages show ("e.g.
// KEY = EXAMPLE"); otherwise one is made up from its type.

var (
	sizeType         = reflect.TypeFor[Size]()
	durationType     = reflect.TypeFor[Duration]()
	timeType         = reflect.TypeFor[time.Time]()
	textUnmarshalerT = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkTypes returns the errors of the values of data (read from the file
// name) that the type t cannot take. A document that does not parse gives
// none: the decoder reports that.
func checkTypes(name string, data []byte, t reflect.Type) []error {
	c := &typeChecker{file: name}
	c.p.Reset(data)
	var table []string
	var unknown []error
	for c.p.NextExpression() {
		e := c.p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e.Key())
			f, ok := lookup(t, table)
			if !ok {
				unknown = append(unknown, &Error{File: name, Line: c.line(e), Key: strings.Join(table, "."), UnknownKey: true})
			}
			if ok {
				ft := deref(f.Type)
				if e.Kind == unstable.ArrayTable && ft.Kind() == reflect.Slice {
					ft = deref(ft.Elem())
				}
				if ft.Kind() != reflect.Struct && ft.Kind() != reflect.Map && ft.Kind() != reflect.Interface {
					c.typeError(c.line(e), strings.Join(table, "."), f, "a table")
				}
			}
		case unstable.KeyValue:
			path := append(append([]string(nil), table...), keyParts(e.Key())...)
			if f, ok := lookup(t, path); ok {
				c.value(c.line(e), strings.Join(path, "."), f, e.Value())
			} else if _, tableKnown := lookup(t, table); tableKnown {
				unknown = append(unknown, &Error{File: name, Line: c.line(e), Key: strings.Join(path, "."), UnknownKey: true})
			}
		}
	}
	if c.p.Error() != nil || len(c.errs) == 0 {
		return nil // the decoder reports unknown keys alone
	}
	// With the type errors, the unknown keys, so that one reading of the
	// errors shows all there is to fix.
	errs := append(c.errs, unknown...)
	slices.SortStableFunc(errs, func(a, b error) int { return a.(*Error).Line - b.(*Error).Line })
	return errs
}

type typeChecker struct {
	file string
	p    unstable.Parser
	errs []error
}

// line is the line of an expression (a table header's: of its key).
func (c *typeChecker) line(n *unstable.Node) int {
	if (n.Kind == unstable.Table || n.Kind == unstable.ArrayTable) && n.Child() != nil {
		n = n.Child()
	}
	return c.p.Shape(n.Raw).Start.Line
}

// field is where a key's value goes.
type field struct {
	Type reflect.Type
	Tag  reflect.StructTag
	Name string // the key's last part
}

// value checks the value v of key (at line) against f.
func (c *typeChecker) value(line int, key string, f field, v *unstable.Node) {
	t := deref(f.Type)
	kind := v.Kind
	switch {
	case t == sizeType || t == durationType:
		switch kind {
		case unstable.String:
			u := reflect.New(t).Interface().(encoding.TextUnmarshaler)
			if err := u.UnmarshalText(v.Data); err != nil {
				if strings.Contains(err.Error(), " has no unit: ") {
					c.add(line, key, true, "%s = %q: %v", key, v.Data, err)
					c.errs[len(c.errs)-1].(*Error).public = true
				} else {
					c.add(line, key, false, "%v", err)
				}
			}
		case unstable.Integer, unstable.Float:
			raw := string(v.Data)
			if n, err := strconv.ParseFloat(strings.ReplaceAll(raw, "_", ""), 64); err == nil && n == 0 {
				return
			}
			hint := units.UnitHint(raw)
			if t == durationType {
				hint = fmt.Sprintf("write %q (or %q, %q)", raw+"s", raw+"m", raw+"h")
			}
			c.add(line, key, true, "%s = %s has no unit: %s", key, raw, hint)
			c.errs[len(c.errs)-1].(*Error).public = true
		default:
			c.typeError(line, key, f, tomlKind(kind))
		}
	case t == timeType:
		// A TOML date-time (with its offset), or a string of one.
		switch kind {
		case unstable.DateTime:
		case unstable.String:
			c.text(line, key, t, v.Data)
		default:
			c.typeError(line, key, f, tomlKind(kind))
		}
	case reflect.PointerTo(t).Implements(textUnmarshalerT):
		// As the decoder does: strings give their value, other scalars
		// their text.
		switch kind {
		case unstable.String, unstable.Integer, unstable.Float, unstable.Bool:
			c.text(line, key, t, v.Data)
		default:
			c.typeError(line, key, f, tomlKind(kind))
		}
	case t.Kind() == reflect.Interface:
	case t.Kind() == reflect.String:
		c.want(line, key, f, kind, unstable.String)
	case t.Kind() == reflect.Bool:
		c.want(line, key, f, kind, unstable.Bool)
	case isInt(t.Kind()):
		c.want(line, key, f, kind, unstable.Integer)
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		if kind != unstable.Integer {
			c.want(line, key, f, kind, unstable.Float)
		}
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		if kind != unstable.Array {
			c.typeError(line, key, f, tomlKind(kind))
			return
		}
		elem := field{Type: t.Elem(), Name: f.Name}
		for it := v.Children(); it.Next(); {
			n := it.Node()
			if !c.fits(elem.Type, n) {
				c.typeError(line, key, f, "a list holding "+tomlKind(n.Kind))
				return
			}
			c.value(line, key, elem, n)
		}
	case t.Kind() == reflect.Map || t.Kind() == reflect.Struct:
		if kind != unstable.InlineTable {
			c.typeError(line, key, f, tomlKind(kind))
			return
		}
		for it := v.Children(); it.Next(); {
			kv := it.Node()
			if kv.Kind != unstable.KeyValue {
				continue
			}
			parts := keyParts(kv.Key())
			if sub, ok := lookup(t, parts); ok {
				c.value(c.line(kv), key+"."+strings.Join(parts, "."), sub, kv.Value())
			}
		}
	}
}

// fits reports whether a list element n can go into t at all (its
// details are checked by value).
func (c *typeChecker) fits(t reflect.Type, n *unstable.Node) bool {
	t = deref(t)
	switch {
	case t == timeType:
		return n.Kind == unstable.DateTime || n.Kind == unstable.String
	case t.Kind() == reflect.Interface, reflect.PointerTo(t).Implements(textUnmarshalerT):
		return true
	case t.Kind() == reflect.String:
		return n.Kind == unstable.String
	case t.Kind() == reflect.Bool:
		return n.Kind == unstable.Bool
	case isInt(t.Kind()):
		return n.Kind == unstable.Integer
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return n.Kind == unstable.Integer || n.Kind == unstable.Float
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return n.Kind == unstable.Array
	case t.Kind() == reflect.Map || t.Kind() == reflect.Struct:
		return n.Kind == unstable.InlineTable
	}
	return true
}

// text checks a value by the UnmarshalText of t.
func (c *typeChecker) text(line int, key string, t reflect.Type, data []byte) {
	u := reflect.New(t).Interface().(encoding.TextUnmarshaler)
	if err := u.UnmarshalText(data); err != nil {
		c.add(line, key, false, "%v", err)
	}
}

func (c *typeChecker) want(line int, key string, f field, got, want unstable.Kind) {
	if got != want {
		c.typeError(line, key, f, tomlKind(got))
	}
}

// typeError reports that key takes what f's type describes, not got.
func (c *typeChecker) typeError(line int, key string, f field, got string) {
	c.add(line, key, true, "%s must be %s, not %s; e.g. %s", key, describe(f.Type), got, example(f))
	c.errs[len(c.errs)-1].(*Error).public = true
}

// add records an error at line of key; sentence: msg names the key
// itself.
func (c *typeChecker) add(line int, key string, sentence bool, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...), sentence: sentence})
}

func keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func isInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// lookup finds where the dotted key path goes in t, as the decoder does:
// struct fields by their toml tag (or name; then ignoring case), map
// elements, the elements of an array of tables.
func lookup(t reflect.Type, path []string) (field, bool) {
	f := field{Type: t}
	for _, part := range path {
		t := deref(f.Type)
		if t.Kind() == reflect.Slice && deref(t.Elem()).Kind() == reflect.Struct {
			t = deref(t.Elem())
		}
		switch t.Kind() {
		case reflect.Map:
			f = field{Type: t.Elem(), Name: part}
		case reflect.Struct:
			sf, ok := structField(t, part)
			if !ok {
				return field{}, false
			}
			f = field{Type: sf.Type, Tag: sf.Tag, Name: part}
		default:
			return field{}, false
		}
	}
	return f, true
}

func structField(t reflect.Type, key string) (reflect.StructField, bool) {
	var fold reflect.StructField
	found := false
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if sf.Anonymous && name == "" && deref(sf.Type).Kind() == reflect.Struct {
			if inner, ok := structField(deref(sf.Type), key); ok {
				return inner, true
			}
			continue
		}
		if !sf.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if name == key {
			return sf, true
		}
		if !found && strings.EqualFold(name, key) {
			fold, found = sf, true
		}
	}
	return fold, found
}

// tomlKind names a value's kind in TOML terms.
func tomlKind(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Bool:
		return "a boolean"
	case unstable.Array:
		return "a list"
	case unstable.InlineTable, unstable.Table:
		return "a table"
	case unstable.ArrayTable:
		return "a list of tables"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "a date or time"
	}
	return "something else"
}

// describe says in TOML terms what a value of t is.
func describe(t reflect.Type) string {
	t = deref(t)
	switch {
	case t == sizeType:
		return `a size with a unit ("64MiB")`
	case t == durationType:
		return `a duration with a unit ("30s")`
	case reflect.PointerTo(t).Implements(textUnmarshalerT):
		return "a string"
	}
	switch k := t.Kind(); {
	case k == reflect.String:
		return "a string"
	case k == reflect.Bool:
		return "true or false"
	case isInt(k):
		return "an integer"
	case k == reflect.Float32 || k == reflect.Float64:
		return "a number"
	case k == reflect.Slice || k == reflect.Array:
		if e := deref(t.Elem()); e.Kind() == reflect.Struct && !reflect.PointerTo(e).Implements(textUnmarshalerT) {
			return "a list of tables"
		}
		return "a list of " + plural(describe(t.Elem()))
	case k == reflect.Map:
		return "a table of " + plural(describe(t.Elem()))
	case k == reflect.Struct:
		return "a table"
	}
	return "a value"
}

// plural turns "a string" into "strings", "an integer" into "integers",
// "a size with a unit (...)" into "sizes with a unit (...)".
func plural(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "a "), "an ")
	if s == "true or false" {
		return "booleans"
	}
	head, rest, _ := strings.Cut(s, " ")
	if rest != "" {
		rest = " " + rest
	}
	return head + "s" + rest
}

// example shows a key with a value of its type.
func example(f field) string {
	if ex := f.Tag.Get("example"); ex != "" {
		return f.Name + " = " + ex
	}
	return f.Name + " = " + exampleValue(f.Type)
}

func exampleValue(t reflect.Type) string {
	t = deref(t)
	switch {
	case t == sizeType:
		return `"64MiB"`
	case t == durationType:
		return `"30s"`
	case reflect.PointerTo(t).Implements(textUnmarshalerT):
		return `"..."`
	}
	switch k := t.Kind(); {
	case k == reflect.String:
		return `"text"`
	case k == reflect.Bool:
		return "true"
	case isInt(k):
		return "4"
	case k == reflect.Float32 || k == reflect.Float64:
		return "1.5"
	case k == reflect.Slice || k == reflect.Array:
		if deref(t.Elem()).Kind() == reflect.Struct {
			return "[{ ... }]"
		}
		e := exampleValue(t.Elem())
		return "[" + e + ", " + e + "]"
	case k == reflect.Map:
		return "{ NAME = " + exampleValue(t.Elem()) + " }"
	}
	return "{ ... }"
}
