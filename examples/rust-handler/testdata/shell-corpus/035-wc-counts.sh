wc -l data/users.csv
wc -l < data/users.csv
wc -w README.md
wc -c VERSION
cat data/words.txt | wc -l
wc -l data/words.txt data/numbers.txt
