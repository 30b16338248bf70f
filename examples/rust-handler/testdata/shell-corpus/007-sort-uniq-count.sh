sort data/words.txt | uniq -c | sort -rn | head -n 3
