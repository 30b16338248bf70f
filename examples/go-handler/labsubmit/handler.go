package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	wasmrunner "github.com/wasmrunner/wasmrunner/guest-sdk/go"
)

// pollInterval is how often wait asks the service for news.
const pollInterval = 200 * time.Millisecond

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUnknown = 127
)

// handler holds one job's state: the service and the remote job it
// submitted. Each job gets a fresh instance, so a fresh handler.
type handler struct {
	base    string // $LAB_URL without a trailing slash
	id      string // the remote job, once submitted
	running bool   // the remote job was submitted and has not finished
}

func (h *handler) Step(script []string, phase wasmrunner.Phase) int {
	if phase == wasmrunner.PhaseAfterScript && h.running {
		// The script stopped while the remote job ran (a graceful cancel
		// or a failure): it is not wanted any more.
		h.cancelRemote()
	}
	for _, line := range script {
		if wasmrunner.Canceled() {
			h.cancelRemote()
			return exitFailed
		}
		code, err := h.run(line)
		if errors.Is(err, wasmrunner.ErrCanceled) {
			wasmrunner.Println("labsubmit: the job was canceled")
			h.cancelRemote()
			return exitFailed
		}
		if err != nil {
			wasmrunner.Printf("\x1b[31;1mlabsubmit: %s: %v\x1b[0;m\n", line, err)
		}
		if code != exitOK {
			return code
		}
	}
	return exitOK
}

// Cleanup cancels a remote job that is still running when the GitLab job
// ends: after a cancel, a timeout or a failed step.
func (h *handler) Cleanup() {
	if h.running {
		h.cancelRemote()
	}
}

// run runs one script line.
func (h *handler) run(line string) (int, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
		return exitOK, nil
	}
	cmd, args := fields[0], fields[1:]
	one := func() (string, error) {
		if len(args) != 1 {
			return "", fmt.Errorf("%s takes one argument", cmd)
		}
		return args[0], nil
	}
	var err error
	switch cmd {
	case "noop":
		wasmrunner.Println("ok")
		return exitOK, nil
	case "submit":
		var file string
		if file, err = one(); err == nil {
			err = h.submit(file)
		}
	case "wait":
		if len(args) != 0 {
			err = errors.New("wait takes no arguments")
			break
		}
		return h.wait()
	case "fetch":
		var name string
		if name, err = one(); err == nil {
			err = h.fetch(name)
		}
	default:
		wasmrunner.Printf("\x1b[31;1mlabsubmit: unknown command %q (want submit FILE, wait, fetch NAME or noop)\x1b[0;m\n", cmd)
		return exitUnknown, nil
	}
	if err != nil {
		return exitFailed, err
	}
	return exitOK, nil
}

// service returns $LAB_URL.
func (h *handler) service() (string, error) {
	if h.base == "" {
		v, ok := wasmrunner.Var("LAB_URL")
		if !ok || v == "" {
			return "", errors.New("the job sets no LAB_URL variable")
		}
		h.base = strings.TrimRight(v, "/")
	}
	return h.base, nil
}

// call sends a request to the service and returns the body of a 2xx
// response.
func (h *handler) call(method, rel string, body []byte) ([]byte, error) {
	base, err := h.service()
	if err != nil {
		return nil, err
	}
	req := &wasmrunner.Request{Method: method, URL: base + rel, Body: body}
	if body != nil {
		req.Header = wasmrunner.Header{"Content-Type": {"application/octet-stream"}}
	}
	resp, err := wasmrunner.HTTP(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, req.URL, err)
	}
	if resp.Status < 200 || resp.Status > 299 {
		return nil, &statusError{method, req.URL, resp.Status, resp.Body}
	}
	return resp.Body, nil
}

func (h *handler) submit(file string) error {
	if h.running {
		return fmt.Errorf("job %s is still running: wait for it first", h.id)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	body, err := h.call("POST", "/jobs", data)
	if err != nil {
		return err
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &created); err != nil || created.ID == "" {
		return fmt.Errorf("the service answered %s, not a job id", snippet(body))
	}
	h.id, h.running = created.ID, true
	wasmrunner.Printf("labsubmit: submitted %s (%d bytes) as job %s\n", file, len(data), h.id)
	return nil
}

// wait follows the remote job until it ends, printing its log.
func (h *handler) wait() (int, error) {
	if h.id == "" {
		return exitFailed, errors.New("nothing submitted")
	}
	offset := 0
	var code int
	wasmrunner.Section("lab_job", "Remote job "+h.id, func() {
		code = h.follow(&offset)
	})
	return code, nil
}

func (h *handler) follow(offset *int) int {
	jobURL := "/jobs/" + url.PathEscape(h.id)
	for {
		if wasmrunner.Canceled() {
			h.cancelRemote()
			return exitFailed
		}
		body, err := h.call("GET", jobURL, nil)
		if err == nil {
			var st struct {
				Status string `json:"status"`
			}
			if err = json.Unmarshal(body, &st); err == nil {
				// The log after the status: it has every line written
				// before the job ended.
				if err = h.drainLog(jobURL, offset); err == nil {
					switch st.Status {
					case "done":
						h.running = false
						wasmrunner.Printf("labsubmit: job %s is done\n", h.id)
						return exitOK
					case "failed", "canceled":
						h.running = false
						wasmrunner.Printf("\x1b[31;1mlabsubmit: job %s %s\x1b[0;m\n", h.id, st.Status)
						return exitFailed
					}
				}
			}
		}
		if errors.Is(err, wasmrunner.ErrCanceled) {
			h.cancelRemote()
			return exitFailed
		}
		if err != nil {
			// A hiccup of the service: report it and keep polling.
			slog.Warn("labsubmit: polling the lab failed, retrying", "job", h.id, "error", err)
		}
		if err := wasmrunner.Sleep(pollInterval); err != nil {
			h.cancelRemote()
			return exitFailed
		}
	}
}

// drainLog prints the remote log from *offset on.
func (h *handler) drainLog(jobURL string, offset *int) error {
	body, err := h.call("GET", jobURL+"/log?offset="+strconv.Itoa(*offset), nil)
	if err != nil {
		return err
	}
	if len(body) > 0 {
		*offset += len(body)
		if _, err := wasmrunner.Log.Write(body); err != nil {
			return err
		}
	}
	return nil
}

func (h *handler) fetch(name string) error {
	if h.id == "" {
		return errors.New("nothing submitted")
	}
	body, err := h.call("GET", "/jobs/"+url.PathEscape(h.id)+"/result", nil)
	if err != nil {
		return err
	}
	if dir := path.Dir(name); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(name, body, 0o644); err != nil {
		return err
	}
	if err := wasmrunner.AddArtifactFile(name); err != nil {
		return fmt.Errorf("adding %s to the artifacts: %w", name, err)
	}
	wasmrunner.Printf("labsubmit: fetched the result of job %s to %s (%d bytes)\n", h.id, name, len(body))
	return nil
}

// cancelRemote asks the service to cancel a remote job that is still
// running. The job counts as cancelled once the service answered; until
// then a later step or Cleanup tries again. Right after a cancel or a
// timeout the runner may cut the request short (ErrCanceled).
func (h *handler) cancelRemote() {
	if !h.running {
		return
	}
	wasmrunner.Printf("labsubmit: canceling job %s\n", h.id)
	_, err := h.call("DELETE", "/jobs/"+url.PathEscape(h.id), nil)
	var status *statusError
	if err == nil || errors.As(err, &status) && status.code == 404 {
		h.running = false
		return
	}
	slog.Warn("labsubmit: canceling the lab job failed", "job", h.id, "error", err)
}

// statusError is a response of the service with a status other than 2xx.
type statusError struct {
	method, url string
	code        int
	body        []byte
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.method, e.url, e.code, snippet(e.body))
}

// snippet returns the start of a response body for an error message.
func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "..."
	}
	return strconv.Quote(string(b))
}
