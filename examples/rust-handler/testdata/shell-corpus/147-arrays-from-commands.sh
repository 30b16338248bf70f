mapfile -t words < <(sort -u data/words.txt)
echo "${#words[@]} unique words: ${words[*]}"
read -r -a parts <<< "a b  c"
echo "${#parts[@]} parts, second=${parts[1]}"
files=(src/app/*.py)
echo "${#files[@]} app files: ${files[@]##*/}"
declare -a empty=()
echo "empty: ${#empty[@]}"
f() { local -a items=("$@"); echo "${#items[@]} items, last ${items[-1]}"; }
f x y z
