mkdir -p cache
for i in 1 2 3; do touch "cache/item-$i.tmp"; done
ls cache | wc -l
rm cache/*.tmp
ls cache | wc -l
