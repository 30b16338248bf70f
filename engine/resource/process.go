//go:build unix

package resource

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/wasmrunner/wasmrunner/internal/units"
)

// Process holds the budgets every job of the process draws from. Make one
// per process with [NewProcess] and give it to every runner and registry.
type Process struct {
	// Jobs bounds the jobs running at once across all runners.
	Jobs *Slots
	// Instances bounds the guest instances alive at once.
	Instances *Slots
	// Compiles bounds the module compilations at once.
	Compiles *Slots
	// Compile bounds each module's size and each compilation's memory and
	// time.
	Compile CompileLimits
	// Memory bounds the bytes of guest linear memory and tables.
	Memory *Pool
	// OpenFiles bounds the descriptors guests hold.
	OpenFiles *Pool
	// Stop says how steps that must end are ended.
	Stop Stop
}

// ProcessConfig sets the process's budgets; zero fields take defaults.
type ProcessConfig struct {
	// Jobs is the most jobs at once; default the number of CPUs.
	Jobs int
	// Instances is the most guest instances alive at once; default
	// 2 x Jobs.
	Instances int
	// Compiles is the most compilations at once; default 1 (each may use
	// up to Compile.Memory).
	Compiles int
	// Compile bounds module sizes and each compilation; zero fields take
	// defaults.
	Compile CompileLimits
	// Memory is the bytes of guest memory; default half of the memory
	// available to the process (physical, or its cgroup's limit).
	Memory int64
	// OpenFiles is the descriptors guests may hold; default half of the
	// process's descriptor limit, leaving the rest to the runner.
	OpenFiles int64
	// Stop sets timings; zero fields take defaults.
	Stop Stop
}

// NewProcess returns the budgets cfg describes.
func NewProcess(cfg ProcessConfig) *Process {
	if cfg.Jobs <= 0 {
		cfg.Jobs = runtime.NumCPU()
	}
	if cfg.Instances <= 0 {
		cfg.Instances = 2 * cfg.Jobs
	}
	if cfg.Compiles <= 0 {
		cfg.Compiles = 1
	}
	if cfg.Memory <= 0 {
		cfg.Memory = AvailableMemory() / 2
	}
	if cfg.OpenFiles <= 0 {
		cfg.OpenFiles = FileLimit() / 2
	}
	return &Process{
		Jobs:      NewSlots("job slots", cfg.Jobs),
		Instances: NewSlots("instance slots", cfg.Instances),
		Compiles:  NewSlots("compilation slots", cfg.Compiles),
		Compile:   cfg.Compile.WithDefaults(),
		Memory:    NewPool(fmt.Sprintf("the process's guest memory budget of %s (all jobs)", units.FormatSize(cfg.Memory)), cfg.Memory, nil),
		OpenFiles: NewPool(fmt.Sprintf("the process's budget of %d open files (all jobs)", cfg.OpenFiles), cfg.OpenFiles, nil),
		Stop:      cfg.Stop.WithDefaults(),
	}
}

// DescriptorsPerJob is how many descriptors a running job holds besides
// its guest's own files: its build dir's root, its guest's pre-opened
// directory, and its share of the connections to GitLab.
const DescriptorsPerJob = 3

// FilesFor reports whether the process's descriptor limit leaves room
// for jobs running at once: half of it is the guests' budget (see
// ProcessConfig.OpenFiles), and the other half must hold what the jobs
// hold on the host (DescriptorsPerJob each) and 256 more for the runner.
// It returns what that takes and the limit.
func FilesFor(jobs int) (ok bool, need, limit int64) {
	limit = FileLimit()
	need = 2 * (int64(jobs)*DescriptorsPerJob + 256)
	return need <= limit, need, limit
}

// FileLimit returns the process's descriptor limit (Go raises the soft
// limit to the hard one at start-up).
func FileLimit() int64 {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || r.Cur <= 0 || r.Cur > 1<<30 {
		return 1024
	}
	return int64(r.Cur)
}
