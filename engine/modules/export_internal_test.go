package modules

// StartsFromSnapshot reports whether the jobs of the loaded module key
// start from a snapshot (for the external tests).
func StartsFromSnapshot(r *Registry, key string) bool {
	m := loadedModule(r, key)
	return m != nil && m.start != nil && m.start.snap != nil
}

// NoSnapshotReason is why the loaded module key has no snapshot.
func NoSnapshotReason(r *Registry, key string) string {
	m := loadedModule(r, key)
	switch {
	case m == nil:
		return "not loaded"
	case m.start == nil:
		return "not eligible"
	}
	return m.start.why
}

func loadedModule(r *Registry, key string) *module {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.modules[key]
}

// MapsDataImage reports whether the instances of the loaded module key
// map its data segments from an image (a module that is not a Go reactor).
func MapsDataImage(r *Registry, key string) bool {
	m := loadedModule(r, key)
	return m != nil && m.start != nil && m.start.dataOnly && m.start.snap != nil
}
