dir=$(dirname $(dirname src/app/main.py))
echo "$dir"
count=`ls src | wc -l`
echo "src has $count entries"
echo "upper: $(echo "$(cat VERSION)-rc" | tr '.' '_')"
