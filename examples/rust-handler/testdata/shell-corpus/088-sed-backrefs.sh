echo "2026-12-05" | sed -E 's/([0-9]{4})-([0-9]{2})-([0-9]{2})/\3.\2.\1/'
echo "hello world" | sed 's/\(hello\) \(world\)/\2 \1/'
echo "abc" | sed 's/b/[&]/'
echo "key: value" | sed 's/:.*//'
