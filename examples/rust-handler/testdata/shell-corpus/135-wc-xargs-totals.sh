find src -name '*.py' | sort | xargs cat | wc -l
ls data | xargs -I % echo "data file: %"
printf 'a\nb\nc\n' | xargs echo
printf 'x y\n' | xargs -n1
