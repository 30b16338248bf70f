check() {
  if [ "$1" -gt 5 ]; then return 0; fi
  return 3
}
check 10 && echo "10 ok"
check 1 || echo "1 failed with $?"
status=0
check 2 || status=$?
echo "status=$status"
