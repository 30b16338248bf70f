n=0
printf '%s\n' a b c | while read -r x; do n=$((n+1)); echo "$n:$x"; done
echo "n after pipe: $n"
