mkdir out
mkdir out
echo unreachable
