mkdir -p tmp
touch tmp/a.log tmp/b.log tmp/keep.txt
find tmp -name '*.log' | xargs rm -f
ls tmp
