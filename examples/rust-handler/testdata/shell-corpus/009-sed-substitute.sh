sed 's/^version=.*/version=2.0.0/' <<EOF
name=demo
version=1.4.2
EOF
sed -e 's/\(GET\|POST\) \/\([a-z]*\).*/\1 \2/' -n -e '1,3p' data/access.log
echo "a-b-c" | sed 's/-/_/g'
