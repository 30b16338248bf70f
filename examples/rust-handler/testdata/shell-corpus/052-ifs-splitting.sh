flags=$(grep FEATURE_FLAGS config/app.env | cut -d= -f2)
IFS=, read -r first second rest <<< "$flags"
echo "first=$first second=$second rest=$rest"
old_ifs=$IFS
IFS=,
for f in $flags; do echo "flag: $f"; done
IFS=$old_ifs
