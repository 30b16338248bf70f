package varexpand

import (
	"fmt"
	"strings"
	"testing"
)

// TestAll follows docs.gitlab.com/ee/ci/variables/ "Use CI/CD variables
// in other variables", "Use the $ character in CI/CD variables" and
// "expand: false" (ci/yaml/#variablesexpand).
func TestAll(t *testing.T) {
	tests := []struct {
		name string
		vars []Var
		key  string
		want string
	}{
		{"plain", []Var{{Key: "A", Value: "x"}}, "A", "x"},
		{"reference", []Var{{Key: "BASE", Value: "/opt"}, {Key: "DERIVED", Value: "${BASE}/bin"}}, "DERIVED", "/opt/bin"},
		{"reference without braces", []Var{{Key: "BASE", Value: "/opt"}, {Key: "D", Value: "$BASE/bin"}}, "D", "/opt/bin"},
		{"forward reference", []Var{{Key: "D", Value: "$BASE/bin"}, {Key: "BASE", Value: "/opt"}}, "D", "/opt/bin"},
		{"chain", []Var{{Key: "A", Value: "a"}, {Key: "B", Value: "$A-b"}, {Key: "C", Value: "$B-c"}}, "C", "a-b-c"},
		{"undefined is empty", []Var{{Key: "A", Value: "x${NOPE}y$NOPE"}}, "A", "xy"},
		{"dollar escape", []Var{{Key: "A", Value: "cost: $$5 and $$HOME"}}, "A", "cost: $5 and $HOME"},
		{"lone dollar", []Var{{Key: "A", Value: "a $ b $"}}, "A", "a $ b $"},
		{"bad brace", []Var{{Key: "A", Value: "${no"}}, "A", "${no"},
		{"raw is not expanded", []Var{{Key: "B", Value: "b"}, {Key: "R", Value: "$B $$", Raw: true}}, "R", "$B $$"},
		{"raw inserted as is", []Var{{Key: "R", Value: "$X", Raw: true}, {Key: "A", Value: "<$R>"}}, "A", "<$X>"},
		{"last wins", []Var{{Key: "A", Value: "1"}, {Key: "A", Value: "2"}, {Key: "B", Value: "$A"}}, "B", "2"},
		{"override before reference", []Var{{Key: "B", Value: "$A"}, {Key: "A", Value: "1"}, {Key: "A", Value: "2"}}, "B", "2"},
		{"cycle", []Var{{Key: "A", Value: "$B"}, {Key: "B", Value: "$A"}}, "A", "$B"},
		{"into a cycle", []Var{{Key: "A", Value: "$B"}, {Key: "B", Value: "$A"}, {Key: "C", Value: "<$A>"}}, "C", "<$B>"},
		{"self", []Var{{Key: "A", Value: "x$A"}}, "A", "x$A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := All(tt.vars)
			var v string
			for _, g := range got {
				if g.Key == tt.key {
					v = g.Value
				}
			}
			if v != tt.want {
				t.Errorf("%s = %q, want %q", tt.key, v, tt.want)
			}
		})
	}
}

func TestBounded(t *testing.T) {
	// Each variable doubles the one before: 2^40 bytes if unbounded.
	vars := []Var{{Key: "V0", Value: strings.Repeat("x", 64)}}
	for i := 1; i <= 40; i++ {
		vars = append(vars, Var{Key: "V" + string(rune('0'+i%10)) + string(rune('a'+i/10)), Value: "$" + vars[i-1].Key + "$" + vars[i-1].Key})
	}
	out := All(vars)
	if n := len(out[len(out)-1].Value); n > maxValue {
		t.Errorf("value of %d bytes", n)
	}
}

func TestRefs(t *testing.T) {
	got := strings.Join(Refs("a $A ${B} $$C $ ${ $D_1"), ",")
	if got != "A,B,D_1" {
		t.Errorf("Refs = %s", got)
	}
}

func FuzzValue(f *testing.F) {
	for _, s := range []string{"$A${B}$$C", "${", "$", "x$A$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := New([]Var{{Key: "A", Value: s}, {Key: "B", Value: "$A" + s}})
		got := e.Expand(s)
		if !strings.Contains(s, "$") && got != s {
			t.Fatalf("%q without references expanded to %q", s, got)
		}
		if len(got) > maxValue+len(s) {
			t.Fatalf("unbounded: %d bytes", len(got))
		}
	})
}

// BenchmarkAll expands a job's variables as exec and the engine do: about
// 80, a few of them referencing others.
func BenchmarkAll(b *testing.B) {
	var vars []Var
	for i := range 75 {
		vars = append(vars, Var{Key: fmt.Sprintf("CI_VAR_%d", i), Value: fmt.Sprintf("value-%d", i)})
	}
	vars = append(vars,
		Var{Key: "DERIVED", Value: "${CI_VAR_1}/bin"},
		Var{Key: "PATHS", Value: "$DERIVED:$CI_VAR_2"},
		Var{Key: "LOOP_A", Value: "$LOOP_B"}, Var{Key: "LOOP_B", Value: "$LOOP_A"},
		Var{Key: "PRICE", Value: "$$5"})
	for b.Loop() {
		All(vars)
	}
}
