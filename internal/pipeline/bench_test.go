package pipeline

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParse500 parses a 500-job pipeline (10 stages of 50 jobs, each
// with rules and variables referencing others).
func BenchmarkParse500(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("stages: [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9]\nvariables: {BASE: /opt, BIN: '${BASE}/bin'}\n")
	for s := range 10 {
		for j := range 50 {
			fmt.Fprintf(&sb, "job-%d-%d:\n  stage: s%d\n  variables: {OWN: '$BIN/%d'}\n  rules:\n    - if: $CI_COMMIT_BRANCH == \"main\" && $OWN =~ /bin/\n  script: [echo $OWN]\n", s, j, s, j)
		}
	}
	src := []byte(sb.String())
	opts := branchPush("main")
	for b.Loop() {
		p, err := ParseWith(src, opts)
		if err != nil || len(p.Jobs) != 500 {
			b.Fatal(err)
		}
	}
}
