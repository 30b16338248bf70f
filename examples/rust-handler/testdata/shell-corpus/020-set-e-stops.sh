echo one
grep -q nothing-like-this README.md
echo never
