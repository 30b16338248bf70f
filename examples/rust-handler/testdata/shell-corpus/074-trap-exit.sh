cleanup() { echo "cleanup ran"; }
trap cleanup EXIT
echo "working"
