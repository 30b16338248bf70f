log() { echo "[$1] ${*:2}"; }
is_semver() {
  [[ "$1" =~ ^v?[0-9]+\.[0-9]+\.[0-9]+$ ]]
}
for v in v1.2.3 1.0.0 1.0 latest; do
  if is_semver "$v"; then log INFO "$v is a release"; else log WARN "$v is not a release"; fi
done
