package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/internal/ocisource"
)

// runnerModules is a runner's modules dir: the dir it names, or the pulled
// artifact of an oci:// reference.
type runnerModules struct {
	dir  string
	src  *ocisource.Source // nil: a plain dir
	done chan struct{}     // closed when watch's loop ends
}

// openModules returns the runner's modules dir. For an oci:// reference
// it waits until a version is had (pulled, or the last good one in the
// cache), retrying with backoff until ctx ends: a runner takes no job
// before it has its handlers.
func (f *Fleet) openModules(ctx context.Context, o Runner, obs ocisource.Observer, logger *slog.Logger) (*runnerModules, error) {
	if !ocisource.IsRef(o.Modules) {
		return &runnerModules{dir: o.Modules}, nil
	}
	src, err := ocisource.New(o.Modules, ocisource.Options{
		CacheDir: filepath.Join(f.cfg.CacheDir, "oci", CacheName(o.Name)),
		Interval: o.Registry.PullInterval, MaxModuleSize: f.cfg.Process.Compile.MaxModuleSize, MaxTotalSize: o.CacheMax,
		Access: ocisource.Access{AuthFile: o.Registry.AuthFile, Insecure: o.Registry.Insecure,
			UserAgent: fmt.Sprintf("wasmrunner %s (%s; %s/%s)", f.cfg.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)},
		Logger: logger, Observer: obs,
	})
	if err != nil {
		return nil, err
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = time.Second, max(o.Registry.PullInterval, time.Second)
	for {
		err := src.Start(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			src.Close()
			return nil, ctx.Err()
		}
		wait := b.NextBackOff()
		logger.Error("runner waiting for its handlers: pulling them failed", "modules", o.Modules, "error", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			src.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	return &runnerModules{dir: src.Dir(), src: src}, nil
}

// watch keeps an oci:// modules dir in line with its tag until ctx ends,
// reloading reg after each swap.
func (m *runnerModules) watch(ctx context.Context, reg *modules.Registry) {
	if m.src == nil {
		return
	}
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		m.src.Run(ctx, reg.Reload)
	}()
}

// close releases the pulled artifact once watch's loop has ended.
func (m *runnerModules) close() {
	if m.src == nil {
		return
	}
	if m.done != nil {
		<-m.done
	}
	m.src.Close()
}
