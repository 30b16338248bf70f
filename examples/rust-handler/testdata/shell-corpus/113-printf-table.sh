printf '%-8s %5s\n' NAME COMMITS
tail -n +2 data/users.csv | while IFS=, read -r id name team commits; do
  printf '%-8s %5d\n' "$name" "$commits"
done
