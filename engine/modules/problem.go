package modules

import (
	"errors"
	"strings"
)

// Problem is something wrong with a module, its manifest, the modules
// dir or the registry's configuration, as `wasmrunner modules check`
// reports it. A module with a problem may still load (its Problems say
// what its jobs will run into); every problem fails the check.
type Problem struct {
	// Code is stable, for scripts (docs/modules-check.md lists them).
	Code string `json:"code"`
	// Message says what is wrong and how to fix it.
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Message }

// Problem codes.
const (
	// Files and names.
	CodeFile              = "file"        // the file cannot be read: a link out of the dir, a FIFO, too large...
	CodeFileName          = "file_name"   // a name that is almost a module's or manifest's
	CodeBadVersion        = "bad_version" // NAME@TAG.wasm with a tag that cannot be
	CodeManifestNoModule  = "manifest_without_module"
	CodeManifestNameCase  = "manifest_name_case" // NAME.toml differs from the module's name by case only
	CodeManifest          = "manifest"           // the manifest does not parse or has a bad value
	CodeHTTPAllowDropped  = "http_allow_dropped" // the policy dropped every [http] allow entry
	CodeNotLoadedYet      = "not_loaded_yet"     // loading was cut short
	CodeUnknownHandler    = "unknown_handler"    // handlers names no module
	CodeUnknownDefault    = "unknown_default_handler"
	CodeDefaultNotAllowed = "default_handler_not_in_handlers"

	// The module itself.
	CodeInvalid         = "invalid_module"    // not valid WebAssembly, or refused by wasmbin
	CodeImport          = "import"            // imports something the host does not have
	CodeExport          = "export"            // an export missing or of the wrong signature
	CodeGoCommand       = "go_command"        // Go built without -buildmode=c-shared
	CodeCommandWithStep = "command_with_step" // wasmrunner_step and _start without _initialize
	CodeNoInitialize    = "no_initialize"     // a reactor whose runtime or constructors are never initialized
	CodeMemory          = "memory"            // its memory or tables do not fit its memory limit
	CodeCompile         = "compile"           // compiling failed or passed its bounds
)

// problems is a list of problems that is an error.
type problems []Problem

func (ps problems) Error() string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Message
	}
	return strings.Join(msgs, "; ")
}

// problemsOf explains a module's load error as problems.
func problemsOf(err error) []Problem {
	var ps problems
	if errors.As(err, &ps) {
		return ps
	}
	code := CodeCompile
	var le *loadError
	var fe *fileError
	switch {
	case errors.As(err, &le) && le.code != "":
		code = le.code
	case isTransient(err):
		code = CodeNotLoadedYet
	case errors.As(err, &fe):
		code = CodeFile
	case errors.Is(err, ErrInvalidModule):
		code = CodeInvalid
	}
	// "invalid module: " says nothing the code does not.
	return []Problem{{Code: code, Message: strings.TrimPrefix(err.Error(), ErrInvalidModule.Error()+": ")}}
}
