printf '%s\n' alpha beta gamma | xargs -I{} echo "item: {}"
echo "a b c d e" | xargs -n 2 echo
