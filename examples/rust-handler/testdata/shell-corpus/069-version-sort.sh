sort -V data/versions.txt
echo ---
sort -V data/versions.txt | tail -1
grep -v -- '-rc' data/versions.txt | sort -V | tail -n 1
