set -u
DEFINED=yes
echo "$DEFINED ${UNDEFINED:-fallback}"
echo "$UNDEFINED"
echo unreachable
