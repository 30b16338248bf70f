list=""
for f in src/app/*.py; do
  list="${list:+$list,}$(basename "$f")"
done
echo "$list"
csv=$(printf '%s,' a b c)
echo "${csv%,}"
joined=$(IFS=:; echo "$*")
set -- x y z
joined=$(IFS=:; echo "$*")
echo "$joined"
