sort data/words.txt | uniq
echo ---
sort data/words.txt | uniq -d
echo ---
sort data/words.txt | uniq -u
echo ---
sort -f data/words.txt | uniq -ci | sort -k2
