targets=(linux-amd64 linux-arm64 "darwin arm64")
echo "count: ${#targets[@]}"
for t in "${targets[@]}"; do echo "target: $t"; done
echo "first: ${targets[0]} last: ${targets[-1]} second: ${targets[1]}"
targets+=(windows-amd64)
echo "now ${#targets[@]}: ${targets[*]}"
i=2
echo "by index: ${targets[$i]} ${targets[i+1]}"
targets[1]=replaced
printf '%s\n' "${targets[@]}"
unset 'targets[0]'
echo "${targets[@]}"
