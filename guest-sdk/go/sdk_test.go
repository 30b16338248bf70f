package wasmrunner

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestSplitList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a\x00b", []string{"a", "b"}},
		{"bin/tool\x00readme.md\x00x", []string{"bin/tool", "readme.md", "x"}},
		{"a\x00\x00b", []string{"a", "", "b"}},
		{"a\x00", []string{"a", ""}},
		{"\x00", []string{"", ""}},
	}
	for _, tt := range tests {
		if got := splitList([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.in, got, tt.want)
		}
	}
}

// fakeOutput is a host function with output whose result is s (or an
// error code), recording the capacities it was called with.
type fakeOutput struct {
	results []string // the result of each call; the last one repeats
	code    int32
	caps    []int
}

func (f *fakeOutput) call(buf []byte) int32 {
	f.caps = append(f.caps, len(buf))
	if f.code < 0 {
		return f.code
	}
	s := f.results[min(len(f.caps), len(f.results))-1]
	if len(s) <= len(buf) {
		copy(buf, s)
	}
	return int32(len(s))
}

func TestReadGrowing(t *testing.T) {
	long := strings.Repeat("x", 1000)
	tests := []struct {
		name     string
		first    int
		f        fakeOutput
		want     string
		wantErr  error
		wantCaps []int
	}{
		{"fits", 256, fakeOutput{results: []string{"value"}}, "value", nil, []int{256}},
		{"exactly fits", 5, fakeOutput{results: []string{"value"}}, "value", nil, []int{5}},
		{"empty", 256, fakeOutput{results: []string{""}}, "", nil, []int{256}},
		{"grows once to the exact size", 256, fakeOutput{results: []string{long}}, long, nil, []int{256, 1000}},
		{"asks the length first", 0, fakeOutput{results: []string{long}}, long, nil, []int{0, 1000}},
		{"error", 256, fakeOutput{code: int32(ErrNotFound)}, "", ErrNotFound, []int{256}},
		{"result grew between calls", 4, fakeOutput{results: []string{"12345", "1234567", "1234567"}}, "1234567", nil, []int{4, 5, 7}},
		{"result keeps growing", 1, fakeOutput{results: []string{"12", "123", "1234", "12345", "123456"}}, "", ErrTooLarge, []int{1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readGrowing(tt.first, tt.f.call)
			if string(got) != tt.want || err != tt.wantErr {
				t.Errorf("got %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
			if !reflect.DeepEqual(tt.f.caps, tt.wantCaps) {
				t.Errorf("capacities %v, want %v", tt.f.caps, tt.wantCaps)
			}
		})
	}
}

func TestErrno(t *testing.T) {
	err := fmt.Errorf("polling: %w", Errno(-7))
	if !errors.Is(err, ErrCanceled) || errors.Is(err, ErrIO) {
		t.Errorf("errors.Is on %v", err)
	}
	var e Errno
	if !errors.As(err, &e) || e != ErrCanceled {
		t.Errorf("errors.As: %v", e)
	}
	for code, want := range map[Errno]string{
		ErrFault: "fault", ErrTooLarge: "too large", ErrNotFound: "not found", ErrInvalid: "invalid",
		ErrPhase: "wrong phase", ErrDenied: "denied", ErrCanceled: "canceled", ErrIO: "i/o error", -99: "error -99",
	} {
		if code.Error() != "wasmrunner: "+want {
			t.Errorf("%d: %q", int32(code), code.Error())
		}
	}
	if status(0) != nil || status(1) != nil || status(-3) != ErrNotFound {
		t.Error("status")
	}
}
