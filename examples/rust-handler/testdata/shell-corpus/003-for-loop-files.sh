for f in src/app/*.py src/lib/*.py; do
  echo "checking $f: $(wc -l < "$f") lines"
done
