find . -name '*.md' -not -path './docs/*' | sort
find src -type f -name '*.py' | sort | while read -r f; do
  printf '%s %s\n' "$(wc -l < "$f")" "$f"
done | sort -rn
find . -maxdepth 2 -type f -name '*.txt' | sort
find data -type f -empty | wc -l
