mkdir -p work/a/b
(cd work/a/b && touch file.txt && ls)
ls work/a
( exit 3 ) || echo "subshell failed with $?"
X=outer; (X=inner; echo "in: $X"); echo "out: $X"
