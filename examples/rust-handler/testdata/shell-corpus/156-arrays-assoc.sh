# Array slices, indices and associative arrays (keys compared in sorted
# order: bash's own order is its hash order).
a=(one two three four)
echo "${a[@]:1:2}" "${#a[@]}" "${!a[@]}"
echo "${a[-1]}" "${a[@]: -2}" "${a[*]:2}"
rest=("${a[@]:1}")
echo "${#rest[@]} ${rest[0]}"
for i in "${!a[@]}"; do echo "$i: ${a[$i]}"; done
declare -A m
m[a]=1
m[b]=2
m[b]+=0
echo "${m[a]} ${m[b]} ${#m[@]}"
for k in "${!m[@]}"; do echo "$k=${m[$k]}"; done | sort
declare -A cfg=([host]=example.com [port]=8080 ["the key"]="v w")
echo "${cfg[host]}:${cfg[port]} ${cfg["the key"]}"
unset 'cfg[port]'
echo "${#cfg[@]}"
[[ -v cfg[host] ]] && echo "has host"
[[ -v cfg[port] ]] || echo "no port"
echo "${cfg[missing]:-default}"
declare -A count
for w in a b a c a b; do count[$w]=$(( ${count[$w]:-0} + 1 )); done
for k in $(printf '%s\n' "${!count[@]}" | sort); do echo "$k ${count[$k]}"; done
printf '%s\n' "${count[@]}" | sort -n | tr '\n' ' '; echo
x=hello; ref=x; echo "${!ref}"
arr=(p q r); r2='arr[1]'; echo "${!r2}"
VAR_A=1 VAR_B=2; echo ${!VAR_*}
f() { declare -A loc=([k]=v); echo "${loc[k]}"; local -a list=(1 2 3); echo "${#list[@]}"; }
f
declare -x EXPORTED=yes; sh -c 'echo "exported: $EXPORTED"'
declare -u up=abc; declare -l lo=ABC; echo "$up $lo"
