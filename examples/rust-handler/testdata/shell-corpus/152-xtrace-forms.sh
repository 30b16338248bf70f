set -x
x=$(echo hi)
cat <<< b
f() { echo "in f $1"; }
f 1
if [ -n "$x" ]; then echo yes; fi
for i in 1 2; do :; done
[[ $x == h* ]]
y=$(echo $(echo deep))
echo "a b" 'c' ''
(( 1 + 1 ))
set +x
echo quiet
