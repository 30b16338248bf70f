package resource_test

import (
	"testing"

	"github.com/wasmrunner/wasmrunner/engine/resource"
)

// FilesFor leaves half the descriptor limit to the guests' budget and
// wants DescriptorsPerJob for each job in the other half.
func TestFilesFor(t *testing.T) {
	limit := resource.FileLimit()
	fit := int((limit/2 - 256) / resource.DescriptorsPerJob)
	for _, tc := range []struct {
		jobs int
		ok   bool
	}{{1, limit >= 2*(resource.DescriptorsPerJob+256)}, {fit, true}, {fit + 1, false}, {10 * fit, false}} {
		ok, need, l := resource.FilesFor(tc.jobs)
		if ok != tc.ok || l != limit || need != 2*(int64(tc.jobs)*resource.DescriptorsPerJob+256) {
			t.Errorf("FilesFor(%d) = %v, %d, %d; want %v with limit %d", tc.jobs, ok, need, l, tc.ok, limit)
		}
	}
}
