a=10 b=9
[ "$a" -gt "$b" ] && echo "$a > $b numerically"
[[ "$a" < "$b" ]] && echo "$a < $b as strings"
[ -z "" ] && [ -n "x" ] && echo "empty checks"
[ "$a" != "$b" ] && echo differ
[ "$a" -ge 10 -a "$b" -le 9 ] && echo "combined -a"
[[ -n $a && $b == 9 ]] && echo "double brackets"
