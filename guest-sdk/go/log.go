package wasmrunner

import (
	"fmt"
	"io"
)

// Log is the job log as an io.Writer, for fmt.Fprintf, log.New and the
// like. Everything written to it is masked (masked variables, tokens)
// before it leaves the runner.
var Log io.Writer = logWriter{}

type logWriter struct{}

func (logWriter) Write(p []byte) (int, error) {
	if err := writeLog(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeLog appends p to the job log, in pieces the host accepts.
func writeLog(p []byte) error {
	for len(p) > 0 {
		n := min(len(p), MaxLogWrite)
		if err := status(host.LogWrite(p[:n])); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// writeLine appends p and a newline to the job log; one call if p fits,
// so that nothing else written to the log comes between them.
func writeLine(p []byte) error {
	for len(p) > MaxLogWrite {
		if err := status(host.LogWrite(p[:MaxLogWrite])); err != nil {
			return err
		}
		p = p[MaxLogWrite:]
	}
	return status(host.LogLine(p))
}

// Print writes its operands to the job log, as fmt.Print formats them.
func Print(a ...any) { _ = writeLog([]byte(fmt.Sprint(a...))) }

// Printf writes to the job log as fmt.Printf formats; add "\n" to end a
// line.
func Printf(format string, a ...any) { _ = writeLog([]byte(fmt.Sprintf(format, a...))) }

// Println writes its operands and a newline to the job log, as fmt.Println
// formats them.
func Println(a ...any) {
	s := fmt.Sprintln(a...)
	_ = writeLine([]byte(s[:len(s)-1]))
}

// Section runs fn inside a collapsible section of the job log: name
// identifies the section (letters, digits, '_', '-', '.'), header is the
// line shown when it is collapsed. The section is closed also when fn
// panics.
func Section(name, header string, fn func()) {
	_ = status(host.SectionStart(name, header))
	defer host.SectionEnd(name)
	fn()
}
