for ((i = 0; i < 3; i++)); do
  echo "iteration $i"
done
total=0
for ((n = 1; n <= 10; n += 3)); do total=$((total + n)); done
echo "total=$total"
for ((i = 5; i > 0; i--)); do [ $i -eq 3 ] && continue; printf '%d ' $i; done; echo
