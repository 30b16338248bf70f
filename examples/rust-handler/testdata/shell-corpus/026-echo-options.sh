echo -n "no newline; "
echo "then newline"
echo -e "tab:\there\nnext line"
echo "-e is literal in quotes: \t"
echo a "" b
echo
