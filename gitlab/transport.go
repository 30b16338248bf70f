package gitlab

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// TLSOptions say how a GitLab server's certificate is checked and which
// client certificate is shown to it: GitLab Runner's tls-ca-file,
// tls-cert-file and tls-key-file.
type TLSOptions struct {
	// CAFile holds PEM certificates trusted besides the system's (a
	// self-signed GitLab, or a private CA).
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for a
	// GitLab (or a proxy in front of it) that asks for one. The files are
	// read again when they change, so a renewed certificate is used
	// without a restart.
	CertFile, KeyFile string
}

// TransportOptions configure [NewTransport].
type TransportOptions struct {
	TLS TLSOptions
	// Proxy picks the proxy of a request; nil: the HTTPS_PROXY,
	// HTTP_PROXY and NO_PROXY environment variables (and their lower-case
	// forms), read when the transport is made.
	Proxy func(*http.Request) (*url.URL, error)
	// MaxIdleConnsPerHost is how many idle connections to GitLab are kept
	// for reuse; default 100 (GitLab is one host, asked by every job).
	MaxIdleConnsPerHost int
	// IdleConnTimeout closes connections idle that long; default 90 s.
	IdleConnTimeout time.Duration
	// KeepAlive is the TCP keep-alive period; default 30 s.
	KeepAlive time.Duration
}

// NewTransport returns the HTTP transport of a GitLab client: the system's
// CAs and opts.TLS.CAFile's are trusted, opts.TLS's client certificate is
// shown when the server asks for one, requests go through the proxy the
// environment names, and connections are pooled.
func NewTransport(opts TransportOptions) (*http.Transport, error) {
	if (opts.TLS.CertFile == "") != (opts.TLS.KeyFile == "") {
		return nil, errors.New("gitlab: a TLS client certificate needs both a certificate file and a key file")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.TLS.CAFile != "" {
		pem, err := os.ReadFile(opts.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("gitlab: TLS CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("gitlab: TLS CA file %s: no PEM certificate in it", opts.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if opts.TLS.CertFile != "" {
		kp := &keyPair{cert: opts.TLS.CertFile, key: opts.TLS.KeyFile}
		if _, err := kp.get(); err != nil {
			return nil, err
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	if opts.Proxy == nil {
		proxy := httpproxy.FromEnvironment().ProxyFunc()
		opts.Proxy = func(r *http.Request) (*url.URL, error) { return proxy(r.URL) }
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.IdleConnTimeout, 90*time.Second)
	def(&opts.KeepAlive, 30*time.Second)
	if opts.MaxIdleConnsPerHost <= 0 {
		opts.MaxIdleConnsPerHost = 100
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: opts.KeepAlive}
	return &http.Transport{
		Proxy:                 opts.Proxy,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(100, opts.MaxIdleConnsPerHost),
		MaxIdleConnsPerHost:   opts.MaxIdleConnsPerHost,
		IdleConnTimeout:       opts.IdleConnTimeout,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}, nil
}

// keyPair is a client certificate read from files, read again when either
// file changes.
type keyPair struct {
	cert, key string

	mu    sync.Mutex
	stamp [2]fileStamp
	pair  *tls.Certificate
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// get returns the certificate, reading the files when they changed since
// the last reading. A renewed pair that cannot be read keeps the last one
// good.
func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cs, err1 := stampOf(k.cert)
	ks, err2 := stampOf(k.key)
	if err := errors.Join(err1, err2); err != nil {
		if k.pair != nil {
			return k.pair, nil
		}
		return nil, fmt.Errorf("gitlab: TLS client certificate: %w", err)
	}
	if k.pair != nil && k.stamp == [2]fileStamp{cs, ks} {
		return k.pair, nil
	}
	pair, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.pair != nil {
			return k.pair, nil
		}
		return nil, fmt.Errorf("gitlab: TLS client certificate: %w", err)
	}
	k.pair, k.stamp = &pair, [2]fileStamp{cs, ks}
	return k.pair, nil
}
