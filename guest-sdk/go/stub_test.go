//go:build !wasip1

package wasmrunner

import (
	"fmt"
	"strings"
	"testing"
)

func TestHostPanicsWithoutFake(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "GOOS=wasip1") || !strings.Contains(fmt.Sprint(p), "sdktest") {
			t.Errorf("recovered %v", p)
		}
	}()
	otherHost{}.IsCanceled()
}
