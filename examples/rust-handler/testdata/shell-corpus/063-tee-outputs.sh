echo "line one" | tee log.txt
echo "line two" | tee -a log.txt > /dev/null
cat log.txt
seq 3 | tee nums.txt | wc -l
