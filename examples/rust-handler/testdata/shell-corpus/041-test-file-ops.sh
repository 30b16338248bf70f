[ -f VERSION ] && echo "VERSION is a file"
[ -d src ] && echo "src is a dir"
[ -e nothing ] || echo "nothing does not exist"
[ -s VERSION ] && echo "VERSION is not empty"
touch empty.txt
[ -s empty.txt ] || echo "empty.txt is empty"
test ! -d VERSION && echo "VERSION is not a dir"
