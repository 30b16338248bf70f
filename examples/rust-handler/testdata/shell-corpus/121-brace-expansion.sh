mkdir -p build/{bin,lib,share/doc}
find build -type d | sort
for i in {1..3}; do echo "shard $i"; done
echo file.{txt,md,json}
echo {a..e} {05..10..5}
cp VERSION{,.bak}
ls VERSION*
