echo "a b c" | grep zzz | wc -l
echo unreachable
