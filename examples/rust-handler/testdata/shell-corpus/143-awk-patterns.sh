awk '/POST|DELETE/ {print $6, $7}' data/access.log
awk '$9 >= 400 {print $9, $7}' data/access.log
awk -F= '!/^#/ && NF == 2 {printf "%-12s %s\n", $1, $2}' config/app.env
awk 'BEGIN {print "start"} END {print NR " lines"}' data/words.txt
echo "a b c" | awk '{print NF, $2}'
