x=global
change() {
  local x=local
  echo "inside: $x"
  y=leaked
}
change
echo "outside: $x $y"
count() { local n=0; for _ in "$@"; do n=$((n+1)); done; echo $n; }
echo "count=$(count a b c)"
