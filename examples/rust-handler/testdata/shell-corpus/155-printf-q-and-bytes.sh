# printf %q quotes for the shell; escapes make bytes, not characters.
for s in 'a b' "it's" 'a,b' 'x=1' '~x' 'a~' $'a\nb' '' '!x' '#a' 'plain'; do
  printf '%q|' "$s"
done
echo
printf '[%10q]\n' 'a b'
args=(deploy --tag "v1 beta" --note "it's ok")
printf 'cmd:'; printf ' %q' "${args[@]}"; echo
printf '\x80\xff' | od -An -tx1
printf '\303\251\n'
echo -e '\xe2\x9c\x93 done'
printf -v check '%b' '\xe2\x9c\x93'
echo "$check ok"
