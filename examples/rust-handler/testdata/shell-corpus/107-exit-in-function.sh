fail() { echo "fatal: $*" >&2; exit 7; }
echo "start"
[ -f VERSION ] || fail "no VERSION"
[ -f missing ] || fail "no missing"
echo unreachable
