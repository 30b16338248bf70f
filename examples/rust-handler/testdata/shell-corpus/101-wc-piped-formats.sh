printf 'a b\nc\n' | wc
printf 'a b\nc\n' | wc -l
printf 'a b\nc\n' | wc -w
printf 'abc' | wc -c
