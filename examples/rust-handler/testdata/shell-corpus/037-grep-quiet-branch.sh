if grep -q '"version": "1.4.2"' package.json; then
  echo "package.json matches VERSION"
fi
if grep -qE '^flask(==|>=)' requirements.txt; then echo "uses flask"; fi
grep -c '' requirements.txt
