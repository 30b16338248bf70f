cat data/access.log | grep -v health | cut -d'"' -f2 | cut -d' ' -f2 | sort | uniq -c | sort -rn | head -2
