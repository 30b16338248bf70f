i=1
while [ $i -le 3 ]; do
  echo "i=$i"
  i=$(expr $i + 1)
done
expr 7 \* 6
expr length "hello"
expr "v1.2.3" : 'v\([0-9]*\)'
expr 5 \> 3
expr substr "pipeline" 1 4
expr 0 + 0 || echo "expr 0 is false: $?"
