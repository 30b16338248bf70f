# `cond && break` as a loop's last command: the loop's status is 1, but
# set -e does not stop the script (bash's rule for compound commands);
# envsubst templates; read -n; cut --output-delimiter; tee /dev/stderr.
i=0
while :; do i=$((i + 1)); [ $i -ge 3 ] && break; done
echo "loop ended at $i"
for f in a b; do [ "$f" = z ] && echo never; done
echo "for: $?"
if true; then [ 1 = 2 ] && echo never; fi
echo "if: $?"
{ false || [ 1 = 2 ] && echo never; }
echo "brace: $?"
case x in x) [ 1 = 2 ] && echo never ;; esac
echo "case: $?"
export NAME=app TAG=1.0
echo 'image: ${NAME}:$TAG unset:[$UNSET_VAR] $5 ${not closed' | envsubst
echo '$NAME $TAG' | envsubst '$NAME'
cat > deploy.tmpl <<'T'
name: ${NAME}
tag: "${TAG}"
T
envsubst < deploy.tmpl
read -n 3 x <<< "abcdef"; echo "$x"
read -n 10 y <<< "ab"; echo "[$y]"
echo "a:b:c" | cut -d: -f1,3 --output-delimiter=' '
echo "a:b:c" | cut -d: -f2 --complement
echo "to stderr" | tee /dev/stderr >/dev/null
(( i == 3 )) && echo three
f() { [ 1 -ge 3 ] && echo x; }
f || echo "a function's status still counts: $?"
