cat VERSION
cat nope.txt
