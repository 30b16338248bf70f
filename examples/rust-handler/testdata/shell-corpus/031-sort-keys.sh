tail -n +2 data/users.csv | sort -t, -k4 -n | cut -d, -f2
tail -n +2 data/users.csv | sort -t, -k3,3 -k4,4nr | cut -d, -f2,3
sort -n data/numbers.txt | tr '\n' ' '; echo
sort -rn data/numbers.txt | head -1
