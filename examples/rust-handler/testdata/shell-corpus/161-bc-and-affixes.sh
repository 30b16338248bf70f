# bc for the arithmetic shells cannot do (decimals, thresholds), and
# ${a[@]/#/p} prefixes.
coverage=83.47
threshold=80
if (( $(echo "$coverage >= $threshold" | bc) )); then echo "coverage ok"; fi
echo "scale=2; 10/3" | bc
echo "0.1 + 0.2" | bc
echo "scale=3; -1/3" | bc
echo "1.5 + 2.25; 2^10; 7 % 3" | bc
printf 'x = 4\nx * 2.5\n' | bc
echo "scale=1; 1536 / 1024" | bc -l
echo "12345678901234567890 * 10" | bc
ratio=$(echo "scale=4; 3/8" | bc); echo "ratio $ratio"
IFS=, read -ra parts <<< "p,q,r"
echo "${parts[@]/#/-}"
echo "${parts[@]/%/.txt}"
files=(a b); printf '%s\n' "${files[@]/#/src/}"
v=name; echo "${v/#/pre-}" "${v/%/-post}"
