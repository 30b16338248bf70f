grep -n TODO README.md
grep -i 'apple' data/words.txt
grep -v 'banana' data/words.txt
grep -o '[0-9]\{3\}' data/access.log | sort | uniq -c
grep -w 'GET' data/access.log | wc -l
grep -l TODO -r src | sort
grep -rn FIXME src
