read -r a b <<< "one two three"
echo "a=$a b=$b"
echo "x y" | { read -r p q; echo "p=$p q=$q"; }
read -r only <<EOF
  padded value  
EOF
echo "[$only]"
