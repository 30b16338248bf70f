cut -d, -f2 data/users.csv | tail -n +2
cut -d, -f2,4 data/users.csv | head -3
cut -c1-3 VERSION
