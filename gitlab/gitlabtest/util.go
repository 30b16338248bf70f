package gitlabtest

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// reply is an answer computed under the server's lock and written after
// it is released.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func newReply(status int) *reply {
	return &reply{status: status, header: make(http.Header)}
}

// jsonReply answers v encoded as JSON.
func jsonReply(status int, v any) *reply {
	rep := newReply(status)
	body, err := json.Marshal(v)
	if err != nil {
		return errReply(http.StatusInternalServerError, "500 Internal Server Error")
	}
	rep.header.Set("Content-Type", "application/json")
	rep.body = body
	return rep
}

// rawJSONReply answers body, which the caller vouches is JSON (or wants
// sent as if it were).
func rawJSONReply(status int, body []byte) *reply {
	rep := newReply(status)
	rep.header.Set("Content-Type", "application/json")
	rep.body = body
	return rep
}

// errReply answers GitLab's error shape, {"message": msg}.
func errReply(status int, msg string) *reply {
	return jsonReply(status, map[string]string{"message": msg})
}

// forbidden is GitLab's 403 for a bad token.
func forbidden() *reply { return errReply(http.StatusForbidden, "403 Forbidden") }

// statusReply is GitLab's job_forbidden!: a 403 naming the job's state.
func statusReply(state string) *reply {
	rep := errReply(http.StatusForbidden, "403 Forbidden - Job is not running")
	rep.header.Set("Job-Status", state)
	return rep
}

func writeReply(w http.ResponseWriter, rep *reply) {
	h := w.Header()
	for k, vs := range rep.header {
		h[k] = vs
	}
	if rep.status == http.StatusNoContent || rep.status == http.StatusNotModified || rep.status < 200 {
		rep.body = nil // no body allowed
		h.Del("Content-Type")
	}
	if rep.body != nil {
		h.Set("Content-Length", strconv.Itoa(len(rep.body)))
	}
	w.WriteHeader(rep.status)
	if rep.body != nil {
		_, _ = w.Write(rep.body)
	}
}

// maxJSONBody bounds the JSON request bodies the server reads.
const maxJSONBody = 1 << 20

var errTooLarge = errors.New("body too large")

// readLimited reads at most limit bytes of r; more is errTooLarge.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errTooLarge
	}
	return data, nil
}

// decodeJSON decodes the JSON body of r into v: one JSON value and nothing
// after it. A reply is returned when the body is unacceptable. A missing
// or other Content-Type than application/json is recorded as a violation.
func (s *Server) decodeJSON(r *http.Request, v any) *reply {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.violation("%s %s: Content-Type %q, want application/json", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	data, err := readLimited(r.Body, maxJSONBody)
	if errors.Is(err, errTooLarge) {
		return errReply(http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
	}
	if err != nil {
		return errReply(http.StatusBadRequest, "400 Bad request - cannot read body")
	}
	// Unmarshal decodes data in place (a Decoder would copy it first) and
	// refuses anything after the value.
	if err := json.Unmarshal(data, v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) && strings.HasSuffix(syn.Error(), "after top-level value") {
			return errReply(http.StatusBadRequest, "400 Bad request - trailing data after JSON body")
		}
		return errReply(http.StatusBadRequest, "400 Bad request - malformed JSON body")
	}
	return nil
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomString returns n random alphanumeric characters.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}

// randomHex returns n random lower-case hex digits.
func randomHex(n int) string {
	const hex = "0123456789abcdef"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = hex[b[i]&15]
	}
	return string(b)
}
