package gitlabtest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

func TestRequestJobReplies(t *testing.T) {
	c := newTC(t)
	tests := []struct {
		name   string
		body   string
		ctype  string
		status int
	}{
		{"malformed JSON", `{"token":`, "application/json", 400},
		{"not an object", `[1,2]`, "application/json", 400},
		{"trailing data", `{"token":"x"} {}`, "application/json", 400},
		{"empty body", ``, "application/json", 400},
		{"wrong token", `{"token":"glrt-nope"}`, "application/json", 403},
		{"empty token", `{"token":""}`, "application/json", 403},
		{"no job", `{"token":"` + c.s.RunnerToken + `"}`, "application/json", 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(http.MethodPost, "/api/v4/jobs/request", strings.NewReader(tt.body), "Content-Type", tt.ctype)
			wantStatus(t, tt.name, r, tt.status)
			switch tt.status {
			case 400, 403:
				wantHeader(t, tt.name, r, "Content-Type", "application/json")
				if r.message(t) == "" {
					t.Errorf("empty message")
				}
			case 204:
				if r.Header.Get("X-GitLab-Last-Update") == "" {
					t.Errorf("204 without X-GitLab-Last-Update")
				}
			}
		})
	}
	if v := c.s.Violations(); len(v) != 0 {
		t.Errorf("violations: %q", v)
	}
}

func TestRequestJobAssigns(t *testing.T) {
	c := newTC(t)
	r0 := c.requestJob()
	wantStatus(t, "idle", r0, 204)
	lu0 := r0.Header.Get("X-GitLab-Last-Update")

	id := c.s.Enqueue(gitlabtest.NewJob("build"))
	if id != 1000 {
		t.Errorf("first id = %d, want 1000", id)
	}
	if got := c.s.Job(id).State; got != gitlab.StatePending {
		t.Errorf("state after Enqueue = %s", got)
	}
	r := c.requestJob()
	wantStatus(t, "assign", r, 201)
	wantHeader(t, "assign", r, "Content-Type", "application/json")
	lu1 := r.Header.Get("X-GitLab-Last-Update")
	if lu1 == "" || lu1 == lu0 {
		t.Errorf("X-GitLab-Last-Update %q after a queue change, was %q", lu1, lu0)
	}
	j, err := gitlab.DecodeJob(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	rec := c.s.Job(id)
	if j.ID != id || j.Token != rec.Token || rec.State != gitlab.StateRunning {
		t.Errorf("payload id %d token %q, record %+v", j.ID, j.Token, rec.State)
	}
	if !strings.HasPrefix(rec.Token, "glcbt-") || len(rec.Token) != len("glcbt-")+20 {
		t.Errorf("job token %q", rec.Token)
	}
	// Handed out once only.
	wantStatus(t, "again", c.requestJob(), 204)

	// The request is recorded as sent.
	req := gitlab.JobRequest{Token: c.s.RunnerToken, SystemID: "r_abcdefghijkl", LastUpdate: lu1,
		Info: gitlab.RunnerMeta{Name: "wr", Version: "1.2.3", Features: gitlab.DefaultFeatures()}}
	wantStatus(t, "full request", c.postJSON("/api/v4/jobs/request", req), 204)
	if got := c.s.LastJobRequest(); got != req {
		t.Errorf("LastJobRequest = %+v, want %+v", got, req)
	}
}

func TestPayload(t *testing.T) {
	c := newTC(t)
	b := gitlabtest.NewJob("unit").
		Stage("check").
		Script("make", "make test").
		AfterScript("echo bye").
		Step(gitlab.Step{Name: "frobnicate", Script: []string{"x"}, When: gitlab.StepWhenOnFailure}).
		Var("PLAIN", "p").
		MaskedVar("SECRET", "s3cr3t-value").
		FileVar("KUBECONFIG", "cfg").
		Variable(gitlab.Variable{Key: "RAWV", Value: "$x", Raw: true}).
		Image("alpine:3").
		Timeout(90*time.Second).
		Artifacts(gitlab.ArtifactSpec{Paths: []string{"out/"}}).
		Artifacts(gitlab.ArtifactSpec{Name: "junit", Paths: []string{"r.xml"}, Type: "junit", Format: gitlab.FormatGzip, When: gitlab.ArtifactsAlways, ExpireIn: "1 week"}).
		FailureReasons("script_failure", "unknown_failure")
	id := c.s.Enqueue(b)
	j := c.mustJob()
	if j.ID != id {
		t.Fatalf("id %d", j.ID)
	}
	url := c.s.URL
	want := map[string]string{
		"CI": "true", "GITLAB_CI": "true", "CI_SERVER_URL": url, "CI_SERVER_HOST": "127.0.0.1",
		"CI_SERVER_NAME": "GitLab", "CI_API_V4_URL": url + "/api/v4", "CI_JOB_ID": strconv.FormatInt(id, 10),
		"CI_JOB_NAME": "unit", "CI_JOB_STAGE": "check", "CI_JOB_TOKEN": j.Token,
		"CI_PIPELINE_SOURCE": "push", "CI_PROJECT_ID": "1", "CI_PROJECT_NAME": "demo",
		"CI_PROJECT_PATH": "group/demo", "CI_PROJECT_URL": url + "/group/demo",
		"CI_JOB_URL":         url + "/group/demo/-/jobs/" + strconv.FormatInt(id, 10),
		"CI_COMMIT_REF_NAME": "main", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main",
		"GITLAB_USER_LOGIN": "root", "PLAIN": "p", "SECRET": "s3cr3t-value", "KUBECONFIG": "cfg",
	}
	for k, v := range want {
		if got := j.Variables.Value(k); got != v {
			t.Errorf("variable %s = %q, want %q", k, got, v)
		}
	}
	if sha := j.Variables.Value("CI_COMMIT_SHA"); len(sha) != 40 || j.GitInfo.Sha != sha || j.Variables.Value("CI_COMMIT_SHORT_SHA") != sha[:8] {
		t.Errorf("sha %q, git_info %q", sha, j.GitInfo.Sha)
	}
	if v, _ := j.Variables.Get("CI_JOB_TOKEN"); !v.Masked || v.Public {
		t.Errorf("CI_JOB_TOKEN %+v", v)
	}
	if v, _ := j.Variables.Get("PLAIN"); !v.Public || v.Masked || v.File {
		t.Errorf("PLAIN %+v", v)
	}
	if v, _ := j.Variables.Get("SECRET"); v.Public || !v.Masked {
		t.Errorf("SECRET %+v", v)
	}
	if v, _ := j.Variables.Get("KUBECONFIG"); !v.File {
		t.Errorf("KUBECONFIG %+v", v)
	}
	if v, _ := j.Variables.Get("RAWV"); !v.Raw {
		t.Errorf("RAWV %+v", v)
	}
	// Predefined variables come first.
	keys := make([]string, len(j.Variables))
	for i, v := range j.Variables {
		keys[i] = v.Key
	}
	if slices.Index(keys, "PLAIN") < slices.Index(keys, "GITLAB_USER_LOGIN") {
		t.Errorf("own variables before predefined ones: %v", keys)
	}
	if !slices.Equal(j.Variables.Masked(), []string{j.Token, "s3cr3t-value"}) {
		t.Errorf("masked values %q", j.Variables.Masked())
	}

	wantSteps := []gitlab.Step{
		{Name: gitlab.StepScript, Script: []string{"make", "make test"}, Timeout: 90, When: gitlab.StepWhenOnSuccess},
		{Name: "frobnicate", Script: []string{"x"}, When: gitlab.StepWhenOnFailure},
		{Name: gitlab.StepAfterScript, Script: []string{"echo bye"}, Timeout: 300, When: gitlab.StepWhenAlways},
	}
	if len(j.Steps) != len(wantSteps) {
		t.Fatalf("steps %+v", j.Steps)
	}
	for i := range wantSteps {
		g, w := j.Steps[i], wantSteps[i]
		if g.Name != w.Name || !slices.Equal(g.Script, w.Script) || g.Timeout != w.Timeout || g.When != w.When {
			t.Errorf("step %d = %+v, want %+v", i, g, w)
		}
	}
	if j.RunnerInfo.Timeout != 90 || j.Image.Name != "alpine:3" {
		t.Errorf("timeout %d image %q", j.RunnerInfo.Timeout, j.Image.Name)
	}
	if j.JobInfo != (gitlab.JobInfo{Name: "unit", Stage: "check", ProjectID: 1, ProjectName: "demo"}) {
		t.Errorf("job_info %+v", j.JobInfo)
	}
	gi := j.GitInfo
	if gi.Ref != "main" || gi.RefType != "branch" || gi.Depth != 20 ||
		!slices.Equal(gi.Refspecs, []string{"+refs/heads/main:refs/remotes/origin/main"}) ||
		!strings.Contains(gi.RepoURL, "gitlab-ci-token:"+j.Token+"@") { // as GitLab sends it
		t.Errorf("git_info %+v", gi)
	}
	a := j.Artifacts
	if len(a) != 2 || a[0].When != gitlab.ArtifactsOnSuccess || a[0].Format != gitlab.FormatZip || a[0].Type != "archive" || a[0].Name != "" ||
		a[1].Type != "junit" || a[1].Format != gitlab.FormatGzip || a[1].When != gitlab.ArtifactsAlways || a[1].ExpireIn != "1 week" {
		t.Errorf("artifacts %+v", a)
	}
	if !slices.Equal(j.Features.FailureReasons, []string{"script_failure", "unknown_failure"}) {
		t.Errorf("failure_reasons %v", j.Features.FailureReasons)
	}
	// The record holds what was sent, and snapshots are copies.
	rec := c.s.Job(id)
	rec.Payload.Variables[0].Value = "changed"
	rec.Payload.Steps[0].Script[0] = "changed"
	again := c.s.Job(id)
	if again.Payload.Variables[0].Value == "changed" || again.Payload.Steps[0].Script[0] == "changed" {
		t.Errorf("Job returned shared slices")
	}
}

func TestPayloadDefaults(t *testing.T) {
	c := newTC(t)
	c.s.Enqueue(gitlabtest.NewJob("d"))
	c.s.Enqueue(gitlabtest.NewJob("zero").Timeout(0).Step(gitlab.Step{Name: gitlab.StepScript, Script: []string{"own"}}))
	j := c.mustJob()
	if j.JobInfo.Stage != "test" || j.JobInfo.ProjectID != 1 || j.JobInfo.ProjectName != "demo" || j.RunnerInfo.Timeout != 3600 {
		t.Errorf("defaults: %+v %+v", j.JobInfo, j.RunnerInfo)
	}
	if len(j.Steps) != 1 || !slices.Equal(j.Steps[0].Script, []string{"echo hello"}) || j.Steps[0].Timeout != 3600 || j.Steps[0].When != gitlab.StepWhenOnSuccess {
		t.Errorf("default steps %+v", j.Steps)
	}
	for _, r := range []string{"unknown_failure", "job_canceled", "runner_unsupported", "runner_interrupted", "image_pull_failure", "script_failure"} {
		if !slices.Contains(j.Features.FailureReasons, r) {
			t.Errorf("default failure_reasons lack %s", r)
		}
	}
	j2 := c.mustJob()
	if j2.RunnerInfo.Timeout != 0 || len(j2.Steps) != 1 || j2.Steps[0].Script[0] != "own" {
		t.Errorf("Timeout(0) and own script step: %+v %+v", j2.RunnerInfo, j2.Steps)
	}
}

func TestRawPayloads(t *testing.T) {
	c := newTC(t)
	id1 := c.s.Enqueue(gitlabtest.NewJob("mut").Raw(func(j *gitlab.Job) {
		j.Token = "glcbt-custom"
		j.Services = []gitlab.Image{{Name: "postgres"}}
	}))
	raw := []byte(`{"id": 1234, "token": "glcbt-raw", "steps": "not a list"`)
	id2 := c.s.Enqueue(gitlabtest.NewJob("raw").RawJSON(raw))

	j := c.mustJob()
	if j.ID != id1 || j.Token != "glcbt-custom" || len(j.Services) != 1 || c.s.Job(id1).Token != "glcbt-custom" {
		t.Errorf("Raw: payload %+v record token %q", j, c.s.Job(id1).Token)
	}
	r := c.requestJob()
	wantStatus(t, "raw", r, 201)
	if string(r.Body) != string(raw) {
		t.Errorf("raw body %q, want %q", r.Body, raw)
	}
	if c.s.Job(id2).State != gitlab.StateRunning {
		t.Errorf("raw job not running")
	}
	// A well-formed RawJSON payload's token authenticates.
	id3 := c.s.Enqueue(gitlabtest.NewJob("raw2").RawJSON([]byte(`{"id":1,"token":"glcbt-r2","mystery":[1]}`)))
	wantStatus(t, "raw2", c.requestJob(), 201)
	if c.s.Job(id3).Token != "glcbt-r2" {
		t.Fatalf("token %q", c.s.Job(id3).Token)
	}
	c.appendTrace(id3, "glcbt-r2", 0, "hi")
}

func TestDependencies(t *testing.T) {
	c := newTC(t)
	zipData := makeZip(t, map[string]string{"bin/app": "binary"})
	done := c.s.AddFinishedJob("compile", zipData)
	if rec := c.s.Job(done); rec.State != gitlab.StateSuccess || len(rec.Artifacts) != 1 {
		t.Fatalf("finished job %+v", rec)
	}
	noArt := c.s.AddFinishedJob("lint", nil)
	build := c.s.Enqueue(gitlabtest.NewJob("build"))
	test := c.s.Enqueue(gitlabtest.NewJob("test").DependsOn(done, build, noArt))
	other := c.s.Enqueue(gitlabtest.NewJob("other"))

	// test waits for build; other is not blocked by it.
	jb := c.mustJob()
	jo := c.mustJob()
	if jb.ID != build || jo.ID != other {
		t.Fatalf("order: got %d, %d; want %d, %d", jb.ID, jo.ID, build, other)
	}
	wantStatus(t, "test withheld", c.requestJob(), 204)

	// build uploads artifacts and succeeds: test is released.
	art := makeZip(t, map[string]string{"b.txt": "from build"})
	wantStatus(t, "upload", c.upload(build, jb.Token, "artifact_format=zip&artifact_type=archive", "artifacts.zip", art), 201)
	wantStatus(t, "finish build", c.finish(build, jb.Token, gitlab.StateSuccess, ""), 200)
	jt := c.mustJob()
	if jt.ID != test {
		t.Fatalf("got job %d, want %d", jt.ID, test)
	}
	if len(jt.Dependencies) != 3 {
		t.Fatalf("dependencies %+v", jt.Dependencies)
	}
	for _, d := range jt.Dependencies {
		if d.Token != jt.Token {
			t.Errorf("dependency %d token %q, want the job's own", d.ID, d.Token)
		}
	}
	d0, d1, d2 := jt.Dependencies[0], jt.Dependencies[1], jt.Dependencies[2]
	if d0.ID != done || d0.Name != "compile" || d0.ArtifactsFile == nil || *d0.ArtifactsFile != (gitlab.DependencyArtifactsFile{Filename: "artifacts.zip", Size: int64(len(zipData))}) {
		t.Errorf("dependency 0 %+v", d0)
	}
	if d1.ID != build || d1.ArtifactsFile == nil || d1.ArtifactsFile.Size != int64(len(art)) {
		t.Errorf("dependency 1 %+v (artifacts_file filled at assignment)", d1)
	}
	if d2.ID != noArt || d2.ArtifactsFile != nil {
		t.Errorf("dependency 2 %+v", d2)
	}

	get := func(id int64, hdr ...string) resp {
		return c.do(http.MethodGet, "/api/v4/jobs/"+strconv.FormatInt(id, 10)+"/artifacts", nil, hdr...)
	}
	r := get(done, "JOB-TOKEN", jt.Token)
	wantStatus(t, "download", r, 200)
	wantHeader(t, "download", r, "Content-Type", "application/zip")
	if string(r.Body) != string(zipData) {
		t.Errorf("downloaded other bytes")
	}
	if r := get(build, "JOB-TOKEN", jt.Token); r.Status != 200 || string(r.Body) != string(art) {
		t.Errorf("download build: %d", r.Status)
	}
	wantStatus(t, "no token", get(done), 401)
	wantStatus(t, "bad token", get(done, "JOB-TOKEN", "glcbt-wrong"), 403)
	wantStatus(t, "not a dependency", get(done, "JOB-TOKEN", jo.Token), 403)
	wantStatus(t, "finished job's token", get(done, "JOB-TOKEN", jb.Token), 403)
	wantStatus(t, "no archive", get(noArt, "JOB-TOKEN", jt.Token), 404)
	wantStatus(t, "unknown job", get(99999, "JOB-TOKEN", jt.Token), 404)
	// A running job may fetch its own archive.
	wantStatus(t, "own upload", c.upload(other, jo.Token, "", "a.zip", art), 201)
	wantStatus(t, "own download", get(other, "JOB-TOKEN", jo.Token), 200)
	// Once the dependent job finished its token no longer downloads.
	wantStatus(t, "finish test", c.finish(test, jt.Token, gitlab.StateSuccess, ""), 200)
	wantStatus(t, "after finish", get(done, "JOB-TOKEN", jt.Token), 403)
}

func TestDependencySkipped(t *testing.T) {
	c := newTC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := c.s.Enqueue(gitlabtest.NewJob("a"))
	b := c.s.Enqueue(gitlabtest.NewJob("b").DependsOn(a))
	cc := c.s.Enqueue(gitlabtest.NewJob("c").DependsOn(b))
	d := c.s.Enqueue(gitlabtest.NewJob("d"))
	e := c.s.Enqueue(gitlabtest.NewJob("e").DependsOn(d))

	ja := c.mustJob()
	jd := c.mustJob()
	if ja.ID != a || jd.ID != d {
		t.Fatalf("got %d %d", ja.ID, jd.ID)
	}
	wantStatus(t, "fail a", c.put(a, gitlab.UpdateJobRequest{Token: ja.Token, State: gitlab.StateFailed, FailureReason: gitlab.ScriptFailure, ExitCode: 2}), 200)
	for _, id := range []int64{b, cc} {
		if _, err := c.s.WaitForState(ctx, id, gitlab.StateSkipped); err != nil {
			t.Fatal(err)
		}
	}
	c.s.Cancel(d)
	if _, err := c.s.WaitForState(ctx, e, gitlab.StateSkipped); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "nothing left", c.requestJob(), 204)
	if rec := c.s.Job(a); rec.FailureReason != gitlab.ScriptFailure || rec.ExitCode != 2 {
		t.Errorf("a: %+v", rec)
	}
}

func TestEnqueueUnknownDependencyPanics(t *testing.T) {
	s := gitlabtest.NewServer()
	defer s.Close()
	defer func() {
		if recover() == nil {
			t.Errorf("no panic")
		}
	}()
	s.Enqueue(gitlabtest.NewJob("x").DependsOn(42))
}

func TestJobsAndRecords(t *testing.T) {
	c := newTC(t)
	a := c.s.Enqueue(gitlabtest.NewJob("a"))
	b := c.s.AddFinishedJob("b", nil)
	js := c.s.Jobs()
	if len(js) != 2 || js[0].ID != a || js[1].ID != b || js[0].Name != "a" || b != a+1 {
		t.Fatalf("Jobs %+v", js)
	}
	if rec := c.s.Job(7); rec.ID != 0 {
		t.Errorf("unknown job %+v", rec)
	}
	// The payload decodes as JSON the client will see.
	data, err := json.Marshal(js[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gitlab.DecodeJob(data); err != nil {
		t.Error(err)
	}
}
