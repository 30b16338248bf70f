x=$(false; echo hi)
echo "x=$x"
version=$(grep -m1 '^## ' CHANGELOG.md | cut -d' ' -f2; false; echo fallback)
echo "$version" | tr '\n' ' '; echo
z=$(false | true; echo "inner $?")
echo "$z"
y=$(set -e; false; echo no)
echo "unreachable [$y]"
