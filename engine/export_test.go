package engine

// SetHostFault makes fault fail the host-side write steps of r's jobs
// (see Runner.hostWrite) it returns an error for. Call it before Run.
func SetHostFault(r *Runner, fault func(step string) error) { r.hostFault = fault }
