awk '{print $1}' data/access.log | sort -u
awk -F, 'NR > 1 {print $2 ": " $4}' data/users.csv
awk -F, 'NR > 1 && $3 == "web" {print $2}' data/users.csv
awk '{print $NF}' data/access.log | head -3
awk -F'"' '{print $2}' data/access.log | awk '{print $1}' | sort | uniq -c
