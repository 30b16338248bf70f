echo "errors: $(grep -c '" 5[0-9][0-9] ' data/access.log)"
echo "not found: $(grep -c '" 404 ' data/access.log)"
grep -E '" (4|5)[0-9]{2} ' data/access.log | cut -d' ' -f1 | sort -u
