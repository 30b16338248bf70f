set -x
NAME=demo
echo "hello $NAME"
set +x
echo untraced
