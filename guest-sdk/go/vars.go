package wasmrunner

// Variable is a job variable the handler may see.
type Variable struct {
	Name, Value string
	// Masked reports whether the value is masked in the job log.
	Masked bool
}

// Var returns the value of the job variable name and whether the handler
// may see it (it exists and the handler's manifest allows it). When a name
// is defined more than once, the last definition wins, as in GitLab.
func Var(name string) (string, bool) {
	s, err := readString(func(buf []byte) int32 { return host.VarGet(name, buf) })
	return s, err == nil
}

// Variables returns the job variables the handler may see, in the job's
// order, each name once.
func Variables() []Variable {
	names, err := readGrowing(4096, host.VarNames)
	if err != nil {
		return nil
	}
	var vars []Variable
	for _, name := range splitList(names) {
		value, ok := Var(name)
		if !ok {
			continue
		}
		vars = append(vars, Variable{Name: name, Value: value, Masked: host.VarMasked(name) == 1})
	}
	return vars
}
