# Assignments of one command are expanded left to right, each seeing the
# ones before it, whether or not a command follows; a command's words
# are expanded before its assignments.
dir=/opt/app file=$dir/config.yml
echo "$file"
x=1; x=2 y=$x; echo "$x $y"
x=1; x=2 echo "word sees $x"
v=a; v+=b w=$v; echo "$v $w"
n=$((2 + 1)) m=$((n * 4)); echo "$m"
arr=(c a b) count=${#arr[@]}; echo "$count"
a=(3 1 2)
IFS=$'\n' sorted=($(sort <<<"${a[*]}")); unset IFS
echo "${sorted[@]}"
t=first; t=second u=$t printenv u
echo "t is $t after a command"
