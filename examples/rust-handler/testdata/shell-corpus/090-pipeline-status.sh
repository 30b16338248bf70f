set +o pipefail
false | true
echo "without pipefail: $?"
set -o pipefail
false | true || echo "with pipefail: $?"
