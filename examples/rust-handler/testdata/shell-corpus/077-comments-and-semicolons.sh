# a comment line
echo a; echo b   # trailing comment
echo "not # a comment"
echo c#d
