package pipeline

import (
	"testing"
)

func FuzzParse(f *testing.F) {
	seeds := []string{
		"job:\n  script: x\n",
		"stages: [a, b]\nvariables: {A: 1, B: {value: x, expand: false}}\ndefault:\n  image: i\n  before_script: [b]\n" +
			".t: &t\n  script: [[x]]\n  artifacts: {paths: [a], when: always, expire_in: 1 week}\n" +
			"j1:\n  stage: a\n  extends: .t\n  needs: []\n  timeout: 1h 30m\nj2:\n  <<: *t\n  stage: b\n  needs: [j1, {job: j1, artifacts: false}]\n  dependencies: [j1]\n",
		"a: {needs: [b], script: x}\nb: {needs: [a], script: x}\n",
		"a: &a [*a]\n",
		"x: !reference [.a, b]\njob: {script: [!reference [.a, b]], when: manual}\n",
		"spec: {inputs: {}}\n---\njob: {script: x, trigger: y, allow_failure: {exit_codes: [1]}}\n",
		"job: {extends: [.a, .b], script: x}\n.a: {extends: .b}\n.b: {variables: {X: y}}\n",
		"workflow: {name: $A, rules: [{if: '$A =~ /x/i', variables: {B: c}}, {when: never}]}\nj: {script: x, rules: [{if: $B, when: manual}], parallel: {matrix: [{M: [a, b]}]}}\nk: {needs: [{job: j, parallel: {matrix: [{M: a}]}}], script: x, retry: {max: 1}}\n",
		"j: {parallel: 3, script: x, only: {refs: [main, /^r/], variables: [$X]}, except: [tags]}\nk: {dependencies: [j], stage: deploy, when: delayed, start_in: 1 minute, script: x}\n",
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		seen := map[string]bool{}
		for _, w := range p.Warnings {
			if w == "" || seen[w] {
				t.Fatalf("bad or repeated warning %q", w)
			}
			seen[w] = true
		}
		pos := map[string]int{}
		for i, j := range p.Jobs {
			pos[j.Name] = i
		}
		for i, j := range p.Jobs {
			for _, n := range j.Needs {
				if k, ok := pos[n]; !ok || k >= i {
					t.Fatalf("job %q runs before its need %q", j.Name, n)
				}
			}
		}
		if _, err := p.Select(); err != nil {
			t.Fatal(err)
		}
	})
}
