head -n 2 data/access.log | cut -d'"' -f2
tail -n 1 data/access.log | cut -d' ' -f9
head -3 data/words.txt
tail -2 data/words.txt
tail -n +7 data/words.txt
head -c 5 VERSION; echo
