cat -n data/words.txt | head -3
cat VERSION VERSION
cat missing.txt 2>/dev/null || echo "no missing.txt"
