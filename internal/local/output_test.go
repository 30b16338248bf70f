package local

import (
	"bytes"
	"testing"
)

func TestOutput(t *testing.T) {
	write := func(o *Output) {
		o.Start(1, "a", "\x1b[1mJob \"a\"\x1b[0m\n")
		o.Start(2, "b", "\x1b[1mJob \"b\"\x1b[0m\n")
		o.Write(1, []byte("section_start:1796458224:step_script\r\x1b[0K\x1b[36;1mstep\x1b[0;m\na1\na"))
		o.Write(2, []byte("b1\n"))
		o.Write(1, []byte("2\n"))
		o.Printf("\x1b[33;1mSkipping job %q\x1b[0;m\n", "c")
		o.Write(2, []byte("b2 no newline"))
		o.End(2)
		o.Write(1, []byte("section_end:1796458224:step_script\r\x1b[0K"))
		o.End(1)
	}
	tests := []struct {
		style Style
		color bool
		want  string
	}{
		{Raw, false, "Job \"a\"\nJob \"b\"\nstep\na1\nab1\n2\nSkipping job \"c\"\nb2 no newline"},
		{Prefix, false, "Job \"a\"\nJob \"b\"\na | step\na | a1\nb | b1\na | a2\nSkipping job \"c\"\nb | b2 no newline\n"},
		{Group, false, "Skipping job \"c\"\nJob \"b\"\nb1\nb2 no newline\nJob \"a\"\nstep\na1\na2\n"},
		{Prefix, true, "\x1b[1mJob \"a\"\x1b[0m\n\x1b[1mJob \"b\"\x1b[0m\n\x1b[36ma\x1b[0m | \x1b[36;1mstep\x1b[0;m\n\x1b[36ma\x1b[0m | a1\n\x1b[36mb\x1b[0m | b1\n\x1b[36ma\x1b[0m | a2\n\x1b[33;1mSkipping job \"c\"\x1b[0;m\n\x1b[36mb\x1b[0m | b2 no newline\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		write(NewOutput(&buf, tt.style, tt.color))
		if buf.String() != tt.want {
			t.Errorf("%s color=%v:\n%q\nwant\n%q", tt.style, tt.color, buf.String(), tt.want)
		}
	}
	if _, err := ParseStyle("fancy"); err == nil {
		t.Error("ParseStyle(fancy) succeeded")
	}
}
