fact() {
  if [ "$1" -le 1 ]; then echo 1; return; fi
  local prev
  prev=$(fact $(($1 - 1)))
  echo $(($1 * prev))
}
echo "5! = $(fact 5)"
