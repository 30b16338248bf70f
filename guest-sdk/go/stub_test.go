//go:build !wasip1

package wasmrunner

import (
	"fmt"
	"strings"
	"testing"
)

func TestStubHostPanics(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "GOOS=wasip1") {
			t.Errorf("recovered %v", p)
		}
	}()
	stubHost{}.isCanceled()
}
