for i in 1 2 3 4 5 6; do
  [ $i -eq 2 ] && continue
  [ $i -eq 5 ] && break
  echo "i=$i"
done
n=0
while true; do
  n=$((n+1))
  if [ $n -ge 3 ]; then break; fi
done
echo "n=$n"
for a in x y; do for b in 1 2; do [ $b = 2 ] && continue 2; echo "$a$b"; done; done
