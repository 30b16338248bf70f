package handlertest

import "testing"

func TestPlain(t *testing.T) {
	trace := "\x1b[1;36mRunning with wasmrunner\x1b[0;m\r\n" +
		"section_start:1700000000:step_script\r\x1b[0K\x1b[36;1mExecuting \"step_script\"\x1b[0;m\n" +
		"\x1b[32;1m$ echo hi\x1b[0;m\nhi\n" +
		"section_start:1700000001:inner[collapsed=true]\r\x1b[0K\x1b[36;1mInner\x1b[0;m\n" +
		"inside\n" +
		"section_end:1700000002:inner\r\x1b[0K\n" +
		"section_end:1700000003:step_script\r\x1b[0K\n" +
		"progress 50%\rprogress 100%\n"
	want := "Running with wasmrunner\nExecuting \"step_script\"\n$ echo hi\nhi\nInner\ninside\nprogress 50%\rprogress 100%\n"
	if got := plain([]byte(trace)); got != want {
		t.Errorf("plain:\n%q\nwant\n%q", got, want)
	}
}
