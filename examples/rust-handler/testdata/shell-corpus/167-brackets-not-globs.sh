# `[` opens a pattern only with its `]`: the test command and `[abc` are
# words, even under nullglob (which drops patterns that match nothing).
touch a1 b1
echo [ab]1 [!b]1 "[a" [a
shopt -s nullglob
[ 1 -eq 1 ] && echo "test still runs"
echo [zz]9 "left:" [q
x="[abc"; echo $x
shopt -u nullglob
echo [zz]9
rm a1 b1
