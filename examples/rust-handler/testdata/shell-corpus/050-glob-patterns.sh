echo src/*/*.py
echo data/*.txt
echo docs/[ag]*.md
echo nothing-*.zzz
ls -d src/*/ 2>/dev/null | sort || true
for f in data/*.csv; do echo "csv: $f"; done
