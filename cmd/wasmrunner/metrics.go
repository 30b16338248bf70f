package main

import (
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/fleet"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/engine/resource"
)

// metrics are the runner's Prometheus metrics. Names follow the official
// GitLab Runner's where the meaning is the same.
type metrics struct {
	reg         *prometheus.Registry
	running     *prometheus.GaugeVec
	jobsTotal   *prometheus.CounterVec
	failedTotal *prometheus.CounterVec
	finished    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	apiRequests *prometheus.CounterVec
	concurrent  prometheus.Gauge
	compile     *prometheus.HistogramVec
	instantiate *prometheus.HistogramVec
	cuts        *prometheus.CounterVec
	denials     *prometheus.CounterVec
	outlived    *prometheus.GaugeVec
	cacheBytes  *prometheus.GaugeVec
	// runningN is the jobs running, all runners: the saturation gauge reads it.
	runningN atomic.Int64
}

var (
	_ engine.Observer  = runnerObserver{}
	_ modules.Observer = runnerObserver{}
)

func newMetrics(concurrency int) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitlab_runner_jobs", Help: "The number of jobs running now, by runner.",
		}, []string{"runner"}),
		jobsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitlab_runner_jobs_total", Help: "Jobs started, by runner.",
		}, []string{"runner"}),
		failedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitlab_runner_failed_jobs_total", Help: "Jobs that failed, by runner and failure reason.",
		}, []string{"runner", "failure_reason"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmrunner_jobs_finished_total", Help: "Jobs finished, by runner, handler, result and failure reason.",
		}, []string{"runner", "handler", "result", "failure_reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gitlab_runner_job_duration_seconds", Help: "Job durations, by runner.",
			Buckets: []float64{0.1, 0.5, 1, 5, 30, 60, 300, 600, 1800, 3600, 7200},
		}, []string{"runner"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitlab_runner_api_request_statuses_total", Help: "GitLab API requests, by runner, endpoint and status.",
		}, []string{"runner", "endpoint", "status"}),
		concurrent: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitlab_runner_concurrent", Help: "The most jobs run at once.",
		}),
		compile: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wasmrunner_module_compile_seconds", Help: "Time to validate and compile a handler module, by runner and module.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"runner", "module"}),
		instantiate: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wasmrunner_module_instantiate_seconds", Help: "Time to instantiate a handler module for a job, by runner and module.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10),
		}, []string{"runner", "module"}),
		cuts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmrunner_manifest_cuts_total", Help: "Jobs whose handler's manifest asked for more than the operator's policy allows, by runner, handler and manifest key.",
		}, []string{"runner", "handler", "key"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmrunner_resource_denials_total", Help: "Jobs a bound refused something (memory, disk, files, open files, outlived guests), by runner, handler and resource.",
		}, []string{"runner", "handler", "resource"}),
		outlived: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wasmrunner_guests_outlived", Help: "Guests still running after their job ended, by runner and handler (alert on > 0).",
		}, []string{"runner", "handler"}),
		cacheBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wasmrunner_compile_cache_bytes", Help: "Bytes of a runner's compilation cache (compiled handler modules on disk).",
		}, []string{"runner"}),
	}
	// The official runner's labels, but branch (unknown to a build).
	versionInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gitlab_runner_version_info", Help: "The runner's version and build.",
	}, []string{"name", "version", "revision", "built_at", "go_version", "os", "architecture"})
	versionInfo.WithLabelValues("wasmrunner", version, shortRevision(build.revision), build.time,
		runtime.Version(), runtime.GOOS, runtime.GOARCH).Set(1)
	m.concurrent.Set(float64(concurrency))
	// The saturation an autoscaler scales on (deploy/helm): a replica at
	// 1 takes no more jobs, and GitLab's pending ones wait.
	saturation := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wasmrunner_saturation_ratio", Help: "Running jobs, all runners, over concurrency (sum of gitlab_runner_jobs / gitlab_runner_concurrent), 0 to 1.",
	}, func() float64 {
		if concurrency <= 0 {
			return 0
		}
		return float64(m.runningN.Load()) / float64(concurrency)
	})
	m.reg.MustRegister(saturation, m.running, m.jobsTotal, m.failedTotal, m.finished, m.duration, m.apiRequests,
		m.concurrent, m.compile, m.instantiate, m.cuts, m.denials, m.outlived, m.cacheBytes, versionInfo, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// runnerObserver is what one runner reports to: its jobs and its
// handlers' registry.
type runnerObserver struct {
	*metrics
	runner string
}

// forRunner returns the observer of a runner.
func (m *metrics) forRunner(name string) runnerObserver { return runnerObserver{m, name} }

// observers returns the fleet's observers of each runner; sources are the
// metrics of oci:// modules.
func (m *metrics) observers(sources *sourceMetrics) func(string) fleet.Observers {
	return func(runner string) fleet.Observers {
		o := m.forRunner(runner)
		return fleet.Observers{Jobs: o, Modules: o, Source: sources.forRunner(runner),
			Transport: func(next http.RoundTripper) http.RoundTripper {
				return countingTransport{next: next, m: m, runner: runner}
			}}
	}
}

// JobStarted counts a started job.
func (o runnerObserver) JobStarted(engine.JobEvent) {
	o.running.WithLabelValues(o.runner).Inc()
	o.runningN.Add(1)
	o.jobsTotal.WithLabelValues(o.runner).Inc()
}

// JobFinished counts a finished job.
func (o runnerObserver) JobFinished(ev engine.JobEvent) {
	o.running.WithLabelValues(o.runner).Dec()
	o.runningN.Add(-1)
	o.duration.WithLabelValues(o.runner).Observe(ev.Duration.Seconds())
	if ev.FailureReason != "" {
		o.failedTotal.WithLabelValues(o.runner, string(ev.FailureReason)).Inc()
	}
	// The handler version, as the registry's own metrics label it: never
	// the image as written (a registry path or digest per pipeline would
	// make a series each).
	handler := modules.HandlerVersion(ev.Image)
	if handler == "" {
		handler = "default"
	}
	o.finished.WithLabelValues(o.runner, handler, string(ev.State), string(ev.FailureReason)).Inc()
}

// ModuleCompiled records a module's compile time.
func (o runnerObserver) ModuleCompiled(module string, d time.Duration) {
	o.compile.WithLabelValues(o.runner, module).Observe(d.Seconds())
}

// ModuleInstantiated records an instantiation's time.
func (o runnerObserver) ModuleInstantiated(module string, d time.Duration) {
	o.instantiate.WithLabelValues(o.runner, module).Observe(d.Seconds())
}

// ManifestCut counts what a manifest asked for beyond the policy.
func (o runnerObserver) ManifestCut(module string, cuts []resource.Cut) {
	for _, c := range cuts {
		o.cuts.WithLabelValues(o.runner, module, c.Key).Inc()
	}
}

// ResourceDenied counts a refusal of a bound.
func (o runnerObserver) ResourceDenied(module, what string) {
	o.denials.WithLabelValues(o.runner, module, what).Inc()
}

// GuestsOutlived records the guests still running after their jobs.
func (o runnerObserver) GuestsOutlived(module string, running int64) {
	o.outlived.WithLabelValues(o.runner, module).Set(float64(running))
}

// CacheSize records the size of the runner's compilation cache.
func (o runnerObserver) CacheSize(bytes int64) {
	o.cacheBytes.WithLabelValues(o.runner).Set(float64(bytes))
}

// watchFleet exports each serving runner's view of GitLab.
func (m *metrics) watchFleet(f *fleet.Fleet) {
	m.reg.MustRegister(fleetCollector{f: f, desc: prometheus.NewDesc("wasmrunner_gitlab_up",
		"1 while a serving runner's last job request was answered (0: GitLab unreachable or the runner's token rejected; see /readyz), by runner.", []string{"runner"}, nil)})
}

// fleetCollector reads the fleet's runners' health at each scrape.
type fleetCollector struct {
	f    *fleet.Fleet
	desc *prometheus.Desc
}

func (c fleetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c fleetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.f.Status() {
		up := 1.0
		if s.Health == fleet.Unreachable || s.Health == fleet.Rejected {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, up, s.Name)
	}
}

// watchProcess exports the process's budgets.
func (m *metrics) watchProcess(p *resource.Process) {
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	gauge("wasmrunner_guest_memory_bytes", "Guest linear memory and tables in use, all jobs.", func() float64 { return float64(p.Memory.Used()) })
	gauge("wasmrunner_guest_memory_limit_bytes", "The process's guest memory budget.", func() float64 { return float64(p.Memory.Limit()) })
	gauge("wasmrunner_guest_open_files", "Descriptors guests hold, all jobs.", func() float64 { return float64(p.OpenFiles.Used()) })
	gauge("wasmrunner_guest_open_files_limit", "The process's budget of guest descriptors.", func() float64 { return float64(p.OpenFiles.Limit()) })
	gauge("wasmrunner_instances", "Guest instances alive.", func() float64 { return float64(p.Instances.InUse()) })
	gauge("wasmrunner_instances_limit", "The most guest instances alive at once.", func() float64 { return float64(p.Instances.Cap()) })
	gauge("wasmrunner_job_slots_used", "Job slots in use (jobs and job requests), all runners.", func() float64 { return float64(p.Jobs.InUse()) })
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// transport counts GitLab API requests by endpoint and status.
type countingTransport struct {
	next   http.RoundTripper
	m      *metrics
	runner string
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
	}
	t.m.apiRequests.WithLabelValues(t.runner, endpointOf(req), status).Inc()
	return resp, err
}

// endpointOf names the runner API call of a request.
func endpointOf(req *http.Request) string {
	p := req.URL.Path
	i := strings.Index(p, "/api/v4/")
	if i < 0 {
		return "other"
	}
	parts := strings.Split(strings.Trim(p[i+len("/api/v4/"):], "/"), "/")
	switch {
	case len(parts) == 2 && parts[0] == "jobs" && parts[1] == "request":
		return "request_job"
	case len(parts) == 2 && parts[0] == "runners" && parts[1] == "verify":
		return "verify_runner"
	case len(parts) == 1 && parts[0] == "runners":
		return "register_runner"
	case len(parts) == 2 && parts[0] == "user" && parts[1] == "runners":
		return "create_runner"
	case len(parts) == 2 && parts[0] == "jobs" && req.Method == http.MethodPut:
		return "update_job"
	case len(parts) == 3 && parts[0] == "jobs" && parts[2] == "trace":
		return "patch_trace"
	case len(parts) == 3 && parts[0] == "jobs" && parts[2] == "artifacts" && req.Method == http.MethodPost:
		return "upload_artifacts"
	case len(parts) == 3 && parts[0] == "jobs" && parts[2] == "artifacts":
		return "download_artifacts"
	}
	return "other"
}
