package ciexpr

import (
	"errors"
	"testing"
)

var vars = MapLookup(map[string]string{
	"BRANCH":  "main",
	"EMPTY":   "",
	"SOURCE":  "push",
	"MSG":     "Fix: the [skip] Thing",
	"PATTERN": "/^ma/",
	"BADPAT":  "ma",
	"PATH_V":  "a/b",
})

// TestEval follows docs.gitlab.com/ee/ci/jobs/job_rules.html, "CI/CD
// variable expressions" (compare a variable to a string, check whether a
// variable is undefined or empty, compare two variables, regex pattern
// matching, join expressions with && or ||).
func TestEval(t *testing.T) {
	tests := []struct {
		expr string
		want bool
	}{
		// Presence: defined and not empty.
		{`$BRANCH`, true},
		{`$EMPTY`, false},
		{`$UNDEFINED`, false},
		// Equality with both quotes.
		{`$BRANCH == "main"`, true},
		{`$BRANCH == 'main'`, true},
		{`"main" == $BRANCH`, true},
		{`$BRANCH != "main"`, false},
		{`$BRANCH == "Main"`, false},
		// null and empty.
		{`$UNDEFINED == null`, true},
		{`$EMPTY == null`, false},
		{`$EMPTY == ""`, true},
		{`$UNDEFINED == ""`, false},
		{`$UNDEFINED != null`, false},
		{`$BRANCH != null`, true},
		{`null == null`, true},
		// Two variables.
		{`$BRANCH == $BRANCH`, true},
		{`$BRANCH == $SOURCE`, false},
		{`$UNDEFINED == $ALSO_UNDEFINED`, true},
		// Regular expressions (RE2, anywhere in the value).
		{`$BRANCH =~ /^ma/`, true},
		{`$BRANCH =~ /ai/`, true},
		{`$BRANCH =~ /^MA/`, false},
		{`$BRANCH =~ /^MA/i`, true},
		{`$BRANCH !~ /^ma/`, false},
		{`$BRANCH !~ /^feature/`, true},
		{`$MSG =~ /\[skip\]/`, true},
		{`$PATH_V =~ /a\/b/`, true},
		{`$UNDEFINED =~ /.*/`, false},
		{`$UNDEFINED !~ /.*/`, true},
		{`$BRANCH =~ $PATTERN`, true},
		{`"xyz" =~ /y/`, true},
		// && binds tighter than ||; parentheses.
		{`$BRANCH == "main" && $SOURCE == "push"`, true},
		{`$BRANCH == "main" && $SOURCE == "web"`, false},
		{`$BRANCH == "x" || $SOURCE == "push"`, true},
		{`$BRANCH == "x" || $SOURCE == "push" && $EMPTY`, false},
		{`$SOURCE == "push" || $BRANCH == "x" && $EMPTY`, true},
		{`($SOURCE == "push" || $BRANCH == "x") && $EMPTY`, false},
		{`(($BRANCH))`, true},
		{`  $BRANCH  ==  "main"  `, true},
		// Literals alone.
		{`"x"`, true},
		{`""`, false},
		{`null`, false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := Eval(tt.expr, vars)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, expr := range []string{
		``, `$`, `${BRANCH}`, `$A ==`, `== $A`, `$A = "x"`, `"x`, `'x`, `$A =~ "x"`, `$A =~ /x`,
		`$A =~ /(/`, `$A =~ /x/q`, `($A`, `$A)`, `$A $B`, `$A && `, `|| $A`, `nul`, `nullx`,
	} {
		t.Run(expr, func(t *testing.T) {
			_, err := Parse(expr)
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("Parse(%q) = %v, want a syntax error", expr, err)
			}
		})
	}
	deep := ""
	for range MaxDepth + 1 {
		deep += "("
	}
	if _, err := Parse(deep + "$A"); !errors.Is(err, ErrSyntax) {
		t.Errorf("deep nesting: %v", err)
	}
}

func TestEvalErrors(t *testing.T) {
	for _, expr := range []string{`$BRANCH =~ $BADPAT`, `$BRANCH =~ $UNDEFINED`} {
		if _, err := Eval(expr, vars); err == nil {
			t.Errorf("Eval(%q) succeeded", expr)
		}
	}
}

func TestParseRegex(t *testing.T) {
	for _, tt := range []struct {
		in, match string
		ok        bool
	}{
		{"/^v[0-9]+/", "v12", true},
		{"/ABC/i", "xabcx", true},
		{"/a/b/", "", false},
		{"abc", "", false},
	} {
		re, err := ParseRegex(tt.in)
		if (err == nil) != tt.ok {
			t.Fatalf("ParseRegex(%q): %v", tt.in, err)
		}
		if err == nil && !re.MatchString(tt.match) {
			t.Errorf("%q does not match %q", tt.in, tt.match)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`$A == "x" && ($B =~ /y/i || $C != null)`, `"a" == 'b'`, `$A !~ $B`, `((`, `/\//`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		if e.String() != s {
			t.Fatalf("String() = %q", e.String())
		}
		// Evaluation never panics; it is deterministic.
		a, errA := e.Eval(vars)
		b, errB := e.Eval(vars)
		if a != b || (errA == nil) != (errB == nil) {
			t.Fatal("evaluation is not deterministic")
		}
	})
}
