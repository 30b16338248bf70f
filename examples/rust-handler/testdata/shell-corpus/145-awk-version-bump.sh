version=$(cat VERSION)
next=$(echo "$version" | awk -F. '{printf "%d.%d.%d", $1, $2, $3 + 1}')
echo "$version -> $next"
echo "$version" | awk -F. -v OFS=. '{$2++; $3 = 0; print}'
grep '==' requirements.txt | awk -F'==' '{print $1 " pinned to " $2}'
