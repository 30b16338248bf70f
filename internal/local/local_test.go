package local

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/pipeline"
)

func TestParseVariables(t *testing.T) {
	vars, err := ParseVariables([]byte("# comment\n\nA=1\nexport B = two words \nC=\"quoted value\"\nD='x'\nE=\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, v := range vars {
		got += v.Key + "=" + v.Value + ";"
	}
	if want := "A=1;B=two words;C=quoted value;D=x;E=;"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for _, bad := range []string{"novalue\n", "=x\n", "1A=x\n", "A B=x\n"} {
		if _, err := ParseVariables([]byte(bad), "f"); err == nil || !strings.Contains(err.Error(), "f:1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseVariables(f *testing.F) {
	f.Add([]byte("A=1\n# x\nB='y'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := ParseVariables(data, "f")
		if err != nil {
			return
		}
		for _, v := range vars {
			if !validKey(v.Key) {
				t.Fatalf("invalid key %q", v.Key)
			}
		}
	})
}

// TestSlug follows predefined_variables: CI_COMMIT_REF_SLUG.
func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"main": "main", "feature/New_Thing": "feature-new-thing", "-x-": "x",
		strings.Repeat("a", 70): strings.Repeat("a", 63), "v1.2.3": "v1-2-3",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEnvironmentSlug follows GitLab's Gitlab::Slug::Environment
// examples; the suffixes are the last six base-36 digits of the name's
// SHA-256, computed independently (Python's hashlib).
func TestEnvironmentSlug(t *testing.T) {
	for in, want := range map[string]string{
		"production":                "production",
		"staging-1234567890123456":  "staging-1234567890123456",
		"staging-12345678901234567": "staging-123456789-s729ne",
		"PRODUCTION":                "production-vl4voz",
		"review/1-foo":              "review-1-foo-9tdj0u",
		"1/foo":                     "env-1-foo-t4rmb4",
		"foo-":                      "foo",
	} {
		if got := EnvironmentSlug(in); got != want {
			t.Errorf("EnvironmentSlug(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGuessTier follows GitLab's Environment#guess_tier (docs:
// ci/environments "deployment tier").
func TestGuessTier(t *testing.T) {
	for in, want := range map[string]string{
		"review/feature": "development", "DEV": "development", "qa": "testing", "integration": "testing",
		"staging": "staging", "pre-prod": "staging", "production": "production", "live": "production",
		"gke-eu": "other",
	} {
		if got := GuessTier(in); got != want {
			t.Errorf("GuessTier(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEnvironmentVariables: the name and URL are expanded with the job's
// variables; the CI_ENVIRONMENT_* variables are predefined ones (docs:
// ci/variables/predefined_variables).
func TestEnvironmentVariables(t *testing.T) {
	p, err := pipeline.Parse([]byte("variables:\n  HOST: example.com\ndeploy:\n  script: x\n  environment:\n    name: review/$CI_COMMIT_REF_SLUG\n    url: https://$CI_ENVIRONMENT_SLUG.$HOST\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := PlanConfig{Pipeline: p, Predefined: []pipeline.Variable{{Key: "CI_COMMIT_REF_SLUG", Value: "my-branch"}}}
	vars := JobVariables(1, p.Jobs[0], cfg)
	got := map[string]string{}
	for _, v := range vars {
		got[v.Key] = v.Value
	}
	want := map[string]string{
		"CI_ENVIRONMENT_NAME":   "review/my-branch",
		"CI_ENVIRONMENT_SLUG":   EnvironmentSlug("review/my-branch"),
		"CI_ENVIRONMENT_URL":    "https://" + EnvironmentSlug("review/my-branch") + ".example.com",
		"CI_ENVIRONMENT_ACTION": "start",
		"CI_ENVIRONMENT_TIER":   "development",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if i, j := slices.IndexFunc(vars, func(v gitlab.Variable) bool { return v.Key == "CI_ENVIRONMENT_NAME" }),
		slices.IndexFunc(vars, func(v gitlab.Variable) bool { return v.Key == "HOST" }); i > j {
		t.Errorf("CI_ENVIRONMENT_NAME after the job's variables: a job variable could not override it")
	}
}

// take asks for a job as the engine does, and ends it with state.
func take(t *testing.T, s *Source) *gitlab.Job {
	t.Helper()
	res, err := s.RequestJob(context.Background(), gitlab.JobRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Job
}

func finish(t *testing.T, s *Source, j *gitlab.Job, state gitlab.JobState) {
	t.Helper()
	if _, err := s.UpdateJob(context.Background(), j.ID, gitlab.UpdateJobRequest{State: state}); err != nil {
		t.Fatal(err)
	}
}

func job(id int64, name string) *gitlab.Job {
	return &gitlab.Job{ID: id, JobInfo: gitlab.JobInfo{Name: name, Stage: "test"}}
}

// TestSourceParallel: independent jobs are handed out together; a job
// waits for its upstream jobs (docs: ci/yaml "needs", "stages").
func TestSourceParallel(t *testing.T) {
	var log bytes.Buffer
	s := New(&log, t.TempDir())
	s.Add(job(1, "a"), Rule{})
	s.Add(job(2, "b"), Rule{})
	s.Add(job(3, "c"), Rule{After: []int64{1}, ByNeeds: true})
	s.Add(job(4, "d"), Rule{After: []int64{1, 2}})
	a, b := take(t, s), take(t, s)
	if a == nil || b == nil || a.ID != 1 || b.ID != 2 {
		t.Fatalf("first two: %v %v", a, b)
	}
	if j := take(t, s); j != nil {
		t.Fatalf("handed out %q before its upstream ended", j.JobInfo.Name)
	}
	finish(t, s, a, gitlab.StateSuccess)
	c := take(t, s)
	if c == nil || c.ID != 3 {
		t.Fatalf("c: %v", c)
	}
	finish(t, s, b, gitlab.StateFailed)
	if j := take(t, s); j != nil {
		t.Fatalf("d ran after b failed: %v", j)
	}
	finish(t, s, c, gitlab.StateSuccess)
	take(t, s)
	select {
	case <-s.Done():
	default:
		t.Fatal("not done")
	}
	if r := s.Result(4); r == nil || r.State != gitlab.StateSkipped {
		t.Errorf("d: %+v", r)
	}
	if !strings.Contains(log.String(), `Skipping job "d": "b" failed`) {
		t.Errorf("log:\n%s", log.String())
	}
}

// TestSourceManual follows ci/yaml "when: manual": a manual job not
// started does not run; allowed to fail (the default), it does not hold
// later stages, but a job that needs it waits for it forever.
func TestSourceManual(t *testing.T) {
	s := New(&bytes.Buffer{}, t.TempDir())
	s.Add(job(1, "deploy"), Rule{When: "manual", AllowFailure: true})
	s.Add(job(2, "later-stage"), Rule{After: []int64{1}})
	s.Add(job(3, "needs-it"), Rule{After: []int64{1}, ByNeeds: true})
	s.Add(job(4, "blocking"), Rule{When: "manual"})
	s.Add(job(5, "after-blocking"), Rule{After: []int64{4}})
	j := take(t, s)
	if j == nil || j.ID != 2 {
		t.Fatalf("got %v, want later-stage", j)
	}
	finish(t, s, j, gitlab.StateSuccess)
	take(t, s)
	for id, want := range map[int64]gitlab.JobState{1: StateManual, 3: StateWaiting, 4: StateManual, 5: StateWaiting} {
		if r := s.Result(id); r == nil || r.State != want {
			t.Errorf("job %d: %+v, want %s", id, r, want)
		}
	}
}

// TestSourceDelayed follows ci/yaml "when: delayed": the job starts
// start_in after it could have started (a fake clock, synctest).
func TestSourceDelayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(&bytes.Buffer{}, t.TempDir())
		s.Add(job(1, "first"), Rule{})
		s.Add(job(2, "delayed"), Rule{When: "delayed", StartIn: 30 * time.Minute, After: []int64{1}})
		first := take(t, s)
		time.Sleep(time.Hour) // the delay counts from when the job could start
		finish(t, s, first, gitlab.StateSuccess)
		start := time.Now()
		if j := take(t, s); j != nil {
			t.Fatal("delayed job handed out at once")
		}
		time.Sleep(29 * time.Minute)
		if j := take(t, s); j != nil {
			t.Fatal("delayed job handed out early")
		}
		time.Sleep(time.Minute)
		j := take(t, s)
		if j == nil || j.ID != 2 || time.Since(start) != 30*time.Minute {
			t.Fatalf("got %v after %s", j, time.Since(start))
		}
	})
}

// TestSourceLongPoll: with SetLongPoll a request that finds no job ready
// waits for a running job's end (a fake clock, synctest), and returns
// empty when its context ends, when its time is up, or when nothing
// running could make a job ready.
func TestSourceLongPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(&bytes.Buffer{}, t.TempDir())
		s.SetLongPoll(time.Hour)
		s.Add(job(1, "a"), Rule{})
		s.Add(job(2, "b"), Rule{After: []int64{1}})
		s.Add(job(3, "c"), Rule{After: []int64{2}})
		a := take(t, s)
		got := make(chan *gitlab.Job, 1)
		go func() { got <- take(t, s) }()
		synctest.Wait()
		select {
		case j := <-got:
			t.Fatalf("handed out %v before its upstream ended", j)
		default:
		}
		start := time.Now()
		finish(t, s, a, gitlab.StateSuccess)
		b := <-got
		if b == nil || b.ID != 2 || time.Since(start) != 0 {
			t.Fatalf("got %v after %s, want b at once", b, time.Since(start))
		}

		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			res, err := s.RequestJob(ctx, gitlab.JobRequest{})
			if err != nil {
				t.Error(err)
			}
			got <- res.Job
		}()
		synctest.Wait()
		cancel()
		if j := <-got; j != nil {
			t.Fatalf("a canceled request got %v", j)
		}

		start = time.Now()
		if j := take(t, s); j != nil || time.Since(start) != time.Hour {
			t.Fatalf("got %v after %s, want nothing after an hour", j, time.Since(start))
		}

		finish(t, s, b, gitlab.StateFailed)
		start = time.Now()
		if j := take(t, s); j != nil || time.Since(start) != 0 {
			t.Fatalf("got %v after %s", j, time.Since(start))
		}
		select {
		case <-s.Done():
		default:
			t.Fatal("not done: c should be skipped")
		}
	})
}

// A delayed job's time passing is no event: requests do not wait while
// one waits for its time.
func TestSourceLongPollDelayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(&bytes.Buffer{}, t.TempDir())
		s.SetLongPoll(time.Hour)
		s.Add(job(1, "a"), Rule{})
		s.Add(job(2, "delayed"), Rule{When: "delayed", StartIn: time.Minute})
		s.Add(job(3, "after"), Rule{After: []int64{1}})
		if j := take(t, s); j == nil || j.ID != 1 {
			t.Fatalf("got %v, want a", j)
		}
		start := time.Now()
		if j := take(t, s); j != nil || time.Since(start) != 0 {
			t.Fatalf("got %v after %s, want nothing at once", j, time.Since(start))
		}
		time.Sleep(time.Minute)
		if j := take(t, s); j == nil || j.ID != 2 {
			t.Fatalf("got %v, want the delayed job", j)
		}
	})
}

func TestPlay(t *testing.T) {
	mk := func(name string) Planned {
		return Planned{Job: &pipeline.Job{Name: name, When: "manual"}, Rule: Rule{When: "manual"}}
	}
	planned := []Planned{mk("a"), mk("b")}
	Play(planned, []string{"b"}, false)
	if planned[0].Rule.When != "manual" || planned[1].Rule.When != "on_success" {
		t.Errorf("named: %+v", planned)
	}
	Play(planned, nil, true)
	if planned[0].Rule.When != "on_success" {
		t.Errorf("all: %+v", planned)
	}
}

// TestSourceRetry follows ci/yaml "retry": a failed job runs again as a new
// job up to max times when its failure kind (and exit code) is listed; its
// dependents wait for the last attempt.
func TestSourceRetry(t *testing.T) {
	var log bytes.Buffer
	s := New(&log, t.TempDir())
	s.Add(job(1, "flaky"), Rule{Retry: pipeline.Retry{Max: 2}})
	s.Add(job(2, "after"), Rule{After: []int64{1}})
	s.Add(job(3, "only-exit-3"), Rule{Retry: pipeline.Retry{Max: 2, ExitCodes: []int{3}}})
	s.Add(job(4, "only-timeouts"), Rule{Retry: pipeline.Retry{Max: 1, When: []string{"stuck_or_timeout_failure"}}})
	fail := func(j *gitlab.Job, reason gitlab.FailureReason, code int) {
		t.Helper()
		if _, err := s.UpdateJob(context.Background(), j.ID, gitlab.UpdateJobRequest{State: gitlab.StateFailed, FailureReason: reason, ExitCode: code}); err != nil {
			t.Fatal(err)
		}
	}
	first := take(t, s)
	fail(first, gitlab.ScriptFailure, 1)
	second := take(t, s)
	if second == nil || second.ID == first.ID || second.JobInfo.Name != "flaky" {
		t.Fatalf("retry: %v", second)
	}
	fail(second, gitlab.ScriptFailure, 1)
	third := take(t, s)
	if third == nil || third.JobInfo.Name != "flaky" {
		t.Fatalf("second retry: %v", third)
	}
	finish(t, s, third, gitlab.StateSuccess)
	if r := s.Result(1); r == nil || r.State != gitlab.StateSuccess || r.Retries != 2 {
		t.Errorf("flaky: %+v", r)
	}
	if !strings.Contains(log.String(), `Retrying job "flaky" (attempt 3 of 3)`) {
		t.Errorf("log:\n%s", log.String())
	}
	next := take(t, s) // "after" or the others, in queue order
	for next != nil && next.JobInfo.Name != "only-exit-3" {
		finish(t, s, next, gitlab.StateSuccess)
		next = take(t, s)
	}
	fail(next, gitlab.ScriptFailure, 1) // exit code 1 is not retried
	if r := s.Result(3); r == nil || r.State != gitlab.StateFailed || r.Retries != 0 {
		t.Errorf("only-exit-3: %+v", r)
	}
	to := take(t, s)
	fail(to, gitlab.JobExecutionTimeout, 0)
	to = take(t, s)
	if to == nil || to.JobInfo.Name != "only-timeouts" {
		t.Fatalf("timeout retry: %v", to)
	}
	fail(to, gitlab.JobExecutionTimeout, 0)
	if r := s.Result(4); r == nil || r.State != gitlab.StateFailed || r.Retries != 1 {
		t.Errorf("only-timeouts: %+v", r)
	}
}

// TestSourceDotenv follows ci/yaml "artifacts:reports:dotenv": the
// variables go to the jobs that receive the job's artifacts, before the
// pipeline variables (which win).
func TestSourceDotenv(t *testing.T) {
	s := New(&bytes.Buffer{}, t.TempDir())
	s.SetClock(func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) })
	s.Add(job(1, "build"), Rule{})
	consumer := job(2, "deploy")
	consumer.Dependencies = []gitlab.Dependency{{ID: 1, Name: "build"}}
	consumer.Variables = gitlab.Variables{{Key: "OWN", Value: "x"}, {Key: "PIPELINE", Value: "p"}}
	s.Add(consumer, Rule{After: []int64{1}, PipelineVars: 1})
	other := job(3, "other")
	other.Variables = gitlab.Variables{{Key: "OWN", Value: "y"}}
	s.Add(other, Rule{After: []int64{1}})

	b := take(t, s)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("VERSION=1.2.3\nPIPELINE=from-dotenv\n"))
	zw.Close()
	up := gitlab.ArtifactUpload{Name: "dotenv", Type: "dotenv", Format: gitlab.FormatGzip}
	if err := s.UploadArtifact(context.Background(), b.ID, "", up, bytes.NewReader(gz.Bytes()), int64(gz.Len())); err != nil {
		t.Fatal(err)
	}
	finish(t, s, b, gitlab.StateSuccess)
	d := take(t, s)
	got := ""
	for _, v := range d.Variables {
		got += v.Key + "=" + v.Value + ";"
	}
	started := "CI_JOB_STARTED_AT=2026-01-02T03:04:05Z;"
	if want := started + "OWN=x;VERSION=1.2.3;PIPELINE=from-dotenv;PIPELINE=p;"; got != want {
		t.Errorf("deploy variables %s, want %s", got, want)
	}
	o := take(t, s)
	if len(o.Variables) != 2 {
		t.Errorf("other received dotenv variables: %v", o.Variables)
	}

	big := strings.Repeat("A=1\n", 2000)
	if _, err := readDotenv(strings.NewReader(big), gitlab.FormatRaw); err == nil {
		t.Error("a large dotenv report was accepted")
	}
}

func writeZip(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, content := range files {
		w, _ := zw.Create(name)
		w.Write([]byte(content))
	}
	zw.Close()
	f.Close()
}

// TestMergeDependencies: a job with MergeThreshold or more dependencies
// with artifacts receives one archive, made once per set of
// dependencies, in which a later dependency's file wins.
func TestMergeDependencies(t *testing.T) {
	dir := t.TempDir()
	s := New(&bytes.Buffer{}, dir)
	defer s.Close()
	var deps []gitlab.Dependency
	for i := range int64(MergeThreshold) {
		id := i + 1
		path := filepath.Join(dir, fmt.Sprintf("%d.zip", id))
		writeZip(t, path, map[string]string{fmt.Sprintf("f%d", id): "x", "shared": fmt.Sprint(id)})
		s.archive[id] = path
		s.results[id] = &Result{State: gitlab.StateSuccess}
		deps = append(deps, gitlab.Dependency{ID: id, Name: fmt.Sprintf("j%d", id)})
	}
	deps = append([]gitlab.Dependency{{ID: ProjectFilesID, Name: "project files"}}, deps...)
	var ids []int64
	for n := range int64(2) {
		j := job(100+n, "late")
		j.Dependencies = slices.Clone(deps)
		s.Add(j, Rule{})
		got := take(t, s)
		if len(got.Dependencies) != 2 || got.Dependencies[0].ID != ProjectFilesID || got.Dependencies[1].ArtifactsFile == nil {
			t.Fatalf("dependencies: %+v", got.Dependencies)
		}
		ids = append(ids, got.Dependencies[1].ID)
	}
	if ids[0] != ids[1] {
		t.Errorf("the merged archive was made twice: %v", ids)
	}
	zr, err := zip.OpenReader(s.archive[ids[0]])
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != MergeThreshold+1 {
		t.Errorf("%d entries", len(zr.File))
	}
	for _, f := range zr.File {
		if f.Name == "shared" {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) != fmt.Sprint(MergeThreshold) {
				t.Errorf("shared = %q: the last dependency's file should win", b)
			}
		}
	}
}
