path=src/app/server.py
echo "${path##*/}"
echo "${path%/*}"
echo "${path%.py}.pyc"
file=archive.tar.gz
echo "${file%%.*} ${file#*.} ${file%.*}"
echo "${#path}"
