v=abc
[ "$v" -eq 1 ] 2>/dev/null || echo "not an integer: status $?"
[ 3 -eq 3 ] && echo "three"
