todos=$(grep -rn 'TODO\|FIXME' src | wc -l)
echo "found $todos TODO/FIXME markers"
if [ "$todos" -gt 5 ]; then echo "too many"; exit 1; fi
grep -rn 'TODO\|FIXME' src | sort
