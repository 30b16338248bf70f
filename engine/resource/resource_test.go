package resource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPoolParentBoundsChild(t *testing.T) {
	proc := NewPool("process", 100, nil)
	a := NewPool("job a", 80, proc)
	b := NewPool("job b", 80, proc)

	if got := a.Take(50); got != 50 {
		t.Fatalf("a.Take(50) = %d", got)
	}
	// b is bounded by the process's room (50), not its own 80.
	if got := b.Take(70); got != 50 {
		t.Fatalf("b.Take(70) = %d, want 50", got)
	}
	if by, ok := b.Refused(); !ok || by != proc {
		t.Fatalf("b refused by %v, %v; want the process pool", by, ok)
	}
	if _, ok := a.Refused(); ok {
		t.Fatal("a was never refused")
	}
	// a is bounded by its own limit first.
	a.Give(50)
	b.Give(50)
	if got := a.Take(90); got != 80 {
		t.Fatalf("a.Take(90) = %d, want 80", got)
	}
	if by, _ := a.Refused(); by != a {
		t.Fatalf("a refused by %s, want itself", by.Name())
	}
	if proc.Used() != 80 {
		t.Fatalf("process used %d, want 80", proc.Used())
	}
}

func TestPoolGiveNeverBelowZero(t *testing.T) {
	proc := NewPool("process", 100, nil)
	a := NewPool("a", Unlimited, proc)
	b := NewPool("b", Unlimited, proc)
	a.Take(10)
	b.Take(60)
	// a gives back more than it took: only its 10 reach the process, so
	// b's share stays charged.
	a.Give(1000)
	if a.Used() != 0 || proc.Used() != 60 {
		t.Fatalf("a used %d, process used %d; want 0 and 60", a.Used(), proc.Used())
	}
	if got := a.Take(100); got != 40 {
		t.Fatalf("a.Take(100) = %d, want 40", got)
	}
}

func TestPoolTakeAll(t *testing.T) {
	p := NewPool("p", 10, nil)
	if !p.TakeAll(6) || p.TakeAll(6) || p.Used() != 6 {
		t.Fatalf("TakeAll: used %d", p.Used())
	}
	var nilPool *Pool
	if !nilPool.TakeAll(1 << 40) {
		t.Fatal("a nil pool bounds nothing")
	}
}

func TestPoolConcurrent(t *testing.T) {
	proc := NewPool("process", 1000, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := int64(0)
	for i := 0; i < 8; i++ {
		job := NewPool(fmt.Sprint("job", i), 300, proc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(0)
			for j := 0; j < 1000; j++ {
				n += job.Take(3)
				if j%3 == 0 {
					job.Give(2)
					n -= min(2, n)
				}
			}
			if job.Used() > 300 {
				t.Errorf("job used %d > 300", job.Used())
			}
			mu.Lock()
			total += job.Used()
			mu.Unlock()
		}()
	}
	wg.Wait()
	if proc.Used() != total || total > 1000 {
		t.Fatalf("process used %d, jobs %d", proc.Used(), total)
	}
}

func TestSlots(t *testing.T) {
	s := NewSlots("instance slots", 1)
	ctx := context.Background()
	if err := s.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if s.TryAcquire() {
		t.Fatal("second slot")
	}
	cctx, cancel := context.WithCancelCause(ctx)
	cancel(errors.New("job canceled"))
	err := s.Acquire(cctx)
	if err == nil || !strings.Contains(err.Error(), "instance slots") || !strings.Contains(err.Error(), "job canceled") {
		t.Fatalf("Acquire after cancel: %v", err)
	}
	s.Release()
	if !s.TryAcquire() || s.InUse() != 1 {
		t.Fatal("slot not freed")
	}
}

func TestPolicyApply(t *testing.T) {
	asked := Limits{
		Memory: 1 << 30, Disk: 10 << 30, Files: 5, OpenFiles: 100000, Timeout: 2 * time.Hour,
		Log: 1 << 30, Instances: 100, CPU: CPUUninterrupted,
		HTTP: HTTPLimits{Allow: []string{"*", "api.example.com", "169.254.169.254", "127.0.0.1:8080"}, Timeout: time.Hour, MaxResponse: 1 << 30},
	}
	tests := []struct {
		name    string
		policy  Policy
		handler string
		want    func(Limits) string // "" when as expected
		cuts    []string
	}{
		{
			name: "defaults are ceilings", handler: "h",
			want: func(l Limits) string {
				if l.Memory != DefaultMemory || l.Disk != DefaultDisk || l.Files != 5 || l.OpenFiles != DefaultOpenFiles ||
					l.CPU != CPUInterrupt || l.Timeout != 2*time.Hour || l.Log != 1<<30 || l.Instances != 100 ||
					l.HTTP.Timeout != DefaultHTTPTimeout || l.HTTP.MaxResponse != DefaultHTTPMaxResponse ||
					strings.Join(l.HTTP.Allow, ",") != "api.example.com,127.0.0.1:8080" {
					return fmt.Sprintf("%+v", l)
				}
				return ""
			},
			cuts: []string{"limits.memory 1GiB -> 128MiB", "limits.disk 10GiB -> 1GiB", "limits.open_files 100000 -> 256",
				"http.max_body 1GiB -> 10MiB", "http.timeout 1h0m0s -> 30s", "limits.cpu uninterrupted -> interrupt (the handler is not trusted)",
				"http.allow [*, api.example.com, 169.254.169.254, 127.0.0.1:8080] -> [api.example.com, 127.0.0.1:8080] (outside the operator's allow-list: *, 169.254.169.254)"},
		},
		{
			name:    "operator ceilings",
			policy:  Policy{Max: Limits{Memory: 2 << 30, Timeout: time.Hour, Log: 1 << 20, Instances: 4}, Trusted: []string{"fast"}, HTTPAllow: []string{"*.example.com", "127.0.0.0/8"}},
			handler: "fast",
			want: func(l Limits) string {
				if l.Memory != 1<<30 || l.Timeout != time.Hour || l.Log != 1<<20 || l.Instances != 4 || l.CPU != CPUUninterrupted ||
					strings.Join(l.HTTP.Allow, ",") != "api.example.com,127.0.0.1:8080" {
					return fmt.Sprintf("%+v", l)
				}
				return ""
			},
			cuts: []string{"limits.disk 10GiB -> 1GiB", "limits.open_files 100000 -> 256", "http.max_body 1GiB -> 10MiB",
				"limits.log 1GiB -> 1MiB", "limits.timeout 2h0m0s -> 1h0m0s", "http.timeout 1h0m0s -> 30s", "limits.instances 100 -> 4",
				"http.allow [*, api.example.com, 169.254.169.254, 127.0.0.1:8080] -> [api.example.com, 127.0.0.1:8080] (outside the operator's allow-list: *, 169.254.169.254)"},
		},
		{
			name: "star ceiling", policy: Policy{HTTPAllow: []string{"*"}}, handler: "h",
			want: func(l Limits) string {
				if len(l.HTTP.Allow) != 4 {
					return fmt.Sprint(l.HTTP.Allow)
				}
				return ""
			},
		},
		{
			name: "no HTTP", policy: Policy{HTTPAllow: []string{}}, handler: "h",
			want: func(l Limits) string {
				if len(l.HTTP.Allow) != 0 {
					return fmt.Sprint(l.HTTP.Allow)
				}
				return ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cuts := tt.policy.Apply(tt.handler, asked)
			if msg := tt.want(got); msg != "" {
				t.Errorf("limits: %s", msg)
			}
			if tt.cuts != nil {
				var s []string
				for _, c := range cuts {
					s = append(s, c.String())
				}
				if strings.Join(s, "\n") != strings.Join(tt.cuts, "\n") {
					t.Errorf("cuts:\n%s\nwant:\n%s", strings.Join(s, "\n"), strings.Join(tt.cuts, "\n"))
				}
			}
		})
	}
}

func TestPolicyNarrowsDefaults(t *testing.T) {
	var p Policy
	got, cuts := p.Apply("h", Limits{Memory: 1 << 20, Disk: 1 << 20})
	if len(cuts) != 0 || got.Memory != 1<<20 || got.Disk != 1<<20 || got.Files != DefaultFiles {
		t.Fatalf("%+v %v", got, cuts)
	}
	// A higher ceiling does not raise what a manifest leaves unset, and a
	// lower one lowers it.
	p = Policy{Max: Limits{Memory: 2 << 30, Disk: 1 << 20}}
	got, cuts = p.Apply("h", Limits{})
	if len(cuts) != 0 || got.Memory != DefaultMemory || got.Disk != 1<<20 {
		t.Fatalf("%+v %v", got, cuts)
	}
}

func TestVariableHidden(t *testing.T) {
	p := Policy{Expose: []string{"CI_JOB_TOKEN"}, Hide: []string{"DEPLOY_*"}}
	for name, want := range map[string]bool{
		"CI_JOB_TOKEN": false, "CI_REPOSITORY_URL": true, "DEPLOY_KEY": true, "CI_JOB_ID": false,
	} {
		if got := p.VariableHidden(name); got != want {
			t.Errorf("%s hidden = %v, want %v", name, got, want)
		}
	}
	var def Policy
	if !def.VariableHidden("CI_JOB_TOKEN") {
		t.Error("the job token is visible by default")
	}
}

func TestHostPattern(t *testing.T) {
	tests := []struct {
		in, str, err string
	}{
		{in: "Example.COM.", str: "example.com"},
		{in: "example.com:8080", str: "example.com:8080"},
		{in: "*.example.com", str: "*.example.com"},
		{in: "*", str: "*"},
		{in: "10.0.0.0/8", str: "10.0.0.0/8"},
		{in: "10.1.2.3/8", str: "10.0.0.0/8"},
		{in: "127.0.0.1:18080", str: "127.0.0.1:18080"},
		{in: "[::1]:80", str: "[::1]:80"},
		{in: "::ffff:10.0.0.1", str: "10.0.0.1"},
		{in: "http://127.0.0.1:18080", err: "not a URL"},
		{in: "example.com:0", err: "bad port"},
		{in: "*.com", err: "needs a domain"},
		{in: "exa mple.com", err: "not a host name"},
		{in: "", err: "empty"},
		{in: "fe80::1%eth0", err: "zones"},
	}
	for _, tt := range tests {
		p, err := ParseHostPattern(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || p.String() != tt.str {
			t.Errorf("%q: %q, %v; want %q", tt.in, p, err, tt.str)
		}
	}
}

func TestHostPatternContains(t *testing.T) {
	tests := []struct {
		outer, inner string
		want         bool
	}{
		{"*", "anything.example", true},
		{"*.example.com", "api.example.com", true},
		{"*.example.com", "a.b.example.com:443", true},
		{"*.example.com", "*.example.com", true},
		{"*.example.com", "*.sub.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "*", false},
		{"example.com", "example.com:443", true},
		{"example.com:443", "example.com", false},
		{"10.0.0.0/8", "10.1.0.0/16", true},
		{"10.0.0.0/8", "10.1.2.3:80", true},
		{"10.0.0.0/16", "10.0.0.0/8", false},
		{"10.0.0.0/8", "ten.example", false},
		{"example.com", "10.0.0.1", false},
	}
	for _, tt := range tests {
		o, err1 := ParseHostPattern(tt.outer)
		i, err2 := ParseHostPattern(tt.inner)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if got := o.Contains(i); got != tt.want {
			t.Errorf("%s contains %s = %v", tt.outer, tt.inner, got)
		}
	}
}

func FuzzHostPattern(f *testing.F) {
	for _, s := range []string{"example.com", "*.example.com:80", "10.0.0.0/8", "[::1]:443", "*", "1.2.3.4"} {
		f.Add(s, "api.example.com")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		p, err := ParseHostPattern(a)
		if err != nil {
			return
		}
		q, err := ParseHostPattern(p.String())
		if err != nil || q != p {
			t.Fatalf("%q -> %q does not parse back the same: %v", a, p, err)
		}
		if !p.Contains(p) {
			t.Fatalf("%q does not contain itself", a)
		}
		if r, err := ParseHostPattern(b); err == nil && p.Contains(r) {
			if pr, ok := r.Prefix(); ok {
				if !p.Any() && !p.MatchAddr(pr.Addr(), r.Port()) && (r.Port() != "" || p.Port() == "") {
					t.Fatalf("%q contains %q but does not match its address", a, b)
				}
			}
		}
	})
}
