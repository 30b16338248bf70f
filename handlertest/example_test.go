package handlertest_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/wasmrunner/wasmrunner/handlertest"
)

// A test of the shell handler: its job runs through the engine against a
// fake GitLab. In a test, handlertest.Load(t, "shell.wasm") does what Open
// and Close do here.
func Example() {
	ctx := context.Background()
	wasm, err := os.ReadFile("../examples/modules/shell.wasm")
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := handlertest.Open(ctx, wasm, handlertest.Name("shell"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	res, err := r.Run(ctx, handlertest.Job{
		Script:    []string{`echo "hello $WHO, the token is $TOKEN"`, `echo hi > out.txt`},
		Variables: []handlertest.Variable{handlertest.Var("WHO", "world"), handlertest.MaskedVar("TOKEN", "s3cret-value")},
		Artifacts: []string{"out.txt"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.State, res.ExitCode)
	for _, line := range strings.Split(res.Log, "\n") {
		if strings.HasPrefix(line, "hello") {
			fmt.Println(line)
		}
	}
	fmt.Printf("out.txt: %q\n", res.Artifacts["out.txt"])
	// Output:
	// success 0
	// hello world, the token is [MASKED]
	// out.txt: "hi\n"
}
