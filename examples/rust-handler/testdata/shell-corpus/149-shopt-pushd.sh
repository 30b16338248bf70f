shopt -s nullglob
for f in data/*.nothing; do echo "never $f"; done
echo "matches: $(echo data/*.nothing | wc -w)"
shopt -u nullglob
echo data/*.nothing
pushd src > /dev/null
ls
pushd app > /dev/null
ls
popd > /dev/null
popd > /dev/null
ls -d src
