i=0
(( i += 5 ))
(( i++ ))
echo "i=$i"
if (( i > 5 )); then echo "big"; fi
let "j = i * 2"
echo "j=$j"
(( 0 )) || echo "zero is false"
