awk -F, 'NR > 1 {sum += $4} END {print "total commits:", sum}' data/users.csv
awk '{s += $1} END {printf "sum=%d avg=%.2f\n", s, s/NR}' data/numbers.txt
awk -F, 'NR > 1 {c[$3]++} END {for (t in c) print t, c[t]}' data/users.csv | sort
awk 'length($0) > 5' data/words.txt
awk 'NR==2, NR==3 {print}' data/words.txt 2>/dev/null || awk 'NR >= 2 && NR <= 3' data/words.txt
