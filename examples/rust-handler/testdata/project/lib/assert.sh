# Test helpers.

assert_eq() {
  if [ "$1" != "$2" ]; then
    echo "FAIL: ${3:-assertion}: expected [$2], got [$1]" >&2
    exit 1
  fi
}
