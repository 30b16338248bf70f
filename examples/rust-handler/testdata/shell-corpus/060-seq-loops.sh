seq 3
seq -s ' ' 1 2 9
seq 10 -3 1
for i in $(seq 1 3); do echo "job-$i"; done
