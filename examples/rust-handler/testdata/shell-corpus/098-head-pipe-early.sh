seq 1 100000 | head -n 3
seq 1000 | tail -n 2
seq 50 | grep 7 | head -2
