package fleet

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
)

func entry(name string, mod func(*Runner)) Runner {
	r := Runner{
		Name: name, URL: "https://gitlab.example.com", Token: "glrt-" + name, Modules: "/srv/handlers",
		Handlers: []string{"shell"}, BuildsDir: "/var/lib/wasmrunner/builds", Concurrency: 4,
		CheckInterval: 3 * time.Second, OutputLimit: 4 << 20,
		Policy: resource.Policy{Trusted: []string{"shell"}, Max: resource.Limits{Memory: 64 << 20}},
	}
	if mod != nil {
		mod(&r)
	}
	return r
}

func TestPlan(t *testing.T) {
	a, b, c := entry("a", nil), entry("b", nil), entry("c", nil)
	a2 := entry("a", func(r *Runner) { r.Concurrency = 8 })
	a3 := entry("a", func(r *Runner) { r.Token = "glrt-rotated" })
	runners := func(rs ...Runner) map[string]Runner {
		m := map[string]Runner{}
		for _, r := range rs {
			m[r.Name] = r
		}
		return m
	}
	for _, tc := range []struct {
		name          string
		live, loading map[string]Runner
		want          []Runner
		plan          []decision
	}{
		{name: "nothing to nothing"},
		{name: "added", want: []Runner{a, b}, plan: []decision{{name: "a", load: true}, {name: "b", load: true}}},
		{name: "unchanged", live: runners(a, b), want: []Runner{b, a}},
		{name: "unchanged, a copy of the lists", live: runners(a), want: []Runner{entry("a", func(r *Runner) { r.Handlers = slices.Clone(r.Handlers) })}},
		{name: "removed", live: runners(a, b), want: []Runner{a}, plan: []decision{{name: "b", retire: true}}},
		{name: "all removed", live: runners(a, b), plan: []decision{{name: "a", retire: true}, {name: "b", retire: true}}},
		{name: "changed: loads anew, the old one serves until then", live: runners(a, b), want: []Runner{a2, b},
			plan: []decision{{name: "a", load: true}}},
		{name: "changed, added and removed at once", live: runners(a, b), want: []Runner{a2, c},
			plan: []decision{{name: "a", load: true}, {name: "b", retire: true}, {name: "c", load: true}}},
		{name: "still loading the same", loading: runners(a), want: []Runner{a}},
		{name: "loading, changed again", live: runners(a), loading: runners(a2), want: []Runner{a3},
			plan: []decision{{name: "a", cancelLoad: true, load: true}}},
		{name: "loading a change, changed back", live: runners(a), loading: runners(a2), want: []Runner{a},
			plan: []decision{{name: "a", cancelLoad: true}}},
		{name: "loading the change already asked for", live: runners(a), loading: runners(a2), want: []Runner{a2}},
		{name: "removed while loading", loading: runners(a), plan: []decision{{name: "a", cancelLoad: true}}},
		{name: "removed while loading a change", live: runners(a), loading: runners(a2),
			plan: []decision{{name: "a", cancelLoad: true, retire: true}}},
		{name: "token rotated", live: runners(a), want: []Runner{a3}, plan: []decision{{name: "a", load: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := plan(tc.live, tc.loading, tc.want)
			if !reflect.DeepEqual(got, tc.plan) {
				t.Errorf("plan = %+v, want %+v", got, tc.plan)
			}
		})
	}
}

func TestRunnerEqual(t *testing.T) {
	base := entry("a", nil)
	for _, tc := range []struct {
		name  string
		mod   func(*Runner)
		equal bool
	}{
		{"same", func(*Runner) {}, true},
		{"lists copied", func(r *Runner) { r.Handlers = []string{"shell"}; r.Policy.Trusted = []string{"shell"} }, true},
		{"handler added", func(r *Runner) { r.Handlers = append(r.Handlers, "go") }, false},
		{"handlers reordered", func(r *Runner) { r.Handlers = []string{"go", "shell"} }, false},
		{"policy memory", func(r *Runner) { r.Policy.Max.Memory = 128 << 20 }, false},
		{"http allow: default (nil) vs none (empty)", func(r *Runner) { r.Policy.HTTPAllow = []string{} }, false},
		{"TLS CA file", func(r *Runner) { r.TLS.CAFile = "/etc/ssl/gitlab.pem" }, false},
		{"registry insecure", func(r *Runner) { r.Registry.Insecure = []string{"registry:5000"} }, false},
		{"token", func(r *Runner) { r.Token = "glrt-new" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := entry("a", nil)
			tc.mod(&o)
			if got := base.Equal(o); got != tc.equal {
				t.Errorf("Equal = %v, want %v", got, tc.equal)
			}
			if got := o.Equal(base); got != tc.equal {
				t.Errorf("Equal is not symmetric")
			}
		})
	}
}

// Handlers nil and empty both mean "all handlers": equal.
func TestRunnerEqualEmptyHandlers(t *testing.T) {
	a, b := entry("a", func(r *Runner) { r.Handlers = nil }), entry("a", func(r *Runner) { r.Handlers = []string{} })
	if !a.Equal(b) {
		t.Error("nil and empty Handlers differ")
	}
}

// TestEqualSeesEveryField changes each field of a Runner in turn, nested
// ones included: a field Equal forgets would keep a changed runner
// running with its old settings.
func TestEqualSeesEveryField(t *testing.T) {
	var paths [][]int
	var walk func(typ reflect.Type, path []int)
	walk = func(typ reflect.Type, path []int) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			p := append(slices.Clone(path), i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
				walk(f.Type, p)
				continue
			}
			paths = append(paths, p)
		}
	}
	walk(reflect.TypeFor[Runner](), nil)
	if len(paths) < 30 {
		t.Fatalf("only %d fields found", len(paths))
	}
	for _, p := range paths {
		base := Runner{}
		changed := Runner{}
		v := reflect.ValueOf(&changed).Elem().FieldByIndex(p)
		name := reflect.TypeFor[Runner]().FieldByIndex(p).Name
		switch v.Kind() {
		case reflect.Struct: // time.Time
			v.Set(reflect.ValueOf(time.Unix(1, 0)))
		case reflect.String:
			v.SetString("x")
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			v.SetInt(7)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			v.SetUint(1)
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Slice:
			v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), reflect.Zero(v.Type().Elem())))
		default:
			t.Fatalf("field %s: kind %s: teach this test (and Equal) about it", name, v.Kind())
		}
		if base.Equal(changed) {
			t.Errorf("Equal does not see field %s (%v)", name, p)
		}
	}
}

// gitlab.TLSOptions is compared with ==: it must stay comparable.
var _ = gitlab.TLSOptions{} == gitlab.TLSOptions{}
