cut -d' ' -f9 data/access.log | sort | uniq -c | sort -k2n
awk_free=$(cut -d'"' -f2 data/access.log | cut -d' ' -f1 | sort | uniq -c | sort -rn | head -1)
echo "top method:$awk_free"
