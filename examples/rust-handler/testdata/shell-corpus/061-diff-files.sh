printf 'a\nb\nc\n' > one.txt
printf 'a\nB\nc\nd\n' > two.txt
diff one.txt one.txt && echo same
diff one.txt two.txt || echo "differ: $?"
diff -u one.txt two.txt | tail -n +3 || true
