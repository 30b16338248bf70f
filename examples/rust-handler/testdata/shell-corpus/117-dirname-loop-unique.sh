find src -type f -name '*.py' | while read -r f; do dirname "$f"; done | sort -u
