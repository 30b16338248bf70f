grep -c def src/app/*.py src/lib/*.py
grep -h def src/lib/util.py
