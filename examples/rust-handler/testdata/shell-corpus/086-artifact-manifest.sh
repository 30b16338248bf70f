mkdir -p public
for f in docs/*.md; do
  name=$(basename "$f" .md)
  echo "<li>$name</li>" >> public/index.html
done
cat public/index.html
find public -type f | wc -l
