find src -name '*.py' | sort
find . -maxdepth 1 -type d | sort
find docs -type f -name '*.md' | wc -l
