echo out > o.txt
echo more >> o.txt
echo err 1>&2
ls missing-file 2> err.txt || true
cat err.txt
ls missing-file > all.txt 2>&1 || true
cat all.txt
echo quiet > /dev/null
cat o.txt
