expected="apple banana cherry"
actual=$(sort -u data/words.txt | grep -v '^[A-Z]' | head -3 | tr '\n' ' ')
actual=${actual% }
if [ "$expected" = "$actual" ]; then echo "match"; else echo "mismatch: [$actual]"; fi
