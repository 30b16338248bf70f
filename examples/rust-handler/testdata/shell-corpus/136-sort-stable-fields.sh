sort -t, -k3,3 -k2,2 data/users.csv | head -4
sort -t, -k4 -rn data/users.csv | head -2 | cut -d, -f2
printf 'b 1\na 2\nb 0\na 1\n' | sort -k1,1 -k2,2n
printf '10\n9\n100\n' | sort
printf '10\n9\n100\n' | sort -n
