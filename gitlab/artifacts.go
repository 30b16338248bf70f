package gitlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ArtifactUpload names and describes one artifacts upload.
type ArtifactUpload struct {
	// Name is the artifact's name ("artifacts" when empty); the uploaded
	// file name gets the format's extension (.zip, .gz) unless Filename is set.
	Name string
	// Filename overrides the file name of the multipart part.
	Filename string
	// Format is zip (the default), gzip or raw.
	Format ArtifactFormat
	// Type is the artifact type ("archive" when empty), e.g. "junit".
	Type string
	// ExpireIn is how long GitLab keeps the artifact, e.g. "1 day"; empty
	// leaves GitLab's default.
	ExpireIn string
}

func (u ArtifactUpload) filename() string {
	if u.Filename != "" {
		return filepath.Base(u.Filename)
	}
	name := filepath.Base(u.Name)
	if u.Name == "" || name == "." || name == "/" {
		name = "artifacts"
	}
	switch u.format() {
	case FormatZip:
		if !strings.HasSuffix(name, ".zip") {
			name += ".zip"
		}
	case FormatGzip:
		if !strings.HasSuffix(name, ".gz") {
			name += ".gz"
		}
	}
	return name
}

func (u ArtifactUpload) format() ArtifactFormat {
	if u.Format == "" {
		return FormatZip
	}
	return u.Format
}

// maxUploadRedirects bounds how many 307 replies an upload follows.
const maxUploadRedirects = 5

// UploadArtifact uploads size bytes of content as a job artifact (POST
// jobs/:id/artifacts), streamed as multipart/form-data with one part named
// "file". Options travel as query parameters, as the official runner sends
// them. A 307 is followed to its Location; transport errors and 5xx replies
// are retried by reading content again from the start. 413 (too large) and
// 403 are final: errors matching [ErrTooLarge] and [ErrForbidden].
func (c *Client) UploadArtifact(ctx context.Context, jobID int64, jobToken string, up ArtifactUpload, content io.ReaderAt, size int64) error {
	q := url.Values{}
	q.Set("artifact_format", string(up.format()))
	typ := up.Type
	if typ == "" {
		typ = "archive"
	}
	q.Set("artifact_type", typ)
	if up.ExpireIn != "" {
		q.Set("expire_in", up.ExpireIn)
	}
	filename := up.filename()
	target := "jobs/" + strconv.FormatInt(jobID, 10) + "/artifacts"
	for redirects := 0; ; redirects++ {
		cl := call{
			op:     fmt.Sprintf("upload artifacts of job %d", jobID),
			method: http.MethodPost,
			target: target,
			query:  q,
			header: http.Header{"Job-Token": {jobToken}, "Accept": {"application/json"}},
			body: func() (io.Reader, string, error) {
				r, ct := multipartStream(filename, io.NewSectionReader(content, 0, size))
				return r, ct, nil
			},
			secrets:          []string{jobToken},
			noAttemptTimeout: true,
		}
		resp, attempts, err := c.send(ctx, cl)
		if err != nil {
			return err
		}
		switch resp.StatusCode {
		case http.StatusCreated, http.StatusOK:
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
			resp.Body.Close()
			return nil
		case http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			loc, lerr := resp.Location()
			resp.Body.Close()
			if lerr != nil || (loc.Scheme != "http" && loc.Scheme != "https") {
				return fmt.Errorf("gitlab: %s: %w: redirect without a valid Location", cl.op, ErrUnexpectedReply)
			}
			if redirects >= maxUploadRedirects {
				return fmt.Errorf("gitlab: %s: %w: more than %d redirects", cl.op, ErrUnexpectedReply, maxUploadRedirects)
			}
			// Upload again, same body and token, to where GitLab sent us;
			// the query travels in the new location.
			q = loc.Query()
			loc.RawQuery = ""
			target = loc.String()
		default:
			return c.statusError(cl, resp, attempts)
		}
	}
}

// multipartStream returns a reader producing a multipart/form-data body
// with content as the part "file", and its content type. The body is
// produced by a goroutine as it is read; it ends when the reader is
// drained or closed.
func multipartStream(filename string, content io.Reader) (io.ReadCloser, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("file", filename)
		if err == nil {
			_, err = io.Copy(part, content)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, mw.FormDataContentType()
}

// DownloadArtifact streams the artifacts archive of job jobID (a
// dependency) to w (GET jobs/:id/artifacts), authenticating with token, the
// token the job payload gives for that dependency. Redirects (e.g. to
// object storage) are followed without the token. 401, 403 and 404 are
// final. Failures before any byte is written are retried; a failure
// mid-stream is returned, since w cannot be rewound (use
// [Client.DownloadArtifactToFile] for a retried, atomic download). It
// returns the number of bytes written.
func (c *Client) DownloadArtifact(ctx context.Context, jobID int64, token string, w io.Writer) (int64, error) {
	return c.download(ctx, jobID, token, w, 0)
}

// download is DownloadArtifact refusing, with ErrTooLarge, an archive of
// more than max bytes (0: any size) before or while it arrives.
func (c *Client) download(ctx context.Context, jobID int64, token string, w io.Writer, max int64) (int64, error) {
	cl := c.downloadCall(jobID, token)
	resp, attempts, err := c.send(ctx, cl)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, c.statusError(cl, resp, attempts)
	}
	if max > 0 && resp.ContentLength > max {
		return 0, fmt.Errorf("gitlab: %s: %w: the archive has %d bytes, more than %d", cl.op, ErrTooLarge, resp.ContentLength, max)
	}
	body := io.Reader(resp.Body)
	if max > 0 {
		body = io.LimitReader(resp.Body, max+1)
	}
	n, err := io.Copy(w, body)
	if err == nil && max > 0 && n > max {
		return n, fmt.Errorf("gitlab: %s: %w: the archive has more than %d bytes", cl.op, ErrTooLarge, max)
	}
	if err != nil {
		if ctx.Err() != nil {
			return n, c.stopped(ctx, cl, attempts, err)
		}
		return n, fmt.Errorf("gitlab: %s: %w: after %d bytes: %s", cl.op, ErrTransport, n, redact(err.Error(), token))
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("gitlab: %s: %w: got %d of %d bytes", cl.op, ErrTransport, n, resp.ContentLength)
	}
	return n, nil
}

// DownloadArtifactToFile downloads job jobID's artifacts archive to path.
// It writes a temporary file beside path and renames it into place only
// when the download is complete, retrying failures mid-stream within the
// client's retry policy, so path holds a whole archive or nothing new. An
// archive of more than max bytes (0: any size) is refused with
// ErrTooLarge, and nothing is left behind.
func (c *Client) DownloadArtifactToFile(ctx context.Context, jobID int64, token, path string, max int64) (int64, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".part-*")
	if err != nil {
		return 0, fmt.Errorf("gitlab: download artifacts of job %d: %w", jobID, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	var n int64
	for attempt := 1; ; attempt++ {
		if _, err = tmp.Seek(0, io.SeekStart); err == nil {
			err = tmp.Truncate(0)
		}
		if err != nil {
			return 0, fmt.Errorf("gitlab: download artifacts of job %d: %w", jobID, err)
		}
		n, err = c.download(ctx, jobID, token, tmp, max)
		if err == nil {
			break
		}
		// Only a stream cut short is retried here; everything else was
		// already retried (or is final) inside DownloadArtifact.
		var se *StatusError
		if errors.As(err, &se) || !errors.Is(err, ErrTransport) || n == 0 || ctx.Err() != nil || attempt >= c.retry.MaxAttempts {
			return 0, err
		}
		c.logger.LogAttrs(ctx, slog.LevelWarn, "artifact download cut short, retrying", slog.Int64("job", jobID), slog.Int("attempt", attempt))
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("gitlab: download artifacts of job %d: %w", jobID, err)
	}
	f := tmp
	tmp = nil
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return 0, fmt.Errorf("gitlab: download artifacts of job %d: %w", jobID, err)
	}
	return n, nil
}

func (c *Client) downloadCall(jobID int64, token string) call {
	return call{
		op:               fmt.Sprintf("download artifacts of job %d", jobID),
		method:           http.MethodGet,
		target:           "jobs/" + strconv.FormatInt(jobID, 10) + "/artifacts",
		header:           http.Header{"Job-Token": {token}},
		secrets:          []string{token},
		noAttemptTimeout: true,
	}
}
