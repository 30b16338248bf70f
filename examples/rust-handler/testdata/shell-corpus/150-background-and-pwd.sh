[ "$PWD" = "$(pwd)" ] && echo "PWD is the working dir"
cd src
[ "$PWD" = "$(pwd)" ] && [ "${PWD##*/}" = src ] && echo "PWD follows cd"
cd ..
false &
echo "after a failing background job: $?"
echo "job output" > bg.txt &
wait
cat bg.txt
