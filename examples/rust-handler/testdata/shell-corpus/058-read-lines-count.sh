count=0
while read -r line; do
  count=$((count + 1))
done < data/words.txt
echo "lines: $count"
total=0
while IFS=, read -r id name team commits; do
  [ "$id" = id ] && continue
  total=$((total + commits))
done < data/users.csv
echo "commits: $total"
