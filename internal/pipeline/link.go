package pipeline

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"strings"
)

// link checks needs: and dependencies: of all jobs (in file order), drops
// references to jobs that do not run where that is allowed, and puts the
// jobs that run in run order.
func (p *parser) link(all, excluded []*Job) (*Pipeline, error) {
	out := map[string]string{}
	for _, j := range excluded {
		out[j.Name] = j.excluded
	}
	byName := make(map[string]*Job, len(all))
	groups := map[string][]*Job{} // parallel: jobs by the name of the job they come from
	for _, j := range all {
		byName[j.Name] = j
		if j.Parallel != "" {
			groups[j.Parallel] = append(groups[j.Parallel], j)
		}
	}
	for _, j := range excluded {
		if j.Parallel != "" && len(groups[j.Parallel]) == 0 {
			out[j.Parallel] = j.excluded
		}
	}
	for _, j := range all {
		if j.skip != "" && strings.HasPrefix(j.skip, "keyword") {
			continue // trigger or run job: nothing else was read
		}
		if err := j.expandParallelRefs(byName, groups); err != nil {
			return nil, err
		}
		warnf := func(format string, args ...any) {
			if j.skip == "" {
				p.warn(fmt.Sprintf("job %q: ", j.Name) + fmt.Sprintf(format, args...))
			}
		}
		at := &value{line: j.needsLine}
		if j.NeedsSet {
			kept := make([]string, 0, len(j.Needs))
			for _, n := range j.Needs {
				t, ok := byName[n]
				switch {
				case !ok && j.optional[n]:
					delete(j.NeedsArtifacts, n)
					continue
				case !ok && out[n] != "":
					// GitLab: "job needs X, but X is not in any previous stage".
					return nil, errAt(at, j.Name, "needs %q, which is not in the pipeline (%s)", n, out[n])
				case !ok:
					return nil, errAt(at, j.Name, "needs %q, which is not a job of the pipeline", n)
				case t.stageIdx > j.stageIdx:
					return nil, errAt(at, j.Name, "needs %q, which is in a later stage (%s)", n, t.Stage)
				case t.skip != "" && j.skip == "" && j.optional[n]:
					warnf("optional need %q does not run (%s); ignored", n, t.skip)
					delete(j.NeedsArtifacts, n)
					continue
				case t.skip != "" && j.skip == "":
					return nil, errAt(at, j.Name, "needs %q, which does not run (%s)", n, t.skip)
				}
				kept = append(kept, n)
			}
			j.Needs = kept
		}
		if j.DependenciesSet {
			at := &value{line: j.depsLine}
			kept := make([]string, 0, len(j.Dependencies))
			for _, d := range j.Dependencies {
				t, ok := byName[d]
				switch {
				case !ok && out[d] != "":
					return nil, errAt(at, j.Name, "dependencies: %q is not in the pipeline (%s)", d, out[d])
				case !ok:
					return nil, errAt(at, j.Name, "dependencies: %q is not a job of the pipeline", d)
				case j.NeedsSet && !j.hasNeed(d):
					return nil, errAt(at, j.Name, "dependencies: %q must also be listed in needs", d)
				case !j.NeedsSet && t.stageIdx >= j.stageIdx:
					return nil, errAt(at, j.Name, "dependencies: %q is not in an earlier stage", d)
				case t.skip != "" && j.skip == "":
					warnf("dependency %q does not run (%s); its artifacts are not available", d, t.skip)
					continue
				}
				if !slices.Contains(kept, d) {
					kept = append(kept, d)
				}
			}
			j.Dependencies = kept
		}
	}

	if _, cycle := order(all); len(cycle) > 0 {
		first := byName[cycle[0]]
		return nil, errAt(&value{line: first.needsLine}, first.Name, "needs cycle: %s", strings.Join(cycle, " -> "))
	}
	var run []*Job
	skipped := out
	for _, j := range all {
		if j.skip == "" {
			run = append(run, j)
		} else {
			skipped[j.Name] = j.skip
		}
	}
	sorted, _ := order(run)
	return &Pipeline{Stages: p.stages, Jobs: sorted, Warnings: p.warnings, skipped: skipped}, nil
}

// hasNeed reports whether name is in the job's needs: as written, optional
// needs on absent jobs included.
func (j *Job) hasNeed(name string) bool {
	_, ok := j.NeedsArtifacts[name]
	return ok || j.optional[name]
}

// order sorts jobs by stage and file position, moving each job after the
// jobs it needs. Needs on jobs outside the list are ignored. When the needs
// form a cycle, order returns one cycle, as job names with the first
// repeated at the end.
func order(jobs []*Job) ([]*Job, []string) {
	sorted := slices.Clone(jobs)
	slices.SortStableFunc(sorted, func(a, b *Job) int {
		return cmp.Or(cmp.Compare(a.stageIdx, b.stageIdx), cmp.Compare(a.fileIdx, b.fileIdx))
	})
	pos := make(map[string]int, len(sorted))
	for i, j := range sorted {
		pos[j.Name] = i
	}
	indeg := make([]int, len(sorted))
	next := make([][]int, len(sorted))
	for i, j := range sorted {
		for _, n := range j.Needs {
			if k, ok := pos[n]; ok {
				indeg[i]++
				next[k] = append(next[k], i)
			}
		}
	}
	ready := &intHeap{}
	for i, d := range indeg {
		if d == 0 {
			heap.Push(ready, i)
		}
	}
	out := make([]*Job, 0, len(sorted))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		out = append(out, sorted[i])
		for _, k := range next[i] {
			indeg[k]--
			if indeg[k] == 0 {
				heap.Push(ready, k)
			}
		}
	}
	if len(out) == len(sorted) {
		return out, nil
	}
	// Every job left has a need on another job left: walk needs until a
	// job repeats.
	start := -1
	for i, d := range indeg {
		if d > 0 {
			start = i
			break
		}
	}
	seen := map[int]int{}
	var path []int
	for i := start; ; {
		if at, ok := seen[i]; ok {
			path = path[at:]
			break
		}
		seen[i] = len(path)
		path = append(path, i)
		for _, n := range sorted[i].Needs {
			if k, ok := pos[n]; ok && indeg[k] > 0 {
				i = k
				break
			}
		}
	}
	names := make([]string, 0, len(path)+1)
	for _, i := range path {
		names = append(names, sorted[i].Name)
	}
	return nil, append(names, names[0])
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// expandParallelRefs replaces, in needs: and dependencies:, the name of a
// job that parallel: made several of with those jobs (docs: ci/yaml
// "needs:parallel:matrix"): all of them, or those whose matrix values
// match needs:parallel:matrix.
func (j *Job) expandParallelRefs(byName map[string]*Job, groups map[string][]*Job) error {
	if j.NeedsSet {
		var needs []string
		for _, n := range j.Needs {
			g, isGroup := groups[n]
			if _, exact := byName[n]; exact || !isGroup {
				if _, ok := j.needsMatrix[n]; ok && !isGroup {
					return errAt(&value{line: j.needsLine}, j.Name, "needs %q with parallel:matrix, but %q is not a parallel:matrix job", n, n)
				}
				needs = append(needs, n)
				continue
			}
			art, opt := j.NeedsArtifacts[n], j.optional[n]
			delete(j.NeedsArtifacts, n)
			filters, filtered := j.needsMatrix[n]
			found := 0
			for _, inst := range g {
				if filtered && !slices.ContainsFunc(filters, func(f []Variable) bool { return matches(inst.Matrix, f) }) {
					continue
				}
				if _, dup := j.NeedsArtifacts[inst.Name]; dup {
					continue
				}
				found++
				needs = append(needs, inst.Name)
				j.NeedsArtifacts[inst.Name] = art
				if opt {
					j.optional[inst.Name] = true
				}
			}
			if found == 0 && !opt {
				return errAt(&value{line: j.needsLine}, j.Name, "needs %q with parallel:matrix values that none of its jobs has", n)
			}
		}
		j.Needs = needs
	}
	if j.DependenciesSet {
		var deps []string
		for _, d := range j.Dependencies {
			if g, ok := groups[d]; ok && byName[d] == nil {
				for _, inst := range g {
					deps = append(deps, inst.Name)
				}
				continue
			}
			deps = append(deps, d)
		}
		if deps == nil {
			deps = []string{}
		}
		j.Dependencies = deps
	}
	return nil
}
