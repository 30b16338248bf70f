package gitlabtest

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

// maxPatch bounds the trace patch bodies the server reads.
const maxPatch = 16 << 20

// recommendedPatch is the largest patch the official runner sends.
const recommendedPatch = 1 << 20

// alwaysAccepted are the failure reasons every GitLab accepts whatever
// features.failure_reasons says.
var alwaysAccepted = []gitlab.FailureReason{gitlab.ScriptFailure, gitlab.RunnerSystemFailure, gitlab.JobExecutionTimeout}

// artifactTypes are the artifact_type values GitLab knows.
var artifactTypes = []string{
	"archive", "metadata", "trace", "junit", "sast", "dependency_scanning",
	"container_scanning", "dast", "codequality", "license_scanning",
	"performance", "metrics", "metrics_referee", "network_referee", "lsif",
	"dotenv", "cobertura", "terraform", "accessibility", "cluster_applications",
	"secret_detection", "requirements", "coverage_fuzzing", "browser_performance",
	"load_performance", "api_fuzzing", "cluster_image_scanning", "cyclonedx",
	"requirements_v2", "annotations", "repository_xray", "jacoco",
}

// handleRequestJob answers POST jobs/request.
func (s *Server) handleRequestJob(w http.ResponseWriter, r *http.Request, _ *reqInfo) {
	var req gitlab.JobRequest
	if rep := s.decodeJSON(r, &req); rep != nil {
		writeReply(w, rep)
		return
	}
	s.mu.Lock()
	s.lastJobRequest = req
	if _, ok := s.runnerLocked(req.Token); !ok {
		s.mu.Unlock()
		writeReply(w, forbidden())
		return
	}
	var timer *time.Timer
	if s.cfg.longPoll > 0 {
		timer = time.NewTimer(s.cfg.longPoll)
		defer timer.Stop()
	}
	ctx := r.Context()
	for {
		if ctx.Err() == nil {
			if j := s.assignLocked(req.Token); j != nil {
				body := j.raw
				var rep *reply
				if body != nil {
					rep = rawJSONReply(http.StatusCreated, slices.Clone(body))
				} else {
					rep = jsonReply(http.StatusCreated, j.rec.Payload)
				}
				rep.header.Set("X-GitLab-Last-Update", s.lastUpdateLocked())
				s.mu.Unlock()
				writeReply(w, rep)
				return
			}
		}
		if timer == nil || s.closed || ctx.Err() != nil {
			rep := newReply(http.StatusNoContent)
			rep.header.Set("X-GitLab-Last-Update", s.lastUpdateLocked())
			s.mu.Unlock()
			writeReply(w, rep)
			return
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			timer = nil // one last look, then 204
		case <-ctx.Done():
		case <-s.closedCh:
		}
		s.mu.Lock()
	}
}

// jobLocked finds the job of the request; a non-nil reply answers 404.
func (s *Server) jobLocked(ri *reqInfo) (*job, *reply) {
	j, ok := s.jobs[ri.id]
	if !ok {
		return nil, notFound()
	}
	return j, nil
}

// authJobLocked checks a job token and the job's state as GitLab's
// authenticate_job! does: 403 for a bad token, 403 with Job-Status for a
// job that is not running.
func authJobLocked(j *job, tok string) *reply {
	if !j.tokenOK(tok) {
		return forbidden()
	}
	if !j.active() {
		return statusReply(string(j.rec.State))
	}
	return nil
}

// parseContentRange parses "<start>-<end>" (inclusive end, no unit); an
// empty patch at start is "<start>-<start-1>".
func parseContentRange(v string) (start, end int64, ok bool) {
	a, b, found := strings.Cut(v, "-")
	if !found || a == "" || b == "" || strings.TrimLeft(a, "0123456789") != "" {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || end < start-1 {
		return 0, 0, false
	}
	if b[0] == '-' && b != "-1" {
		return 0, 0, false
	}
	return start, end, true
}

// handleTrace answers PATCH jobs/:id/trace.
func (s *Server) handleTrace(w http.ResponseWriter, r *http.Request, ri *reqInfo) {
	body, err := readLimited(r.Body, maxPatch)
	if errors.Is(err, errTooLarge) {
		writeReply(w, errReply(http.StatusRequestEntityTooLarge, "413 Request Entity Too Large"))
		return
	}
	if err != nil {
		writeReply(w, errReply(http.StatusBadRequest, "400 Bad request - cannot read body"))
		return
	}
	writeReply(w, s.trace(r, ri, body))
}

func (s *Server) trace(r *http.Request, ri *reqInfo, body []byte) *reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, rep := s.jobLocked(ri)
	if rep != nil {
		return rep
	}
	s.tokenInQueryLocked(r)
	if rep := authJobLocked(j, r.Header.Get("Job-Token")); rep != nil {
		return rep
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		s.violationLocked("PATCH %s: trace patch without Content-Type", r.URL.Path)
		return errReply(http.StatusBadRequest, "400 Bad request - missing Content-Type")
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/plain" {
		return errReply(http.StatusBadRequest, "400 Bad request - Content-Type must be text/plain")
	}
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return errReply(http.StatusBadRequest, "400 Missing header Content-Range")
	}
	start, end, ok := parseContentRange(cr)
	if !ok {
		return errReply(http.StatusBadRequest, "400 Bad request - malformed Content-Range")
	}
	size := int64(len(j.rec.Trace))
	if start != size {
		rep := errReply(http.StatusRequestedRangeNotSatisfiable, "416 Range Not Satisfiable")
		rep.header.Set("Range", fmt.Sprintf("0-%d", size))
		return rep
	}
	if end != start+int64(len(body))-1 {
		return errReply(http.StatusBadRequest, "400 Bad request - Content-Range does not match the body length")
	}
	if len(body) == 0 {
		s.violationLocked("PATCH %s: empty trace patch", r.URL.Path)
	}
	if len(body) > recommendedPatch {
		s.violationLocked("PATCH %s: trace patch of %d bytes, more than 1 MiB", r.URL.Path, len(body))
	}
	if f := s.takeKindLocked(EndpointTrace, faultDrop); f != nil {
		s.requests[ri.idx].Fault = f.String()
	} else {
		j.rec.Trace = append(j.rec.Trace, body...)
		j.rec.Patches = append(j.rec.Patches, TracePatch{Offset: start, Data: slices.Clone(body), ContentRange: cr})
		s.notifyLocked()
	}
	rep = newReply(http.StatusAccepted)
	rep.header.Set("Range", fmt.Sprintf("0-%d", len(j.rec.Trace)))
	rep.header.Set("Job-Status", string(j.rec.State))
	rep.header.Set("X-GitLab-Trace-Update-Interval", s.traceIntervalHeader())
	return rep
}

// tokenInQueryLocked records a job token passed in the URL, where it ends
// up in access logs.
func (s *Server) tokenInQueryLocked(r *http.Request) {
	q := r.URL.Query()
	for _, k := range []string{"token", "job_token", "private_token"} {
		if q.Has(k) {
			s.violationLocked("%s %s: token passed in the URL query (%s)", r.Method, r.URL.Path, k)
		}
	}
}

// handleUpdate answers PUT jobs/:id.
func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request, ri *reqInfo) {
	var req gitlab.UpdateJobRequest
	if rep := s.decodeJSON(r, &req); rep != nil {
		writeReply(w, rep)
		return
	}
	writeReply(w, s.update(r, ri, req))
}

func (s *Server) update(r *http.Request, ri *reqInfo, req gitlab.UpdateJobRequest) *reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, rep := s.jobLocked(ri)
	if rep != nil {
		return rep
	}
	rec := req
	if req.Output != nil {
		o := *req.Output
		rec.Output = &o
	}
	j.rec.Updates = append(j.rec.Updates, rec)
	s.notifyLocked()
	if req.FailureReason != "" && !slices.Contains(defaultFailureReasons, string(req.FailureReason)) {
		return errReply(http.StatusBadRequest, "400 Bad request - failure_reason does not have a valid value")
	}
	if rep := authJobLocked(j, req.Token); rep != nil {
		return rep
	}
	interval := s.traceIntervalHeader()
	switch req.State {
	case gitlab.StateRunning:
		rep := rawJSONReply(http.StatusOK, []byte("200"))
		rep.header.Set("Job-Status", string(j.rec.State))
		rep.header.Set("X-GitLab-Trace-Update-Interval", interval)
		return rep
	case gitlab.StateSuccess, gitlab.StateFailed:
	default:
		return errReply(http.StatusBadRequest, "400 Bad request - state must be running, success or failed")
	}
	if req.FailureReason != "" && !slices.Contains(alwaysAccepted, req.FailureReason) &&
		!slices.Contains(j.rec.Payload.Features.FailureReasons, string(req.FailureReason)) {
		s.violationLocked("PUT %s: failure_reason %q is not in the job's features.failure_reasons", r.URL.Path, req.FailureReason)
	}
	sum := fmt.Sprintf("crc32:%08x", crc32.ChecksumIEEE(j.rec.Trace))
	size := int64(len(j.rec.Trace))
	bad := req.Checksum != "" && req.Checksum != sum
	if o := req.Output; o != nil {
		bad = bad || (o.Checksum != "" && o.Checksum != sum) || o.Bytesize != size
	}
	if bad {
		// GitLab drops the trace it cannot trust; the runner resends it
		// from offset 0.
		j.rec.Trace = nil
		rep := errReply(http.StatusPreconditionFailed, "412 Precondition Failed - trace validation failed")
		rep.header.Set("X-GitLab-Trace-Update-Interval", interval)
		return rep
	}
	if f := s.takeKindLocked(EndpointUpdate, faultAcceptFinal); f != nil {
		s.requests[ri.idx].Fault = f.String()
		rep := rawJSONReply(http.StatusAccepted, []byte("202"))
		rep.header.Set("Job-Status", string(j.rec.State))
		rep.header.Set("X-GitLab-Trace-Update-Interval", interval)
		return rep
	}
	switch {
	case j.rec.State == gitlab.StateCanceling:
		j.rec.State = gitlab.StateCanceled
	default:
		j.rec.State = req.State
	}
	j.rec.FailureReason = req.FailureReason
	if req.State == gitlab.StateFailed && req.FailureReason == "" {
		j.rec.FailureReason = gitlab.UnknownFailure
	}
	j.rec.ExitCode = req.ExitCode
	s.changedLocked()
	rep = rawJSONReply(http.StatusOK, []byte("200"))
	rep.header.Set("Job-Status", string(j.rec.State))
	rep.header.Set("X-GitLab-Trace-Update-Interval", interval)
	return rep
}

// handleUpload answers POST jobs/:id/artifacts.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request, ri *reqInfo) {
	s.mu.Lock()
	j, rep := s.jobLocked(ri)
	if rep == nil {
		s.tokenInQueryLocked(r)
		rep = authJobLocked(j, r.Header.Get("Job-Token"))
	}
	s.mu.Unlock()
	if rep != nil {
		writeReply(w, rep)
		return
	}
	a, rep := s.readUpload(r)
	if rep != nil {
		writeReply(w, rep)
		return
	}
	s.mu.Lock()
	if rep = authJobLocked(j, r.Header.Get("Job-Token")); rep == nil {
		j.rec.Artifacts = append(j.rec.Artifacts, a)
		s.notifyLocked()
		rep = jsonReply(http.StatusCreated, struct{}{})
	}
	s.mu.Unlock()
	writeReply(w, rep)
}

// readUpload reads and checks the multipart body of an upload.
func (s *Server) readUpload(r *http.Request) (Artifact, *reply) {
	var a Artifact
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return a, errReply(http.StatusBadRequest, "400 Bad request - body must be multipart/form-data")
	}
	fields := map[string]string{}
	limit := s.cfg.maxArtifactSize
	mr := multipart.NewReader(r.Body, params["boundary"])
	haveFile := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a, errReply(http.StatusBadRequest, "400 Bad request - malformed multipart body")
		}
		name := part.FormName()
		switch {
		case name == "file" && !haveFile:
			data, err := readLimited(part, limit)
			if errors.Is(err, errTooLarge) {
				return a, errReply(http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
			}
			if err != nil {
				return a, errReply(http.StatusBadRequest, "400 Bad request - malformed multipart body")
			}
			a.Filename = part.FileName()
			a.Data = data
			haveFile = true
		default:
			data, err := readLimited(part, limit)
			if errors.Is(err, errTooLarge) {
				return a, errReply(http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
			}
			if err != nil {
				return a, errReply(http.StatusBadRequest, "400 Bad request - malformed multipart body")
			}
			if _, ok := fields[name]; !ok && len(data) < 4096 {
				fields[name] = string(data)
			}
		}
		part.Close()
	}
	if !haveFile {
		return a, errReply(http.StatusBadRequest, "400 Bad request - file is missing")
	}
	q := r.URL.Query()
	param := func(k, def string) string {
		if v := q.Get(k); v != "" {
			return v
		}
		if v := fields[k]; v != "" {
			return v
		}
		return def
	}
	a.Format = param("artifact_format", string(gitlab.FormatZip))
	a.Type = param("artifact_type", "archive")
	a.ExpireIn = param("expire_in", "")
	switch gitlab.ArtifactFormat(a.Format) {
	case gitlab.FormatZip, gitlab.FormatGzip, gitlab.FormatRaw:
	default:
		return a, errReply(http.StatusBadRequest, "400 Bad request - artifact_format does not have a valid value")
	}
	if !slices.Contains(artifactTypes, a.Type) {
		return a, errReply(http.StatusBadRequest, "400 Bad request - artifact_type does not have a valid value")
	}
	if a.Format == string(gitlab.FormatZip) {
		if _, err := zip.NewReader(bytes.NewReader(a.Data), int64(len(a.Data))); err != nil {
			return a, errReply(http.StatusBadRequest, "400 Bad request - invalid zip archive")
		}
	}
	return a, nil
}

// handleDownload answers GET jobs/:id/artifacts.
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request, ri *reqInfo) {
	writeReply(w, s.download(r, ri))
}

func (s *Server) download(r *http.Request, ri *reqInfo) *reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, rep := s.jobLocked(ri)
	if rep != nil {
		return rep
	}
	s.tokenInQueryLocked(r)
	tok := r.Header.Get("Job-Token")
	if tok == "" {
		return errReply(http.StatusUnauthorized, "401 Unauthorized")
	}
	allowed := j.active() && j.tokenOK(tok)
	for _, id := range s.order {
		k := s.jobs[id]
		if !allowed && k.active() && k.tokenOK(tok) && slices.Contains(k.deps, j.rec.ID) {
			allowed = true
		}
	}
	if !allowed {
		return forbidden()
	}
	a := j.latestArchive()
	if a == nil {
		return notFound()
	}
	if s.cfg.artifactRedirect {
		key := randomString(32)
		s.storage[key] = a.Data // never modified in place
		rep := newReply(http.StatusFound)
		rep.header.Set("Location", s.storageURL+"/_storage/"+key)
		return rep
	}
	rep = newReply(http.StatusOK)
	rep.header.Set("Content-Type", "application/zip")
	rep.header.Set("Content-Disposition", `attachment; filename="artifacts.zip"`)
	rep.body = slices.Clone(a.Data)
	return rep
}

// handleStorage serves the fake object storage downloads redirect to.
func (s *Server) handleStorage(w http.ResponseWriter, r *http.Request, key string) {
	s.mu.Lock()
	data, ok := s.storage[key]
	var rep *reply
	switch {
	case !ok:
		rep = newReply(http.StatusNotFound)
	case r.Header.Values("Job-Token") != nil:
		s.violationLocked("GET %s: JOB-TOKEN sent to object storage", r.URL.Path)
		rep = newReply(http.StatusBadRequest)
	case r.Header.Values("Private-Token") != nil:
		s.violationLocked("GET %s: PRIVATE-TOKEN sent to object storage", r.URL.Path)
		rep = newReply(http.StatusBadRequest)
	default:
		rep = newReply(http.StatusOK)
		rep.header.Set("Content-Type", "application/zip")
		rep.body = data
	}
	s.mu.Unlock()
	writeReply(w, rep)
}

// handleVerify answers POST runners/verify.
func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request, _ *reqInfo) {
	var req gitlab.VerifyRunnerRequest
	if rep := s.decodeJSON(r, &req); rep != nil {
		writeReply(w, rep)
		return
	}
	s.mu.Lock()
	id, ok := s.runnerLocked(req.Token)
	expires := s.expiresAtLocked(req.Token)
	s.mu.Unlock()
	if !ok {
		writeReply(w, forbidden())
		return
	}
	writeReply(w, jsonReply(http.StatusOK, gitlab.RunnerCredentials{ID: id, Token: req.Token, TokenExpiresAt: expires}))
}

// runnerLocked returns the id of the runner whose authentication token
// is token, if the token is valid (known and not expired).
func (s *Server) runnerLocked(token string) (int64, bool) {
	id, ok := s.runners[token]
	if !ok || token == "" {
		return 0, false
	}
	if exp, ok := s.expires[token]; ok && !s.cfg.now().Before(exp) {
		return 0, false
	}
	return id, true
}

// expiresAtLocked is token's expiry as GitLab writes it, or "".
func (s *Server) expiresAtLocked(token string) string {
	exp, ok := s.expires[token]
	if !ok {
		return ""
	}
	return exp.UTC().Format("2006-01-02T15:04:05.000Z")
}

// handleResetToken answers POST runners/reset_authentication_token: a
// valid token is replaced by a new one (the old one stops working at
// once), which expires after the token lifetime.
func (s *Server) handleResetToken(w http.ResponseWriter, r *http.Request, _ *reqInfo) {
	var req gitlab.VerifyRunnerRequest
	if rep := s.decodeJSON(r, &req); rep != nil {
		writeReply(w, rep)
		return
	}
	s.mu.Lock()
	id, ok := s.runnerLocked(req.Token)
	if !ok {
		s.mu.Unlock()
		writeReply(w, forbidden())
		return
	}
	delete(s.runners, req.Token)
	delete(s.expires, req.Token)
	c := s.addRunnerLocked(id)
	s.mu.Unlock()
	writeReply(w, jsonReply(http.StatusCreated, struct {
		Token          string `json:"token"`
		TokenExpiresAt string `json:"token_expires_at"`
	}{c.Token, c.TokenExpiresAt}))
}

// handleUnregister answers DELETE runners: the runner of a valid token is
// deleted.
func (s *Server) handleUnregister(w http.ResponseWriter, r *http.Request, _ *reqInfo) {
	var req gitlab.VerifyRunnerRequest
	if rep := s.decodeJSON(r, &req); rep != nil {
		writeReply(w, rep)
		return
	}
	s.mu.Lock()
	_, ok := s.runnerLocked(req.Token)
	if ok {
		delete(s.runners, req.Token)
		delete(s.expires, req.Token)
	}
	s.mu.Unlock()
	if !ok {
		writeReply(w, forbidden())
		return
	}
	writeReply(w, newReply(http.StatusNoContent))
}

// RunnerValid reports whether token is a runner authentication token the
// server takes now (known, not reset, unregistered or expired).
func (s *Server) RunnerValid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.runnerLocked(token)
	return ok
}

// newRunner creates a runner and its authentication token.
func (s *Server) newRunner() gitlab.RunnerCredentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.addRunnerLocked(s.nextRunnerID)
	s.nextRunnerID++
	return c
}

// addRunnerLocked makes a new token of runner id.
func (s *Server) addRunnerLocked(id int64) gitlab.RunnerCredentials {
	c := gitlab.RunnerCredentials{ID: id, Token: "glrt-" + randomString(20)}
	s.runners[c.Token] = c.ID
	if s.cfg.tokenLifetime > 0 {
		s.expires[c.Token] = s.cfg.now().Add(s.cfg.tokenLifetime)
		c.TokenExpiresAt = s.expiresAtLocked(c.Token)
	}
	return c
}

// handleRegister answers the legacy POST runners.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request, _ *reqInfo) {
	var req gitlab.RegisterRunnerRequest
	if rep := s.decodeJSON(r, &req); rep != nil {
		writeReply(w, rep)
		return
	}
	if req.Token == "" || req.Token != s.cfg.registrationToken {
		writeReply(w, forbidden())
		return
	}
	writeReply(w, jsonReply(http.StatusCreated, s.newRunner()))
}

// handleCreateRunner answers POST user/runners.
func (s *Server) handleCreateRunner(w http.ResponseWriter, r *http.Request, _ *reqInfo) {
	if tok := r.Header.Get("Private-Token"); tok == "" || tok != s.cfg.accessToken {
		writeReply(w, errReply(http.StatusUnauthorized, "401 Unauthorized"))
		return
	}
	var req gitlab.CreateRunnerRequest
	if rep := s.decodeJSON(r, &req); rep != nil {
		writeReply(w, rep)
		return
	}
	switch req.RunnerType {
	case gitlab.InstanceRunner:
	case gitlab.GroupRunner:
		if req.GroupID == 0 {
			writeReply(w, errReply(http.StatusBadRequest, "400 Bad request - group_id is missing"))
			return
		}
	case gitlab.ProjectRunner:
		if req.ProjectID == 0 {
			writeReply(w, errReply(http.StatusBadRequest, "400 Bad request - project_id is missing"))
			return
		}
	default:
		writeReply(w, errReply(http.StatusBadRequest, "400 Bad request - runner_type does not have a valid value"))
		return
	}
	writeReply(w, jsonReply(http.StatusCreated, s.newRunner()))
}
