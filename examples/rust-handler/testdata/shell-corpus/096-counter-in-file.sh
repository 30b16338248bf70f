echo 0 > counter
for i in 1 2 3 4; do
  n=$(cat counter)
  echo $((n + i)) > counter
done
cat counter
