run() { "$@"; }
run true && echo "true ok"
run false || echo "false failed: $?"
( run sh -c 'exit 9' ) || echo "subshell: $?"
f() { return 7; }
f || echo "f: $?"
f
