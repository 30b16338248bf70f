find src -name '*.py' -type f | sort | xargs wc -l
find src -name '*.py' | sort | xargs -n 1 basename
