greet() { echo "hi $1"; }
greet there
type greet | head -1
unset -f greet
command -v greet || echo "greet is gone"
