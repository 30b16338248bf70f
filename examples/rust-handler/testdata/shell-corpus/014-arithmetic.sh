total=0
for n in $(cat data/numbers.txt); do
  total=$((total + n))
done
echo "sum=$total"
echo "avg=$((total / 7)) rem=$((total % 7))"
echo "$(( (3 + 4) * 2 )) $(( 2 ** 8 )) $(( 10 > 3 )) $(( -7 / 2 ))"
i=0; while [ $i -lt 3 ]; do i=$((i+1)); done; echo "i=$i"
