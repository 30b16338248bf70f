set -u
if [ -n "${MISSING_VAR:-}" ]; then echo set; else echo unset; fi
echo "${MISSING_VAR}"
