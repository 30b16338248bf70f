// Package ciexpr evaluates GitLab CI/CD expressions, the language of
// `rules:if`, `workflow:rules:if` and `only/except:variables`
// (docs.gitlab.com/ee/ci/jobs/job_rules.html, "CI/CD variable
// expressions").
//
// An expression compares variables, string literals, null and regular
// expressions:
//
//	$VAR                       true when VAR is defined and not empty
//	$VAR == "x"  $VAR != 'x'   string (in)equality; an undefined variable is null
//	$VAR == null               true when VAR is not defined
//	$VAR =~ /re/i  $VAR !~ /re/ RE2 match (anywhere in the value); flags i, m, s
//	a && b   a || b   (a)      && binds tighter than ||
//
// The right side of =~ and !~ may also be a variable whose value is a
// /pattern/flags literal, as in GitLab.
package ciexpr

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// MaxLength is the longest expression accepted, and MaxDepth the deepest
// nesting of parentheses, so that an expression cannot make evaluation
// unbounded.
const (
	MaxLength = 64 << 10
	MaxDepth  = 100
)

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("invalid expression")

// Lookup returns a variable's value; ok is false when it is not defined.
type Lookup func(name string) (value string, ok bool)

// Expr is a parsed expression.
type Expr struct {
	src  string
	root node
}

// String returns the expression as written.
func (e *Expr) String() string { return e.src }

// Eval reports whether the expression is true with the given variables.
func (e *Expr) Eval(vars Lookup) (bool, error) {
	v, err := e.root.eval(vars)
	if err != nil {
		return false, err
	}
	return v.truthy(), nil
}

// Parse parses an expression.
func Parse(src string) (*Expr, error) {
	if len(src) > MaxLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrSyntax, MaxLength)
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	n, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, fmt.Errorf("%w: unexpected %s at offset %d", ErrSyntax, t, t.pos)
	}
	return &Expr{src: src, root: n}, nil
}

// Eval parses and evaluates src.
func Eval(src string, vars Lookup) (bool, error) {
	e, err := Parse(src)
	if err != nil {
		return false, err
	}
	return e.Eval(vars)
}

// MapLookup returns a Lookup over a map.
func MapLookup(m map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

type tokKind int

const (
	tEOF tokKind = iota
	tVar
	tString
	tRegex
	tNull
	tEq
	tNe
	tMatch
	tNoMatch
	tAnd
	tOr
	tLParen
	tRParen
)

type token struct {
	kind tokKind
	pos  int
	text string // variable name, string content, regex source
	re   *regexp.Regexp
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tVar:
		return "$" + t.text
	case tString:
		return fmt.Sprintf("%q", t.text)
	case tRegex:
		return t.text
	case tNull:
		return "null"
	}
	return fmt.Sprintf("%q", t.text)
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '$':
			j := i + 1
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("%w: a variable name must follow $ at offset %d", ErrSyntax, i)
			}
			out = append(out, token{kind: tVar, pos: i, text: s[i+1 : j]})
			i = j
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("%w: unterminated string at offset %d", ErrSyntax, i)
			}
			out = append(out, token{kind: tString, pos: i, text: s[i+1 : i+1+j]})
			i += j + 2
		case c == '/':
			re, n, err := lexRegex(s[i:])
			if err != nil {
				return nil, fmt.Errorf("%w: at offset %d: %w", ErrSyntax, i, err)
			}
			out = append(out, token{kind: tRegex, pos: i, text: s[i : i+n], re: re})
			i += n
		case strings.HasPrefix(s[i:], "null") && (i+4 == len(s) || !isNameByte(s[i+4])):
			out = append(out, token{kind: tNull, pos: i, text: "null"})
			i += 4
		default:
			op := ""
			for _, o := range []string{"==", "!=", "=~", "!~", "&&", "||", "(", ")"} {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("%w: unexpected %q at offset %d", ErrSyntax, c, i)
			}
			kind := map[string]tokKind{"==": tEq, "!=": tNe, "=~": tMatch, "!~": tNoMatch, "&&": tAnd, "||": tOr, "(": tLParen, ")": tRParen}[op]
			out = append(out, token{kind: kind, pos: i, text: op})
			i += len(op)
		}
	}
	return append(out, token{kind: tEOF, pos: len(s)}), nil
}

// lexRegex reads a /pattern/flags literal at the start of s and returns
// it compiled and its length. Inside the pattern, \/ stands for /.
func lexRegex(s string) (*regexp.Regexp, int, error) {
	var b strings.Builder
	i := 1
	for {
		if i >= len(s) {
			return nil, 0, errors.New("unterminated regular expression")
		}
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			if s[i+1] == '/' {
				b.WriteByte('/')
			} else {
				b.WriteString(s[i : i+2])
			}
			i += 2
			continue
		}
		if c == '/' {
			i++
			break
		}
		b.WriteByte(c)
		i++
	}
	start := i
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	re, err := compile(b.String(), s[start:i])
	if err != nil {
		return nil, 0, err
	}
	return re, i, nil
}

func compile(pattern, flags string) (*regexp.Regexp, error) {
	prefix := ""
	for _, f := range flags {
		switch f {
		case 'i', 'm', 's':
			if !strings.ContainsRune(prefix, f) {
				prefix += string(f)
			}
		default:
			return nil, fmt.Errorf("unknown regular expression flag %q", f)
		}
	}
	if prefix != "" {
		pattern = "(?" + prefix + ")" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("regular expression: %w", err)
	}
	return re, nil
}

// ParseRegex parses a "/pattern/flags" string, as a variable on the
// right of =~ holds.
func ParseRegex(s string) (*regexp.Regexp, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("%q is not a /pattern/flags regular expression", s)
	}
	re, n, err := lexRegex(s)
	if err != nil {
		return nil, err
	}
	if n != len(s) {
		return nil, fmt.Errorf("%q is not a /pattern/flags regular expression", s)
	}
	return re, nil
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) or(depth int) (node, error) {
	left, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tOr {
		p.next()
		right, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		left = &logical{and: false, l: left, r: right}
	}
	return left, nil
}

func (p *parser) and(depth int) (node, error) {
	left, err := p.comparison(depth)
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tAnd {
		p.next()
		right, err := p.comparison(depth)
		if err != nil {
			return nil, err
		}
		left = &logical{and: true, l: left, r: right}
	}
	return left, nil
}

func (p *parser) comparison(depth int) (node, error) {
	t := p.peek()
	if t.kind == tLParen {
		if depth >= MaxDepth {
			return nil, fmt.Errorf("%w: parentheses nested deeper than %d", ErrSyntax, MaxDepth)
		}
		p.next()
		n, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, fmt.Errorf("%w: missing ) before %s at offset %d", ErrSyntax, c, c.pos)
		}
		return n, nil
	}
	left, err := p.operand()
	if err != nil {
		return nil, err
	}
	op := p.peek()
	switch op.kind {
	case tEq, tNe, tMatch, tNoMatch:
	default:
		return left, nil
	}
	p.next()
	right, err := p.operand()
	if err != nil {
		return nil, err
	}
	if op.kind == tMatch || op.kind == tNoMatch {
		if r, ok := right.(*operand); !ok || r.tok.kind != tRegex && r.tok.kind != tVar {
			return nil, fmt.Errorf("%w: the right side of %s must be a /regular expression/ or a variable at offset %d", ErrSyntax, op.text, op.pos)
		}
	}
	return &compare{op: op.kind, l: left, r: right}, nil
}

func (p *parser) operand() (node, error) {
	t := p.next()
	switch t.kind {
	case tVar, tString, tRegex, tNull:
		return &operand{tok: t}, nil
	}
	return nil, fmt.Errorf("%w: expected a variable, string, regular expression or null, found %s at offset %d", ErrSyntax, t, t.pos)
}

// val is the value of an operand or comparison.
type val struct {
	null bool
	str  string
	re   *regexp.Regexp
	b    *bool
}

func (v val) truthy() bool {
	switch {
	case v.b != nil:
		return *v.b
	case v.null:
		return false
	case v.re != nil:
		return true
	}
	return v.str != ""
}

func boolVal(b bool) val { return val{b: &b} }

type node interface {
	eval(Lookup) (val, error)
}

type operand struct{ tok token }

func (o *operand) eval(vars Lookup) (val, error) {
	switch o.tok.kind {
	case tVar:
		s, ok := vars(o.tok.text)
		if !ok {
			return val{null: true}, nil
		}
		return val{str: s}, nil
	case tString:
		return val{str: o.tok.text}, nil
	case tRegex:
		return val{re: o.tok.re, str: o.tok.text}, nil
	}
	return val{null: true}, nil
}

type compare struct {
	op   tokKind
	l, r node
}

func (c *compare) eval(vars Lookup) (val, error) {
	l, err := c.l.eval(vars)
	if err != nil {
		return val{}, err
	}
	r, err := c.r.eval(vars)
	if err != nil {
		return val{}, err
	}
	switch c.op {
	case tEq:
		return boolVal(equal(l, r)), nil
	case tNe:
		return boolVal(!equal(l, r)), nil
	}
	re := r.re
	if re == nil {
		if r.null {
			return val{}, fmt.Errorf("the pattern variable %s is not defined", c.r.(*operand).tok)
		}
		if re, err = ParseRegex(r.str); err != nil {
			return val{}, fmt.Errorf("the pattern variable %s: %w", c.r.(*operand).tok, err)
		}
	}
	m := !l.null && re.MatchString(l.str)
	if c.op == tNoMatch {
		m = !m
	}
	return boolVal(m), nil
}

func equal(a, b val) bool {
	if a.null || b.null {
		return a.null == b.null
	}
	return a.str == b.str
}

type logical struct {
	and  bool
	l, r node
}

func (n *logical) eval(vars Lookup) (val, error) {
	l, err := n.l.eval(vars)
	if err != nil {
		return val{}, err
	}
	if n.and != l.truthy() {
		// false && x, true || x: the left side decides.
		return boolVal(l.truthy()), nil
	}
	r, err := n.r.eval(vars)
	if err != nil {
		return val{}, err
	}
	return boolVal(r.truthy()), nil
}
