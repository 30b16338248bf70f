//go:build !wasip1

package wasmrunner

// Outside a WebAssembly guest there is no host: every call panics, so that
// a handler run natively by mistake fails loudly instead of seeing an
// empty job.
type stubHost struct{}

var host hostABI = stubHost{}

const notWasm = "wasmrunner: host functions exist only in a WebAssembly handler (GOOS=wasip1 GOARCH=wasm, run by wasmrunner)"

func (stubHost) logWrite([]byte) int32                      { panic(notWasm) }
func (stubHost) logLine([]byte) int32                       { panic(notWasm) }
func (stubHost) sectionStart(string, string) int32          { panic(notWasm) }
func (stubHost) sectionEnd(string) int32                    { panic(notWasm) }
func (stubHost) jobID() int64                               { panic(notWasm) }
func (stubHost) jobProjectID() int64                        { panic(notWasm) }
func (stubHost) jobTimeout() int64                          { panic(notWasm) }
func (stubHost) jobString(int32, []byte) int32              { panic(notWasm) }
func (stubHost) phase() int32                               { panic(notWasm) }
func (stubHost) scriptCount() int32                         { panic(notWasm) }
func (stubHost) scriptLine(int32, []byte) int32             { panic(notWasm) }
func (stubHost) varGet(string, []byte) int32                { panic(notWasm) }
func (stubHost) varMasked(string) int32                     { panic(notWasm) }
func (stubHost) varNames([]byte) int32                      { panic(notWasm) }
func (stubHost) depCount() int32                            { panic(notWasm) }
func (stubHost) depID(int32) int64                          { panic(notWasm) }
func (stubHost) depName(int32, []byte) int32                { panic(notWasm) }
func (stubHost) depFiles(int32, []byte) int32               { panic(notWasm) }
func (stubHost) depFileSize(int32, string) int64            { panic(notWasm) }
func (stubHost) depRead(int32, string, int64, []byte) int32 { panic(notWasm) }
func (stubHost) artifactAddFile(string) int32               { panic(notWasm) }
func (stubHost) artifactAddData(string, []byte) int32       { panic(notWasm) }
func (stubHost) sleepMillis(int64) int32                    { panic(notWasm) }
func (stubHost) isCanceled() int32                          { panic(notWasm) }
func (stubHost) httpRequest([]byte, []byte) int32           { panic(notWasm) }
func (stubHost) httpResponse([]byte) int32                  { panic(notWasm) }
