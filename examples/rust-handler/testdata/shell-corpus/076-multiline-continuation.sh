echo one \
  two \
  three
ls src \
  | sort \
  | head -1
true &&
  echo "continued after &&"
