ls missing-dir 2>&1 | sed 's/^/log: /' || true
{ echo to-out; echo to-err >&2; } 2>/dev/null
