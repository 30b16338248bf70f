parse() {
  local verbose=0 output=out.txt
  while [ $# -gt 0 ]; do
    case "$1" in
      -v|--verbose) verbose=1 ;;
      -o) output=$2; shift ;;
      --output=*) output=${1#*=} ;;
      --) shift; break ;;
      -*) echo "unknown option $1" >&2; return 2 ;;
      *) break ;;
    esac
    shift
  done
  echo "verbose=$verbose output=$output rest=$*"
}
parse -v -o report.txt file1 file2
parse --output=x.json -- -notanoption
parse -x || echo "parse failed: $?"
