set -- alpha "beta gamma" delta
echo "count: $#"
for arg in "$@"; do echo "arg: $arg"; done
echo "first: $1, second: $2"
shift
echo "after shift: $*"
f() { echo "f got $# args: $*"; }
f "$@"
f
