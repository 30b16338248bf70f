version=$(<VERSION)
echo "v$version"
lines=$(< data/words.txt wc -l)
echo "lines=$lines"
first=$(head -n1 < data/words.txt)
echo "first=$first"
