msg="hello   world"
echo $msg
echo "$msg"
echo '$msg' "\$msg" \$msg
echo "it's" 'say "hi"' "back\\slash"
v='a*b'
echo "$v"
echo "nested $(echo "inner \"quoted\"")"
