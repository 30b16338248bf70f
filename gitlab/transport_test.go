package gitlab_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// testCA is a self-signed CA that issues server and client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wasmrunner test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate and its key, PEM-encoded.
func (ca *testCA) issue(t *testing.T, serial int64, name string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tlsGitLab is a fake GitLab behind an HTTPS server with a certificate of
// ca that requires a client certificate of ca; it records the serial
// numbers of the client certificates it saw.
func tlsGitLab(t *testing.T, ca *testCA) (*gitlabtest.Server, *httptest.Server, func() []int64) {
	t.Helper()
	gl := gitlabtest.NewServer()
	t.Cleanup(gl.Close)
	target, _ := url.Parse(gl.URL)
	var mu sync.Mutex
	var serials []int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		serials = append(serials, r.TLS.PeerCertificates[0].SerialNumber.Int64())
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	certPEM, keyPEM := ca.issue(t, 100, "gitlab", x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return gl, srv, func() []int64 {
		mu.Lock()
		defer mu.Unlock()
		return append([]int64(nil), serials...)
	}
}

// TestTransportTLS: a GitLab with a self-signed CA that requires a client
// certificate is reached with tls_ca_file and tls_cert_file/tls_key_file,
// and not without them; a renewed client certificate is picked up.
func TestTransportTLS(t *testing.T) {
	ca := newCA(t)
	gl, srv, serials := tlsGitLab(t, ca)
	dir := t.TempDir()
	caFile := writeFile(t, filepath.Join(dir, "ca.pem"), ca.pem)
	certPEM, keyPEM := ca.issue(t, 201, "runner", x509.ExtKeyUsageClientAuth)
	certFile := writeFile(t, filepath.Join(dir, "client.pem"), certPEM)
	keyFile := writeFile(t, filepath.Join(dir, "client.key"), keyPEM)
	otherCA := newCA(t)
	otherFile := writeFile(t, filepath.Join(dir, "other.pem"), otherCA.pem)

	verify := func(rt http.RoundTripper) error {
		c, err := gitlab.New(srv.URL, gitlab.WithHTTPClient(&http.Client{Transport: rt}), gitlab.WithRetryPolicy(gitlab.RetryPolicy{MaxAttempts: 1, AttemptTimeout: 10 * time.Second}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.VerifyRunner(context.Background(), gl.RunnerToken, "s_0123456789ab")
		return err
	}
	for _, tc := range []struct {
		name string
		opts gitlab.TLSOptions
		want string // "" for success; else in the error
	}{
		{"CA and client certificate", gitlab.TLSOptions{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, ""},
		{"no CA: the server is not trusted", gitlab.TLSOptions{CertFile: certFile, KeyFile: keyFile}, "certificate signed by unknown authority"},
		{"another CA", gitlab.TLSOptions{CAFile: otherFile, CertFile: certFile, KeyFile: keyFile}, "certificate signed by unknown authority"},
		{"no client certificate", gitlab.TLSOptions{CAFile: caFile}, "certificate required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := gitlab.NewTransport(gitlab.TransportOptions{TLS: tc.opts})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.CloseIdleConnections()
			err = verify(rt)
			if tc.want == "" && err != nil {
				t.Fatalf("verify: %v", err)
			}
			if tc.want != "" && (err == nil || !errors.Is(err, gitlab.ErrTransport) || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("verify: %v, want a transport error with %q", err, tc.want)
			}
		})
	}

	// The certificate is renewed in place: new connections show the new one.
	rt, err := gitlab.NewTransport(gitlab.TransportOptions{TLS: gitlab.TLSOptions{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}})
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(rt); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM = ca.issue(t, 202, "runner", x509.ExtKeyUsageClientAuth)
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	// A later mtime even on filesystems with coarse timestamps.
	later := time.Now().Add(time.Minute)
	os.Chtimes(certFile, later, later)
	os.Chtimes(keyFile, later, later)
	rt.CloseIdleConnections()
	if err := verify(rt); err != nil {
		t.Fatal(err)
	}
	got := serials()
	if len(got) < 2 || got[len(got)-2] != 201 || got[len(got)-1] != 202 {
		t.Errorf("client certificates seen: %v, want ... 201, 202", got)
	}
}

func TestNewTransportErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := writeFile(t, filepath.Join(dir, "ca.txt"), []byte("not a certificate"))
	ca := newCA(t)
	certPEM, _ := ca.issue(t, 5, "runner", x509.ExtKeyUsageClientAuth)
	cert := writeFile(t, filepath.Join(dir, "c.pem"), certPEM)
	_, otherKey := ca.issue(t, 6, "runner", x509.ExtKeyUsageClientAuth)
	wrongKey := writeFile(t, filepath.Join(dir, "k.pem"), otherKey)
	for _, tc := range []struct {
		name string
		opts gitlab.TLSOptions
		want string
	}{
		{"missing CA file", gitlab.TLSOptions{CAFile: filepath.Join(dir, "nope.pem")}, "no such file"},
		{"CA file without PEM", gitlab.TLSOptions{CAFile: notPEM}, "no PEM certificate"},
		{"certificate without key", gitlab.TLSOptions{CertFile: cert}, "both a certificate file and a key file"},
		{"key without certificate", gitlab.TLSOptions{KeyFile: wrongKey}, "both a certificate file and a key file"},
		{"key of another certificate", gitlab.TLSOptions{CertFile: cert, KeyFile: wrongKey}, "private key does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gitlab.NewTransport(gitlab.TransportOptions{TLS: tc.opts})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewTransport: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestTransportProxy: HTTP_PROXY sends requests through the proxy;
// NO_PROXY names hosts reached directly.
func TestTransportProxy(t *testing.T) {
	gl := gitlabtest.NewServer()
	defer gl.Close()
	target, _ := url.Parse(gl.URL)
	var mu sync.Mutex
	var seen []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Host)
		mu.Unlock()
		// gitlab.internal is known only to the proxy.
		if r.URL.Hostname() != "gitlab.internal" {
			http.Error(w, "unknown host", http.StatusBadGateway)
			return
		}
		r.URL.Scheme, r.URL.Host = target.Scheme, target.Host
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	defer proxy.Close()
	port := target.Port()
	url := "http://gitlab.internal:" + port
	verify := func() error {
		rt, err := gitlab.NewTransport(gitlab.TransportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := gitlab.New(url, gitlab.WithHTTPClient(&http.Client{Transport: rt}), gitlab.WithRetryPolicy(gitlab.RetryPolicy{MaxAttempts: 1, AttemptTimeout: 10 * time.Second}))
		_, err = c.VerifyRunner(context.Background(), gl.RunnerToken, "s_0123456789ab")
		return err
	}
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	if err := verify(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	mu.Lock()
	n := len(seen)
	mu.Unlock()
	if n != 1 {
		t.Errorf("the proxy saw %d requests, want 1", n)
	}
	t.Setenv("NO_PROXY", "gitlab.internal")
	t.Setenv("no_proxy", "gitlab.internal")
	if err := verify(); err == nil || !errors.Is(err, gitlab.ErrTransport) {
		t.Errorf("with NO_PROXY: %v, want a transport error (the host is not resolvable without the proxy)", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Errorf("NO_PROXY's host went through the proxy")
	}
}
