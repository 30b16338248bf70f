while read -r name; do
  echo "user: $name"
done < <(tail -n +2 data/users.csv | cut -d, -f2 | head -3)
count=0
while read -r _; do count=$((count + 1)); done < <(find src -name '*.py')
echo "python files: $count"
diff <(sort data/words.txt | uniq) <(sort -u data/words.txt) && echo "uniq agrees with sort -u"
