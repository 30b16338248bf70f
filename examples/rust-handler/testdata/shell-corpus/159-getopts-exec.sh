# getopts (bundles, arguments, silent mode) and exec's redirections of the
# shell itself.
set -- -a -b x -cfoo rest
while getopts "ab:c:" o; do echo "$o ${OPTARG:-}"; done
echo "OPTIND=$OPTIND"
shift $((OPTIND - 1))
echo "rest: $*"
usage() { echo "usage: deploy [-v] [-n N] ENV..."; }
deploy() {
  local OPTIND o verbose=0 n=1
  while getopts ":vn:" o; do
    case $o in
      v) verbose=1 ;;
      n) n=$OPTARG ;;
      :) echo "missing argument for -$OPTARG"; usage; return 2 ;;
      \?) echo "unknown option -$OPTARG" ;;
    esac
  done
  shift $((OPTIND - 1))
  echo "verbose=$verbose n=$n envs: $*"
}
deploy -v -x -n 3 staging prod
deploy -n || echo "deploy: $?"
while getopts "ab" o -a -z -b; do echo "got $o"; done 2>&1
set -- -vvx -- -a
OPTIND=1
while getopts vx o; do echo "$o"; done
echo "ind $OPTIND"
exec 3>&1
echo "via fd 3" >&3
exec 3>&-
echo "fd 3 closed"
exec 4>fd4.txt
echo one >&4
echo two >&4
exec 4>&-
cat fd4.txt
{ exec >inner.log; echo "into the log"; }
echo "still into the log"
x=$(echo "a substitution keeps its own output")
echo "$x"
exec >&2
cat inner.log
exec 2>&1
ls nothere || echo "ls: $?"
exec echo "exec replaces the shell"
echo "never printed"
