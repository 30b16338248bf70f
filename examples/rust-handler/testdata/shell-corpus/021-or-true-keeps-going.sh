grep -q nothing-like-this README.md || true
grep -q nothing-like-this README.md || echo "not found, status $?"
if ! grep -q TODO README.md; then echo "no todo"; else echo "has todo"; fi
echo done
