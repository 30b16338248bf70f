echo 'semi;colon' "pipe|char" 'amp&' "dollar \$ sign"
echo "tab	inside"
echo "brackets [a] {b} (c)"
echo "star * question ?"
