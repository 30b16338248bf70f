# Release checksums: md5sum, sha1sum, sha256sum and sha512sum, and -c.
mkdir -p dist
printf 'release payload\n' > dist/app.tar
printf '' > dist/empty.bin
head -c 1000 /dev/null > /dev/null
seq 1 300 > dist/numbers.txt
cd dist
for tool in md5sum sha1sum sha256sum sha512sum; do
  $tool app.tar empty.bin numbers.txt > "SUMS.$tool"
  cat "SUMS.$tool"
  $tool -c "SUMS.$tool"
  $tool --quiet -c "SUMS.$tool" && echo "$tool quiet ok"
done
echo abc | md5sum
echo abc | sha1sum | cut -d' ' -f1
sha256sum app.tar | sha256sum -c
echo tampered >> app.tar
md5sum -c SUMS.md5sum 2>&1 || echo "md5sum -c failed: $?"
sha256sum --status -c SUMS.sha256sum || echo "status only: $?"
echo "not a checksum line" > bad.txt
sha1sum -c bad.txt 2>&1 || echo "malformed: $?"
