cat > lib.sh <<'LIB'
greet() { echo "hello from lib, $1"; }
LIB_LOADED=yes
LIB
. ./lib.sh
greet ci
echo "loaded=$LIB_LOADED"
source lib.sh
echo ok
