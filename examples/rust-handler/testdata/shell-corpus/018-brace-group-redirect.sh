{
  echo "# Report"
  echo "files: $(find src -type f | wc -l)"
  echo "python: $(find src -name '*.py' | wc -l)"
} > report.md
cat report.md
