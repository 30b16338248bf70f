s="Hello, World"
echo "${s^^}" "${s,,}"
echo "${s:0:5}" "${s:7}" "${s: -5}"
name=john
echo "${name^}"
echo "${#s} chars"
