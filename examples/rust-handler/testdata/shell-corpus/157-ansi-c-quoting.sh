# $'...' strings: escapes as bash reads them; $RANDOM and $SECONDS.
echo $'a\tb\n' | cat -A
echo $'it\'s' $'\x41\303\251\101' | od -c | head -2
s=$'line1\nline2'
echo "$s" | wc -l
IFS=$'\n' read -r -d '' -a lines <<< $'x y\nz' || true
echo "${#lines[@]}: ${lines[0]}"
printf '%s' $'\e[1mbold\e[0m' | od -An -c
echo $'\cA' | od -An -tx1
[[ $'tab\there' == *$'\t'* ]] && echo "has a tab"
r=$RANDOM; [[ $r =~ ^[0-9]+$ ]] && (( r >= 0 && r <= 32767 )) && echo "RANDOM in range"
[ "$RANDOM$RANDOM$RANDOM" != "$RANDOM$RANDOM$RANDOM" ] && echo "RANDOM changes"
(( SECONDS >= 0 )) && echo "SECONDS counts"
