timeout 10 echo "finished in time"
timeout 5s sh -c 'echo inner'
cmp VERSION VERSION && echo identical
printf '1.4.3\n' > other
cmp VERSION other >/dev/null || echo "cmp status $?"
cmp -s VERSION other || echo "silent differ"
echo "hello" | rev
