mkdir -p dist/bin dist/share
cp VERSION dist/
cp -r src dist/share/
mv dist/VERSION dist/version.txt
ls dist
ls dist/share/src
rm -rf dist/share
ls dist
rm dist/version.txt
ls -A dist
